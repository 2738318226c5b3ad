"""FrameClock: deterministic tests on a fake clock, plus one loose real-time check."""
from __future__ import annotations

import time

import numpy as np
import pytest

from transflower.realtime.frame_clock import FrameClock, Tick


class FakeClock:
    """Deterministic time: sleep(d) advances by d (sleep(0), the spin yield, by 1 us)."""

    def __init__(self, t=1000.0):
        self.t = t
        self.sleeps = 0

    def __call__(self):
        return self.t

    def sleep(self, d):
        self.sleeps += 1
        self.t += d if d > 0 else 1e-6


def make(fps=30, policy="skip", **kw):
    fc = FakeClock()
    return FrameClock(fps, late_policy=policy, clock=fc, sleep=fc.sleep, **kw), fc


def test_on_time_frames_hit_deadlines():
    clk, fc = make(30)
    clk.start()
    t0 = clk.t0
    for k in range(100):
        tick = clk.wait_next()
        assert isinstance(tick, Tick)
        assert tick.frame_index == k
        assert tick.deadline == t0 + k / 30
        assert 0 <= tick.late_by < 2e-6
        fc.t += 0.01  # work shorter than a period
    assert clk.frames == 100 and clk.late == 0 and clk.skipped == 0


def test_skip_policy_drops_missed_frames_and_resyncs():
    clk, fc = make(10, "skip")
    clk.start()
    t0 = clk.t0
    clk.wait_next()                  # frame 0 at t0
    fc.t += 0.35                     # overrun: frames 1, 2, 3 deadlines passed (3.5 periods)
    tick = clk.wait_next()
    assert clk.skipped == 3
    assert tick.frame_index == 4 and tick.deadline == t0 + 0.4
    assert tick.now - tick.deadline < 2e-6
    # one period or less late: emitted at once, counted late, nothing skipped
    fc.t += 0.15                     # frame 5 due at t0+0.5, now t0+0.55
    tick = clk.wait_next()
    assert tick.frame_index == 5 and abs(tick.late_by - 0.05) < 3e-6
    assert clk.late == 1 and clk.skipped == 3
    assert abs(clk.max_late - 0.05) < 3e-6
    tick = clk.wait_next()           # back on the grid
    assert tick.frame_index == 6 and tick.late_by < 2e-6


def test_hold_policy_emits_missed_frames_back_to_back():
    clk, fc = make(10, "hold")
    clk.start()
    t0 = clk.t0
    clk.wait_next()
    fc.t += 0.35
    ticks = [clk.wait_next() for _ in range(4)]
    assert [t.frame_index for t in ticks] == [1, 2, 3, 4]
    assert np.allclose([t.late_by for t in ticks[:3]], [0.25, 0.15, 0.05], atol=3e-6)
    assert ticks[3].deadline == t0 + 0.4 and ticks[3].late_by < 2e-6  # caught up: waited
    assert clk.late == 3 and clk.skipped == 0 and abs(clk.max_late - 0.25) < 3e-6


def test_no_drift_after_3_6_million_frames():
    """One simulated hour+ at 1000 fps (3.6M frames) with jittery work: the last frame is still
    exactly on the grid t0 + k/fps, and time elapsed matches frames/fps."""
    fps = 1000.0
    clk, fc = make(fps, "skip", spin_s=0.0)
    clk.start()
    t0 = clk.t0
    rng = np.random.default_rng(0)
    work = rng.uniform(0.0, 0.9e-3, 4096)  # always less than one period
    n = 3_600_000
    wait = clk.wait_next
    for k in range(n):
        wait()
        fc.t += work[k & 4095]
    tick = wait()
    assert tick.frame_index == n and clk.skipped == 0 and clk.late == 0
    assert tick.deadline == t0 + n / fps
    assert abs(tick.now - (t0 + 3600.0)) < 1e-6
    # what accumulating t += 1/fps would have given (shows the test would catch it)
    t = t0
    p = 1 / fps
    for _ in range(n):
        t += p
    assert abs(t - (t0 + 3600.0)) > abs(tick.now - (t0 + 3600.0))


def test_history_and_stats():
    clk, fc = make(50, "hold", history=8)
    clk.start()
    for k in range(20):
        clk.wait_next()
        fc.t += 0.03 if k == 10 else 0.001
    h = clk.late_history()
    assert h.shape == (8,)
    s = clk.stats()
    assert s["frames"] == 20 and s["late"] >= 1 and s["max_late_ms"] > 9


def test_bad_args():
    with pytest.raises(ValueError):
        FrameClock(0)
    with pytest.raises(ValueError):
        FrameClock(30, late_policy="drop")


def test_real_time_waits_for_its_deadlines():
    """Real clock, 30 fps for 0.5 s: frames come in order and never before their deadline (how late
    they are on a loaded machine is a benchmark's business, not a test's)."""
    clk = FrameClock(30)
    clk.start()
    t_start = time.perf_counter()
    ticks = [clk.wait_next() for _ in range(16)]
    elapsed = time.perf_counter() - t_start
    assert [t.frame_index for t in ticks] == list(range(ticks[0].frame_index, ticks[0].frame_index + 16)) \
        or clk.skipped > 0
    assert elapsed >= 14 / 30  # it waited: 15 frame periods after the first tick
    assert min(t.late_by for t in ticks) >= 0


