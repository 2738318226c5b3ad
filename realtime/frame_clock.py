"""Frame pacing on absolute deadlines.

Frame ``k`` is due at ``t0 + k / fps``, computed from an integer counter every time (never
``t += 1/fps``), so there is no accumulated drift however long the loop runs; only the clock's own
rate matters.

Lateness policy when the loop body overran:
- ``"skip"``: a frame that is at most one period late is emitted at once (counted in ``late``); if the
  loop overran by more than one period, every frame whose deadline has already passed is dropped
  (counted in ``skipped``) and the clock waits for the next grid point ``t0 + m / fps`` in the future.
  The output stays on the grid; frame indices jump (``Tick.frame_index``).
- ``"hold"``: every frame is emitted; late ones back to back until the loop has caught up (each counted
  in ``late``). Use it when every frame must be produced (e.g. a file feeder that must not lose audio).

Sleeping: ``sleep()`` until ``spin_s`` before the deadline, then yield (``sleep(0)``) until it passes:
accurate to tens of microseconds without burning a core.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["FrameClock", "Tick"]


@dataclass(frozen=True)
class Tick:
    frame_index: int   # k: this frame's index on the grid t0 + k / fps
    deadline: float    # t0 + k / fps, in the clock's time base
    now: float         # clock() when wait_next returned
    late_by: float     # now - deadline (>= 0 up to the sleep overshoot)


class FrameClock:
    def __init__(self, fps: float, late_policy: str = "skip", clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep, spin_s: float = 0.001,
                 late_tolerance_s: float | None = None, history: int = 4096):
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if late_policy not in ("skip", "hold"):
            raise ValueError(f"late_policy must be 'skip' or 'hold', got {late_policy!r}")
        self.fps = float(fps)
        self.period = 1.0 / self.fps
        self.late_policy = late_policy
        self._clock = clock
        self._sleep = sleep
        self.spin_s = float(spin_s)
        # a frame counts as "late" only if emitted more than this after its deadline
        self.late_tolerance_s = (min(0.002, 0.25 * self.period) if late_tolerance_s is None
                                 else float(late_tolerance_s))
        self.t0: float | None = None
        self._next = 0
        # counters
        self.frames = 0
        self.late = 0
        self.skipped = 0
        self.max_late = 0.0
        self.last_tick: Tick | None = None
        # recent late_by values (preallocated ring) for jitter statistics
        self._hist = np.zeros(max(1, int(history)), dtype=np.float64)
        self._hist_n = 0

    # ------------------------------------------------------------------
    def start(self, t0: float | None = None) -> None:
        """Anchor the grid: frame 0 is due at ``t0`` (default: now). Resets the counters."""
        self.t0 = self._clock() if t0 is None else float(t0)
        self._next = 0
        self.frames = self.late = self.skipped = 0
        self.max_late = 0.0
        self.last_tick = None
        self._hist_n = 0

    def deadline(self, k: int) -> float:
        return self.t0 + k / self.fps

    @property
    def next_frame_index(self) -> int:
        return self._next

    def wait_next(self) -> Tick:
        """Block until the next frame's deadline (per the late policy) and return its Tick."""
        if self.t0 is None:
            self.start()
        clock = self._clock
        k = self._next
        d = self.t0 + k / self.fps
        now = clock()
        if now >= d:
            if self.late_policy == "skip" and now - d > self.period:
                m = math.floor((now - self.t0) * self.fps)  # last grid point already passed
                while self.t0 + m / self.fps > now:         # float rounding guard
                    m -= 1
                self.skipped += m + 1 - k
                k = m + 1
                d = self.t0 + k / self.fps
                now = self._sleep_until(d)
        else:
            now = self._sleep_until(d)
        late_by = now - d
        if late_by > self.late_tolerance_s:
            self.late += 1
        if late_by > self.max_late:
            self.max_late = late_by
        self._hist[self._hist_n % self._hist.shape[0]] = late_by
        self._hist_n += 1
        self.frames += 1
        self._next = k + 1
        tick = Tick(k, d, now, late_by)
        self.last_tick = tick
        return tick

    def _sleep_until(self, d: float) -> float:
        clock, sleep, spin = self._clock, self._sleep, self.spin_s
        now = clock()
        remaining = d - now
        if remaining > spin:
            sleep(remaining - spin)
            now = clock()
        while now < d:
            sleep(0)  # yield the CPU (and the GIL) while spinning the last ~spin_s
            now = clock()
        return now

    # ------------------------------------------------------------------
    def late_history(self) -> np.ndarray:
        """The most recent late_by values (seconds), oldest first (a copy)."""
        n, size = self._hist_n, self._hist.shape[0]
        if n <= size:
            return self._hist[:n].copy()
        i = n % size
        return np.concatenate([self._hist[i:], self._hist[:i]])

    def stats(self) -> dict:
        h = self.late_history()
        out = dict(fps=self.fps, policy=self.late_policy, frames=self.frames, late=self.late,
                   skipped=self.skipped, max_late_ms=1e3 * self.max_late)
        if h.size:
            out.update(late_p50_ms=1e3 * float(np.percentile(h, 50)),
                       late_p99_ms=1e3 * float(np.percentile(h, 99)))
        return out
