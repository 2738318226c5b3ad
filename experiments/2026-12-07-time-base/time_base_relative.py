"""The beat-matched time base: the dancer's clock follows the music's tempo changes.

The model dances at the pace it learned for the music it hears; it does not speed up when a DJ does. The
time base runs the model on its own clock: model time advances by `rate` model frames per output frame,
with `rate` = the music's tempo now over the tempo the dance started on. The model hears the music on its
clock (so at the tempo it started on, which it knows how to dance), and its frames are played back at the
music's tempo: the output frame at model time m is interpolated between model frames floor(m) and ceil(m),
the root's velocities scaled by the rate (the distance travelled per output frame).

Why relative to the start, not to an absolute tempo: a causal tempo reading keeps its metrical level under
small changes (a pitch fader, a mix into a track a few % faster), but when one song is heard at two very
different tempi it reads one of them a level up or down about half the time
(experiments/2026-12-07-time-base/); a reference absolute tempo would then make the dancer half as fast on
one of them. So the follower tracks the tempo continuously and reads a sudden jump by 1/3, 1/2, 2/3,
3/2, 2 or 3 as a change of metrical level (the same pace, danced on another level of the new music),
anything else as a new tempo once it has held.

- `TempoTracker`: the tempo in BPM from the `onset` column of the audio feature rows (autocorrelation
  over the last `window_s` seconds, parabolic refinement of the best lag, so it is continuous).
- `TempoFollower`: the tracked tempo made continuous across metrical-level flips -> `rate`.
- `ModelClock`: model time, the model frames due at each output frame, the interpolation into the output.

Cost: an output frame may need 0, 1 or 2 model steps (rate < 1 or > 1); no latency is added at rate 1,
and at most one model frame (50 ms / rate) of the music's lookahead is used early when rate > 1.
Numpy only; the buffers are preallocated, and the tracker's work (an autocorrelation over ~80 lags)
runs every `update_every` frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tempo_tracker import TempoTracker as FirstTracker  # this folder's first tracker

from transflower.realtime.time_base import ModelClock, in_order  # the clock went into the product (`--time-base`)


@dataclass(frozen=True)
class TempoConfig:
    window_s: float = 8.0          # seconds of onset envelope per reading
    min_bpm: float = 55.0
    max_bpm: float = 220.0
    prior_bpm: float = 110.0       # a log-normal preference among the lags, as librosa's estimate
    prior_octaves: float = 1.0
    update_every: int = 4          # frames between readings (5 per second at 20 fps)
    smooth_s: float = 1.5          # time constant of the followed tempo
    near_octaves: float = 0.32     # a followed tempo is looked for this far up and down at each reading
    level_octaves: float = 0.08    # a relock within this of 1/3, 1/2, 2/3, 3/2, 2 or 3 times it: another metrical level
    jump_hold_s: float = 1.5       # the followed periodicity must be gone this long before a relock
    min_rate: float = 0.6          # the clock's bounds (a dancer at 1.7x its learned pace is as fast as it gets)
    max_rate: float = 1.7


class TempoTracker(FirstTracker):
    """update(onset) once per frame -> a new raw reading in BPM every `update_every` frames, else None.
    The window, lags and preference are tempo_tracker.py's; the reading and its refinement are new."""

    def __init__(self, fps: float, config: TempoConfig | None = None):
        super().__init__(fps, config or TempoConfig())
        self.weighted = np.zeros(len(self.lags), np.float64)  # `scores` (per lag, the newest reading's) x the preference
        self._n = 0

    @property
    def full(self) -> bool:
        """The window holds `window_s` seconds: readings from here on see the whole window."""
        return self.frames >= self.n

    def update(self, onset: float) -> float | None:
        x = float(onset)
        self.ring[self.frames % self.n] = x if np.isfinite(x) else 0.0
        self.frames += 1
        if self.frames >= self.n // 2 and self.frames % self.config.update_every == 0:
            return self._estimate()
        return None

    def _estimate(self) -> float | None:
        """The best lag's tempo over the window (the part filled so far), or None in silence."""
        n = min(self.frames, self.n)
        env = in_order(self.ring, self.frames, self.env[:n])
        env -= env.mean()
        if not np.any(env):
            return None
        for i, lag in enumerate(self.lags):
            self.scores[i] = np.dot(env[lag:], env[:-lag]) / (n - lag) if lag < n - 8 else 0.0
        np.maximum(self.scores, 0.0, out=self.scores)
        self._n = n
        s = self.weighted
        np.multiply(self.scores, self.prior, out=s)
        i = int(np.argmax(s))
        if s[i] <= 0.0:
            return None
        return 60.0 * self.fps / self._refine(env, n, int(self.lags[i]))

    def near(self, bpm: float, octaves: float = 0.32) -> float | None:
        """The newest window's strongest periodicity within `octaves` of `bpm` (no preference among
        levels: a tracked tempo keeps its level), refined; None if there is none there."""
        period = 60.0 * self.fps / bpm
        lo, hi = period * 2.0 ** -octaves, period * 2.0 ** octaves
        sel = (self.lags >= lo) & (self.lags <= hi)
        if not sel.any():
            return None
        cand = np.flatnonzero(sel)
        i = int(cand[np.argmax(self.scores[cand])])
        if self.scores[i] <= 0.25 * self.scores.max():  # nothing there any more: a new tempo or silence
            return None
        return 60.0 * self.fps / self._refine(self.env[: self._n], self._n, int(self.lags[i]))

    def _refine(self, env: np.ndarray, n: int, lag: int) -> float:
        """The beat period in frames, finer than one frame: the autocorrelation's peak near k x lag for the
        largest k the window allows (up to 4), located by a parabola through its three samples, over k."""
        k = max(1, min(4, (n // 2) // lag))
        while k > 1:
            c = k * lag
            if c + 1 < n - 8:
                a = [np.dot(env[j:], env[:-j]) / (n - j) for j in (c - 1, c, c + 1)]
                best = int(np.argmax(a))
                if best == 1 or k == 1:
                    den = a[0] - 2.0 * a[1] + a[2]
                    off = min(max(0.5 * (a[0] - a[2]) / den, -0.5), 0.5) if den < 0.0 else 0.0
                    return (c + off) / k
                # the peak is a frame off at this multiple: search one frame further that way
                c2 = c + (1 if best == 2 else -1)
                if c2 + 1 < n - 8 and c2 - 1 > 0:
                    b = [np.dot(env[j:], env[:-j]) / (n - j) for j in (c2 - 1, c2, c2 + 1)]
                    if int(np.argmax(b)) == 1:
                        den = b[0] - 2.0 * b[1] + b[2]
                        off = min(max(0.5 * (b[0] - b[2]) / den, -0.5), 0.5) if den < 0.0 else 0.0
                        return (c2 + off) / k
            k -= 1
        return float(lag)


LEVELS = np.log2([1 / 3, 1 / 2, 2 / 3, 3 / 2, 2.0, 3.0])  # metrical-level changes a reading may make


class TempoFollower:
    """The tempo followed continuously -> `rate` = the tempo now over the reference.

    Once locked, each reading looks for the music's periodicity near the followed tempo (`TempoTracker.near`),
    so a ramp is followed on the metrical level it started on. When that periodicity is gone for
    `jump_hold_s` (a cut to another track, a new section), the follower relocks on the tracker's global
    reading: if that is 1/3, 1/2, 2/3, 3/2, 2 or 3 times the followed tempo it is the same tempo on another
    metrical level (`level`, octaves, absorbs it: the rate does not move), else a new tempo. The reference is
    the followed tempo when the tracker's window first fills (the tempo the dance started on); until then
    the rate is 1."""

    def __init__(self, fps: float, config: TempoConfig | None = None):
        self.config = c = config or TempoConfig()
        self._alpha = 1.0 - float(np.exp(-c.update_every / (c.smooth_s * fps)))
        self._hold = max(1, int(round(c.jump_hold_s * fps / c.update_every)))
        self.reset()

    def reset(self) -> None:
        self.log_bpm: float | None = None  # the followed tempo, on the level currently tracked
        self.ref: float | None = None
        self.level = 0.0  # octaves between the level tracked now and the one the reference was read on
        self.rate = 1.0
        self._away = 0

    @property
    def bpm(self) -> float | None:
        return None if self.log_bpm is None else float(2.0 ** (self.log_bpm - self.level))

    def update(self, tracker: "TempoTracker", raw_bpm: float | None) -> float:
        c = self.config
        if raw_bpm is not None and raw_bpm > 0:
            self._take(tracker, float(np.log2(raw_bpm)))
        if self.ref is None and tracker.full and self.log_bpm is not None:
            self.ref = self.log_bpm - self.level
        if self.ref is not None:
            self.rate = float(min(max(2.0 ** (self.log_bpm - self.level - self.ref), c.min_rate), c.max_rate))
        return self.rate

    def _take(self, tracker: "TempoTracker", log_raw: float) -> None:
        if self.log_bpm is None:
            self.log_bpm = log_raw
            return
        local = tracker.near(2.0 ** self.log_bpm, self.config.near_octaves)
        if local is not None:
            self._away = 0
            self.log_bpm += self._alpha * (float(np.log2(local)) - self.log_bpm)
            return
        self._away += 1
        if self._away < self._hold:
            return
        self._away = 0
        # relock on the global reading without moving the rate: a change of metrical level, or a jump no reading
        # can tell from one (a cut to a track 1.5x as fast reads like its 2/3 level); only a tempo followed
        # continuously moves the clock
        self.level += log_raw - self.log_bpm
        self.log_bpm = log_raw


class TimeBase:
    """What the engine needs per output frame: the tempo read from the audio row, the rate, the model
    frames due, the row the model hears (its `tempo` column moved to the clock's tempo)."""

    def __init__(self, fps: float, audio_config: dict, dancers: int, dims: int, config: TempoConfig | None = None):
        n_mels = int(audio_config.get("n_mels", 64))
        self.onset_index, self.tempo_index = n_mels + 1, n_mels + 2  # AudioFeatureConfig.names: ..., onset, tempo, pulse
        self.tracker = TempoTracker(fps, config)
        self.follower = TempoFollower(fps, config)
        self.clock = ModelClock(dancers, dims, max_due=3)
        self.row = None

    @property
    def rate(self) -> float:
        return self.follower.rate

    @property
    def bpm(self) -> float | None:
        return self.follower.bpm

    def reset(self) -> None:
        self.tracker.reset()
        self.follower.reset()
        self.clock.reset()

    def due(self, audio_row: np.ndarray) -> int:
        raw = self.tracker.update(audio_row[self.onset_index])
        rate = self.follower.update(self.tracker, raw)
        if self.row is None:
            self.row = np.array(audio_row, np.float32)
        self.row[:] = audio_row
        self.row[self.tempo_index] -= np.log2(rate)  # `tempo` is log2(bpm / 120): the tempo on the model's clock
        return self.clock.due(rate)
