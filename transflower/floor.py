"""Keep the dancer's feet out of the floor.

The model samples root height and leg rotations as separate features, so a sampled pose can put a
foot below the ground (y = 0) though no training pose does. `FloorClamp` runs forward kinematics of
the leg chains only and lifts the root by the depth of the lowest foot joint. It never pulls the body
down, so jumps stay jumps. Used per frame by the live loop (every dancer of a crowd in one call) and
over whole clips by `generate`. The kinematics is a compiled kernel (transflower.kernels) writing into
buffers kept between calls: a frame allocates nothing.
"""
from __future__ import annotations

import numpy as np

from transflower.skeleton import Skeleton

FOOT_JOINTS = ("RightToe", "RightHeel", "LeftToe", "LeftHeel")


class FloorClamp:
    def __init__(self, skeleton: Skeleton, floor_y: float = 0.0):
        from transflower import kernels

        self._kernel, self._lift = kernels.lowest_foot, kernels.lift_feet
        self.floor_y = float(floor_y)
        names = list(skeleton.names)
        feet = [names.index(n) for n in FOOT_JOINTS if n in names]
        # the joints on the way from the root to any foot joint, in parent-first order
        chain = set()
        for j in feet:
            while j >= 0:
                chain.add(j)
                j = int(skeleton.parents[j])
        self.chain = np.array(sorted(chain), dtype=np.int64)
        self.feet = np.array(feet, dtype=np.int64)
        self.parents = np.ascontiguousarray(skeleton.parents, dtype=np.int64)
        self.offsets = np.ascontiguousarray(skeleton.offsets, dtype=np.float64)
        J = len(self.parents)
        self._grot, self._gpos = np.zeros((J, 4)), np.zeros((J, 3))
        self._low = np.zeros(0)
        self.lifts = 0  # frames that needed a lift

    def lowest_foot(self, root_positions: np.ndarray, local_rotations: np.ndarray) -> np.ndarray:
        """Height of the lowest foot joint per frame: root (..., 3), local rotations (..., J, 4).
        Returns a view of a buffer the next call overwrites."""
        shape = np.shape(local_rotations)[:-2]
        J = len(self.parents)
        root = np.ascontiguousarray(root_positions, dtype=np.float64).reshape(-1, 3)
        rots = np.ascontiguousarray(local_rotations, dtype=np.float64).reshape(-1, J, 4)
        if self._low.shape[0] != root.shape[0]:
            self._low = np.zeros(root.shape[0])
        self._kernel(root, rots, self.chain, self.parents, self.offsets, self.feet, self._grot, self._gpos, self._low)
        return self._low.reshape(shape)

    def apply(self, root_positions: np.ndarray, local_rotations: np.ndarray) -> None:
        """Lift root_positions[..., 1] in place wherever a foot is below the floor."""
        root, rots = root_positions, local_rotations
        live = (isinstance(root, np.ndarray) and root.ndim == 2 and root.dtype == np.float64 and root.flags.c_contiguous
                and rots.dtype == np.float64 and rots.flags.c_contiguous and rots.ndim == 3)
        if not live:  # whole clips, other shapes or dtypes: through a float64 copy
            low = self.lowest_foot(root, rots)
            lift = np.maximum(self.floor_y - low, 0.0)
            self.lifts += int(np.count_nonzero(lift))
            root[..., 1] += lift
            return
        if self._low.shape[0] != root.shape[0]:
            self._low = np.zeros(root.shape[0])
        self.lifts += self._lift(root, rots, self.chain, self.parents, self.offsets, self.feet, self._grot, self._gpos,
                                 self._low, self.floor_y)


