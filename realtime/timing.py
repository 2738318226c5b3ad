"""What the live loop measures about itself, without allocating per frame.

`RunStats`: a whole-run log-binned histogram (2.3% wide bins from 1 us to 100 s) with exact count and
max: p50/p99/max over an hour in fixed memory. `RollingStats`: the recent values (status line).
`OverloadMonitor`: share of late/skipped frames over a sliding window (the overload hint).
`GcWatch`: garbage-collector passes during the run and the longest one (a late-frame suspect).
"""
from __future__ import annotations

import gc
import math
import time

import numpy as np


class RunStats:
    BINS_PER_DECADE = 100
    LO_LOG10 = -3.0  # 1 us, in ms

    def __init__(self):
        self.counts = np.zeros(int(8 * self.BINS_PER_DECADE) + 1, np.int64)
        self.n = 0
        self.max = 0.0

    def add(self, ms: float) -> None:
        i = int((math.log10(ms) - self.LO_LOG10) * self.BINS_PER_DECADE) if ms > 0 else 0
        self.counts[min(max(i, 0), len(self.counts) - 1)] += 1
        self.n += 1
        if ms > self.max:
            self.max = ms

    def pct(self, q: float) -> float:
        if not self.n:
            return float("nan")
        i = int(np.searchsorted(np.cumsum(self.counts), q / 100.0 * self.n))
        return min(10 ** ((i + 0.5) / self.BINS_PER_DECADE + self.LO_LOG10), self.max)  # the bin's centre

    def summary(self) -> dict:
        r = lambda v: round(v, 3)  # noqa: E731
        return {"p50": r(self.pct(50)), "p99": r(self.pct(99)), "max": r(self.max) if self.n else None, "n": self.n}


class RollingStats:
    """Fixed-size ring of recent values (no allocation per frame) with percentiles on demand."""

    def __init__(self, size: int = 2048):
        self.buf = np.zeros(size, np.float64)
        self.n = 0

    def add(self, v: float) -> None:
        self.buf[self.n % len(self.buf)] = v
        self.n += 1

    def values(self) -> np.ndarray:
        return self.buf[: min(self.n, len(self.buf))]

    def pct(self, q: float) -> float:
        v = self.values()
        return float(np.percentile(v, q)) if len(v) else float("nan")


class FrameTimes:
    """Per frame: the engine's share (ONNX runs), the host's (everything else) and the whole loop body."""

    def __init__(self):
        self.engine, self.host, self.step = RunStats(), RunStats(), RunStats()
        self.recent_engine, self.recent_host, self.recent_step = RollingStats(), RollingStats(), RollingStats()

    def add(self, engine_ms: float, step_ms: float) -> None:
        host_ms = max(step_ms - engine_ms, 0.0)
        self.engine.add(engine_ms)
        self.host.add(host_ms)
        self.step.add(step_ms)
        self.recent_engine.add(engine_ms)
        self.recent_host.add(host_ms)
        self.recent_step.add(step_ms)


class OverloadMonitor:
    """Share of late or skipped frames over a sliding window (0.25 s buckets, preallocated).

    `update(tick, late_tolerance)` once per emitted frame; returns True the first time the share over a
    full window exceeds `fraction` (the caller logs the hint once)."""

    def __init__(self, window_s: float = 5.0, fraction: float = 0.10):
        self.window_s, self.fraction = window_s, fraction
        self.frames = np.zeros(int(math.ceil(window_s * 4)) + 1, np.int64)
        self.bad = np.zeros_like(self.frames)
        self.last_bucket = self.last_index = -1
        self.hinted = False

    def update(self, tick, elapsed: float, late_tolerance: float) -> bool:
        n = len(self.frames)
        b = int(elapsed * 4)
        if b != self.last_bucket:  # clear the buckets the window slid past
            for k in range(max(self.last_bucket + 1, b - n + 1), b + 1):
                self.frames[k % n] = 0
                self.bad[k % n] = 0
            self.last_bucket = b
        skipped_now = tick.frame_index - self.last_index - 1
        self.last_index = tick.frame_index
        self.frames[b % n] += 1 + skipped_now
        self.bad[b % n] += (tick.late_by > late_tolerance) + skipped_now
        if self.hinted or elapsed < self.window_s:
            return False
        total = int(self.frames.sum())
        self.hinted = bool(total and self.bad.sum() > self.fraction * total)
        return self.hinted

    @property
    def share(self) -> tuple[int, int]:
        return int(self.bad.sum()), int(self.frames.sum())


class GcWatch:
    """Counts garbage-collector passes while installed, and times the longest (gc.callbacks)."""

    def __init__(self):
        self.collections = [0, 0, 0]
        self.max_ms = 0.0
        self._t0 = 0.0

    def _callback(self, phase, info):
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.collections[info["generation"]] += 1
            self.max_ms = max(self.max_ms, 1000 * (time.perf_counter() - self._t0))

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def summary(self) -> dict:
        return {"gen0": self.collections[0], "gen1": self.collections[1], "gen2": self.collections[2],
                "max_ms": round(self.max_ms, 3)}


