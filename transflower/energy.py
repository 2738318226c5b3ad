"""`MusicEnergy`: the dance's size follows the music's loudness, and a break in the music calms the dancer.

The model was trained on whole songs: it never heard a DJ's break, and on its own it dances on through
silence at nearly full pace. This gate sits after the sampler, in the live engine's step (which `live`,
`generate`, the library and the benchmarks all sample through):

- a causal loudness reference follows the music's recent peak level (`rms_db` of the audio feature row,
  dB against a full-scale sine), decaying 0.5 dB a second (a breakdown stays smaller for half a minute);
- the dance's gain is 1 within `full_db` (8 dB) of that reference (a song's own phrase-to-phrase
  dynamics) and falls linearly to `quiet_gain` at `quiet_db` (30 dB) below it: a quieter, sparser
  passage (a breakdown, an intro) is danced smaller;
- near silence (more than `break_db` below the reference, or under `silence_db` absolute) held for
  `break_hold_s` is a break: the gain falls to `break_gain`, so the dancer settles into a calm sway about
  a relaxed stance within about a second and a half instead of freezing mid-step.

The gain acts on the pose shown, not on the pose fed back: the model dances on in its own head through
the break (its past stays its own, so it neither drifts nor forgets the dance), and what leaves the engine
is that dance scaled about the data's mean pose (a relaxed stance): the root's travel and turn (motion
feature dims 0-2) times the gain, each joint rotation `mean + gain * (pose - mean)`, the root height (dim 3)
as sampled (the floor handling owns it). At gain 0.25 that is a calm sway at about a fifth of the dance's
speed; when the music returns the dance is there at once, at full size within half a second. Being a
function of the dance and the music alone, it gives the same result applied frame by frame (live) or to a
finished rollout (`apply_sequence`, offline). Numpy only, no allocation per frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EnergyConfig:
    full_db: float = 8.0          # within this of the reference the dance is full size (a song's own dynamics)
    quiet_db: float = 30.0        # this far below the reference, the dance is at quiet_gain
    quiet_gain: float = 0.6
    break_db: float = 30.0        # this far below the reference (or under silence_db) is near silence
    silence_db: float = -60.0
    break_hold_s: float = 0.4     # near silence held this long is a break
    break_gain: float = 0.2      # a calm sway, not a freeze
    fall_s: float = 0.35          # time constant of the gain going down
    rise_s: float = 0.15         # ... and coming back up
    ref_decay_db_s: float = 0.5   # the loudness reference forgets a loud passage this fast (12 dB in 24 s)
    ref_floor_db: float = -45.0   # the reference never sinks below this (a quiet room is not music)


class MusicEnergy:
    """Per-frame gain from the music's level, applied to each dancer's new pose (see the module docstring).

    `update(level_db)` once per frame (the level of the audio row the model hears), then
    `apply(poses, out)` on (B, D) or (D,) unscaled features. `gain`, `in_break` and `reference_db`
    are readable state (the live status line shows them)."""

    def __init__(self, fps: float, mean_pose: np.ndarray, config: EnergyConfig | None = None):
        self.config = c = config or EnergyConfig()
        self.fps = float(fps)
        self.mean = np.asarray(mean_pose, np.float32).copy()
        self._hold = max(1, int(round(c.break_hold_s * self.fps)))
        self._fall = 1.0 - np.exp(-1.0 / (c.fall_s * self.fps))
        self._rise = 1.0 - np.exp(-1.0 / (c.rise_s * self.fps))
        self._decay = c.ref_decay_db_s / self.fps
        self.reset()

    def reset(self) -> None:
        self.gain, self.target = 1.0, 1.0
        self.reference_db = self.config.ref_floor_db
        self.quiet_frames = 0
        self.in_break = False
        self._was_calm = False

    def update(self, level_db: float, calm: bool = False) -> float:
        """One frame's music level (dB) -> the dance's gain for this frame. `calm`: held at the break's gain
        whatever the music (the time base's count-in: the dancer listens before it starts); it starts there, and
        the first frame after it is at the music's gain at once (the engine fades the dance in)."""
        c = self.config
        level = float(level_db)
        if calm and not self._was_calm:
            self.gain = c.break_gain
        released, self._was_calm = self._was_calm and not calm, calm
        if not np.isfinite(level):  # a broken audio row says nothing about the music: keep the gain
            return self.gain
        self.reference_db = max(level, self.reference_db - self._decay, c.ref_floor_db)
        below = self.reference_db - level
        if below > c.break_db or level < c.silence_db:
            self.quiet_frames += 1
        else:
            self.quiet_frames = 0
        self.in_break = self.quiet_frames >= self._hold
        if self.in_break or calm:
            self.target = c.break_gain
        else:
            x = min(max((below - c.full_db) / (c.quiet_db - c.full_db), 0.0), 1.0)
            self.target = 1.0 - (1.0 - c.quiet_gain) * x
        if released:  # out of a count-in: at once (the engine fades the dance in on the model's clock)
            self.gain = self.target
            return self.gain
        rate = self._fall if self.target < self.gain else self._rise
        self.gain += rate * (self.target - self.gain)
        return self.gain

    def apply(self, poses: np.ndarray, out: np.ndarray) -> np.ndarray:
        """poses (B, D) or (D,): this frame's poses as the model dances them (unscaled) -> `out` (same shape),
        the poses to show at this frame's gain."""
        np.copyto(out, poses)
        g = self.gain
        if g >= 0.999:
            return out
        out[..., :3] *= g  # the root's travel and turn
        rot = out[..., 4:]  # the joints, about the mean pose
        rot -= self.mean[4:]
        rot *= g
        rot += self.mean[4:]
        return out

    def apply_sequence(self, motion: np.ndarray, levels_db: np.ndarray) -> np.ndarray:
        """A whole rollout (T, D) unscaled, frame t heard at level levels_db[t] -> the poses shown (a new array)."""
        motion = np.asarray(motion, np.float32)
        out = np.empty_like(motion)
        for t in range(len(motion)):
            self.update(levels_db[min(t, len(levels_db) - 1)])
            self.apply(motion[t], out[t])
        return out