class Grounding:
    """Keep a dancer standing on the floor inside the model's own loop.

    The model samples each frame's root height as a change from the last one (the residual flow), and
    nothing ties that height to the legs: over a rollout it drifts. The shipped model's dancers rose by
    20-40 cm in 30 s (hips from ~100 to 130-138 cm, the lowest foot from ~20 to 40-60 cm: benchmarks/
    README, 2026-11-28), a dance no training clip shows, and fed back to the model as its own past.
    `Grounding` corrects the root height of each sampled pose *before* it is fed back (the engine's step,
    or `generate`'s pose hook), so the model goes on from a dancer on the floor:

    - where a dancer stands = the lowest foot point over the last `window` frames (a jump or a raised leg
      lasts less than that; one foot is on the floor within any second of real dance);
    - the floor = where its warm-start clip stands (that clip's 2nd percentile; the captures' floors
      differ by clip, -4 to 15 cm, and the model learned each style at its own);
    - a dancer standing above it moves down by `rate` x the gap per frame (0.2: a 20 cm float closes to
      1 cm in ~13 frames, with no step in any frame over 0.2 x the gap); one standing more than `sink`
      below it moves up the same way.

    Traction (`traction` > 0, per dancer): the model also samples the root's travel apart from the legs,
    and its dancers glide over the floor on a planted foot (sliding 2-4x the real dances when asked for a
    style, benchmarks/README). Where the lowest foot point of a grounded pose is within `near` cm of the
    floor (fading out over the next `fade` cm), its horizontal slide since the last frame beyond `slip` cm
    (default 1.5: 0.3 m/s at 20 fps, a pivot's or a glide's share) is taken out of the root's
    displacement, times `traction` (1: the planted foot stays put), before the pose is fed back: the body
    travels as far as the stance leg carries it. A point moving about the root faster than `swing` cm a
    frame is a swing skimming the floor, not a stance: its weight fades to 0 over the next `swing_fade` cm
    (defaults 6 and 6; a planted foot of the real dances moves about the root under 5.7-6.7 cm a frame in
    99% of its frames, by style: experiments/2026-11-probes/probe_stance.py). Holding a swing threw the body against it, and
    the other foot past the real dances' fastest frames (the cha-cha's spikes, measured 2026-11-28:
    experiments/2026-11-to-12-model-history.md). Off by default: a style's preset turns it on
    (transflower.styles, "traction"); the auto dance slides no more than real dances.

    Works on unscaled motion-feature rows (B, D) in place, float32; a compiled kernel, buffers made here:
    a frame allocates nothing."""

    def __init__(self, skeleton: Skeleton, dancers: int = 1, window: int = 20, rate: float = 0.2, sink: float = 5.0,
                 traction: float = 0.0, slip: float = 1.5, near: float = 5.0, fade: float = 3.0,
                 swing: float = 6.0, swing_fade: float = 6.0):
        from transflower import kernels
        from transflower.motion_features import MotionFeatures

        self._kernel, self._low_rows, self._traction = kernels.ground_rows, kernels.feet_low_rows, kernels.traction_rows
        clamp = FloorClamp(skeleton)
        self.chain, self.parents, self.offsets, self.feet = clamp.chain, clamp.parents, clamp.offsets, clamp.feet
        J = len(self.parents)
        self.slot = np.full(J, -1, np.int64)
        for s, j in enumerate(MotionFeatures(skeleton).rotating):
            self.slot[j] = s
        if not 0.0 < rate <= 1.0 or int(window) < 1:
            raise ValueError(f"Grounding: rate {rate} (expected in (0, 1]) / window {window} (expected >= 1)")
        self.rate, self.sink, self.window = float(rate), float(sink), int(window)
        if slip < 0 or near < 0 or fade <= 0:
            raise ValueError(f"Grounding: slip {slip} / near {near} (expected >= 0), fade {fade} (expected > 0)")
        self.slip, self.near, self.fade = float(slip), float(near), float(fade)
        if swing < 0 or swing_fade <= 0:
            raise ValueError(f"Grounding: swing {swing} (expected >= 0; 0 = off), swing_fade {swing_fade} (expected > 0)")
        self.swing, self.swing_fade = float(swing), float(swing_fade)
        B = int(dancers)
        self.traction = np.zeros(B)  # per dancer (set_traction)
        self.set_traction(traction)
        self._grot, self._gpos = np.zeros((J, 4)), np.zeros((J, 3))
        self.floor = np.zeros(B)
        self.history = np.zeros((B, self.window))
        self.head = 0
        self.shift = np.zeros(B)  # the last frame's change per dancer, cm
        self._low = np.zeros(B)
        self.moved_cm = 0.0  # |change| summed over frames and dancers, for the run's summary
        self._prev_feet = np.zeros((B, len(self.feet), 3))
        self._has_prev = np.zeros(B, np.bool_)
        self.held_cm = 0.0  # traction's horizontal corrections summed over frames and dancers

    def set_traction(self, value: float, dancer: int | None = None) -> None:
        """Traction strength in [0, 1] for one dancer (default: all); 0 = off."""
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"Grounding: traction {value} (expected in [0, 1])")
        self.traction[slice(None) if dancer is None else dancer] = value

    def lowest(self, rows: np.ndarray) -> np.ndarray:
        """(N, D) unscaled features -> (N,) each row's lowest foot point height, cm (a new array)."""
        rows = np.ascontiguousarray(np.atleast_2d(rows), np.float32)
        out = np.zeros(len(rows))
        self._low_rows(rows, self.slot, self.chain, self.parents, self.offsets, self.feet, self._grot, self._gpos, out)
        return out

    def seed_state(self, seed_rows: np.ndarray) -> tuple[float, np.ndarray]:
        """A warm-start clip (unscaled feature rows) -> (its floor, its last `window` lowest-foot heights)."""
        low = self.lowest(seed_rows)
        recent = low[-self.window:]
        return float(np.percentile(low, 2)), np.concatenate([np.full(self.window - len(recent), recent[0]), recent])

    def set_state(self, dancer: int, floor: float, recent: np.ndarray) -> None:
        """Dancer `dancer` starts over at `floor` with these recent heights (oldest first)."""
        self.floor[dancer] = floor
        self._has_prev[dancer] = False  # a fresh start: no slide to measure on its first frame
        for k in range(self.window):  # the oldest goes where the next frame writes
            self.history[dancer, (self.head + 1 + k) % self.window] = recent[k]

    def start(self, seed_rows: np.ndarray, dancer: int | None = None) -> None:
        """(Re)start dancer(s) from a warm-start clip (unscaled feature rows)."""
        floor, recent = self.seed_state(seed_rows)
        for i in [dancer] if dancer is not None else range(len(self.floor)):
            self.set_state(i, floor, recent)

    def apply(self, rows: np.ndarray) -> None:
        """Ground this frame's poses: rows (B, D) unscaled float32, C-contiguous, changed in place."""
        self.head = (self.head + 1) % self.window
        self.moved_cm += self._kernel(rows, self.slot, self.chain, self.parents, self.offsets, self.feet, self._grot,
                                      self._gpos, self._low, self.history, self.head, self.floor, self.rate, self.sink,
                                      self.shift)
        # always run (2 us): with traction 0 it only tracks the feet, so a dancer whose style turns traction on
        # mid-show measures its first slide from the last frame, not from whenever it was last on
        self.held_cm += self._traction(rows, self.slot, self.chain, self.parents, self.offsets, self.feet,
                                       self._grot, self._gpos, self._prev_feet, self._has_prev, self.floor,
                                       self.traction, self.slip, self.near, self.fade, self.swing, self.swing_fade)