def test_thread_priority_modes():
    """normal leaves the thread alone; auto raises it where allowed and says which; reset undoes it; a bad
    mode is a UserError. Run in a thread of its own so the test runner's thread keeps its policy."""
    import os
    import threading

    import pytest

    from transflower.realtime.timing import reset_thread_priority, set_thread_priority
    from transflower.errors import UserError

    with pytest.raises(UserError, match="--priority"):
        set_thread_priority("fast")
    seen = {}

    def body():
        seen["normal"] = set_thread_priority("normal")
        seen["auto"] = set_thread_priority("auto")
        if hasattr(os, "sched_getscheduler"):
            seen["policy"] = os.sched_getscheduler(0)
            reset_thread_priority()
            seen["after"] = os.sched_getscheduler(0)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen["normal"] == "normal"
    assert seen["auto"] in ("realtime", "normal")
    if "policy" in seen:
        assert seen["policy"] == (os.SCHED_FIFO if seen["auto"] == "realtime" else os.SCHED_OTHER)
        assert seen["after"] == os.SCHED_OTHER
    assert os.sched_getscheduler(0) == os.SCHED_OTHER if hasattr(os, "sched_getscheduler") else True


def test_side_threads_follow_the_loop_priority():
    """A side thread that takes the GIL (the file feeder, an audio callback) runs one real-time step below
    the loop while the loop runs real-time, and goes back to normal when the loop stops: otherwise a
    preempted holder of the GIL stalls the real-time loop (priority inversion)."""
    import os
    import threading

    import pytest

    from transflower.realtime.timing import SideThreadPriority, reset_thread_priority, set_thread_priority

    if not hasattr(os, "sched_getscheduler"):
        pytest.skip("no sched_getscheduler on this platform")
    loop_up, side_done, loop_done = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def loop():
        seen["loop"] = set_thread_priority("auto")
        seen["loop_prio"] = os.sched_getparam(0).sched_priority
        loop_up.set()
        side_done.wait(5)
        reset_thread_priority()
        loop_done.set()

    def side():
        prio = SideThreadPriority()
        prio.follow()
        seen["before"] = os.sched_getscheduler(0)
        loop_up.wait(5)
        prio.follow()
        seen["during"] = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
        side_done.set()
        loop_done.wait(5)
        prio.follow()
        seen["after"] = os.sched_getscheduler(0)

    threads = [threading.Thread(target=side), threading.Thread(target=loop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["before"] == os.SCHED_OTHER
    if seen["loop"] != "realtime":
        pytest.skip("this system refuses SCHED_FIFO: nothing for side threads to follow")
    assert seen["during"] == (os.SCHED_FIFO, seen["loop_prio"] - 1)
    assert seen["after"] == os.SCHED_OTHER


def test_lock_memory_modes_and_refusal(monkeypatch):
    """--lock-memory: off leaves memory alone, auto locks where allowed (and unlock undoes it), on insists;
    a refusal falls back under auto and names the option and the fix under on."""
    import ctypes
    from pathlib import Path

    import pytest

    from transflower.realtime import timing
    from transflower.errors import UserError

    def locked_kb():
        st = Path("/proc/self/status")
        if not st.exists():
            return None
        return next((int(line.split()[1]) for line in st.read_text().splitlines() if line.startswith("VmLck:")), None)

    with pytest.raises(UserError, match="--lock-memory"):
        timing.lock_memory("always")
    assert timing.lock_memory("off") == "unlocked"
    got = timing.lock_memory("auto")
    assert got in ("locked", "unlocked")
    if got == "locked":
        buf = bytearray(1 << 20)  # touched after the lock: locked on first use (MCL_ONFAULT)
        buf[::4096] = b"x" * len(buf[::4096])
        if locked_kb() is not None:
            assert locked_kb() > 0
        timing.unlock_memory()
        if locked_kb() is not None:
            assert locked_kb() == 0

    class Refusing:
        def __init__(self, *a, **k):
            pass

        def mlockall(self, flags):
            ctypes.set_errno(1)
            return -1

    monkeypatch.setattr(ctypes, "CDLL", Refusing)
    assert timing.lock_memory("auto") == "unlocked"
    with pytest.raises(UserError, match="--lock-memory on: the system refused mlockall"):
        timing.lock_memory("on")


def test_thread_priority_refused(monkeypatch):
    """Where the system refuses SCHED_FIFO (no CAP_SYS_NICE), auto falls back and realtime says why."""
    import os

    import pytest

    from transflower.realtime.timing import set_thread_priority
    from transflower.errors import UserError

    if not hasattr(os, "sched_setscheduler"):
        pytest.skip("no sched_setscheduler on this platform")

    def refuse(*a):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert set_thread_priority("auto") == "normal"
    with pytest.raises(UserError, match="refused SCHED_FIFO.*Operation not permitted"):
        set_thread_priority("realtime")