def set_thread_priority(mode: str) -> str:
    """Real-time scheduling for the calling thread (the frame loop): "auto" tries it and falls back,
    "realtime" requires it (UserError if refused), "normal" leaves the thread alone. Returns what the
    thread now runs as: "realtime" or "normal".

    Why: on a busy machine most late frames are not slow steps but late wake-ups, the loop waiting
    behind other processes after its sleep ends. Under SCHED_FIFO the kernel runs it the moment it wakes
    (experiments/2026-11-benchmark-history.md, "The loop's thread under SCHED_FIFO"). Only this thread is raised: the audio thread and
    onnxruntime's pool (if --threads > 1) keep normal priority, and the kernel's RT throttling
    (sched_rt_runtime_us) keeps a runaway loop from freezing the machine. Linux only; needs root,
    CAP_SYS_NICE or an RLIMIT_RTPRIO (e.g. the `audio` group's limits.conf on most audio distributions).
    The side threads that take the GIL on a schedule (the audio callback, the file feeder) follow it one
    step below (`SideThreadPriority`): see there why."""
    import os

    from transflower.errors import UserError

    if mode not in ("auto", "realtime", "normal"):
        raise UserError(f"--priority {mode!r}: expected auto, realtime or normal")
    if mode == "normal":
        return "normal"
    if not hasattr(os, "sched_setscheduler"):
        if mode == "realtime":
            raise UserError("--priority realtime: this platform has no SCHED_FIFO (Linux only)")
        return "normal"
    try:
        prio = min(REALTIME_PRIORITY, os.sched_get_priority_max(os.SCHED_FIFO))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))  # 0: this thread (a Linux task)
        global _side_priority
        _side_priority = max(1, prio - 1)
        return "realtime"
    except (PermissionError, OSError) as e:
        if mode == "realtime":
            raise UserError(f"--priority realtime: the system refused SCHED_FIFO ({e.strerror or e}); run with "
                            "CAP_SYS_NICE or an rtprio limit, or use --priority auto") from None
        return "normal"


def reset_thread_priority() -> None:
    """Back to normal scheduling (the loop ended; tests run sessions in threads that live on); side threads
    follow at their next wake."""
    import os

    global _side_priority
    _side_priority = None
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def lock_memory(mode: str) -> str:
    """Keep the live process's memory resident (mlockall), so a page the loop touches is never read back
    from disk mid-frame. "auto" tries and falls back, "on" requires it (UserError if refused), "off" leaves
    memory alone. Returns "locked" or "unlocked".

    Why: a kernel that reclaims memory proactively (DAMON's pageout scheme, memory-pressure reclaim) drops
    file-backed pages not touched for a while: code of a shared library or of Python run once a minute
    (the song looping, a status line, a collection). The next touch is a major page fault, a disk read of
    milliseconds, taken with the GIL held: a late frame. MCL_ONFAULT locks each page as it is first used
    instead of reading every mapped library in at once (the live process stays at its working set);
    MCL_FUTURE covers what is mapped later, and is asked for only where the lock limit cannot be hit
    afterwards (unlimited, or root), since a later allocation past the limit would fail."""
    import ctypes
    import ctypes.util
    import os
    import resource

    from transflower.errors import UserError

    if mode not in ("auto", "on", "off"):
        raise UserError(f"--lock-memory {mode!r}: expected auto, on or off")
    if mode == "off":
        return "unlocked"
    MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4  # <sys/mman.h>, Linux
    why = None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        flags = MCL_CURRENT | MCL_ONFAULT
        if soft == resource.RLIM_INFINITY or (hasattr(os, "geteuid") and os.geteuid() == 0):
            flags |= MCL_FUTURE
        if libc.mlockall(flags) == 0:
            global _memory_locked
            _memory_locked = True
            return "locked"
        why = os.strerror(ctypes.get_errno())
    except (OSError, AttributeError, ValueError) as e:  # not Linux, no libc, no RLIMIT_MEMLOCK
        why = str(e)
    if mode == "on":
        raise UserError(f"--lock-memory on: the system refused mlockall ({why}); raise the memlock limit "
                        "(ulimit -l, limits.conf) or run with CAP_IPC_LOCK, or use --lock-memory auto")
    return "unlocked"


def unlock_memory() -> None:
    """Undo lock_memory (the loop ended; tests run sessions in a process that lives on)."""
    global _memory_locked
    if not _memory_locked:
        return
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).munlockall()
    except (OSError, AttributeError):
        pass
    _memory_locked = False


_memory_locked = False
REALTIME_PRIORITY = 10  # low among RT priorities: above every normal process, below the kernel's own RT threads
_side_priority: int | None = None  # what side threads should run at while the loop runs realtime (None: normal)


class SideThreadPriority:
    """Keeps a side thread that takes the GIL on a schedule (an audio callback, the file feeder) in the
    real-time class one step below the frame loop while the loop runs there, and normal otherwise.

    Why: the loop, however promptly the kernel wakes it, still needs the GIL. A normal-priority thread
    that holds the GIL can be preempted by any other process on its core for a whole time slice (several
    ms), and the real-time loop then waits behind it: priority inversion, which the GIL does not resolve.
    In the real-time class the holder runs its few microseconds to the end. `follow()` costs a compare
    per call; it changes the thread's class only when the loop's has changed. Call it from the thread."""

    __slots__ = ("applied",)

    def __init__(self):
        self.applied: int | None = None

    def follow(self) -> None:
        want = _side_priority
        if want == self.applied:
            return
        import os

        try:
            if want is None:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            else:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(want))
        except (AttributeError, OSError):
            pass  # refused: stays as it is, and is not asked again until the loop's class changes
        self.applied = want
