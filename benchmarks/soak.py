"""Soak / sustained run: the live loop on a (looped) audio file, the demo track or an input device, at real
time, for a long time; records what degrades: late/skipped frames, inter-frame interval jitter, CPU share
and resident memory of the process (growth), audio-in -> OSC-out latency and its drift (first vs last 10%
of the run), engine resets, audio overruns, UDP errors; and, on Linux, the CPU time the hypervisor took
from this virtual machine (`steal`, /proc/stat) and how many late frames fell in a moment of steal; and each
late frame (`late_frames`: when, how late, steal seen or not), to line up with other logs.

    transflower bench soak [--model M.onnx] [--input song.ogg | --device pulse] --duration 3600 [--json out.json]

`run_soak(model, input, duration_s=3600, **live_options) -> dict` is the function for `transflower bench`
to wire in. CI runs ~10 s (tests/test_reliability.py::test_soak_short).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


class StealSampler:
    """A background thread reading the machine's steal time (/proc/stat: CPU time a hypervisor gave to
    other guests while this VM wanted to run) every `every_s`, into preallocated arrays, so late frames can
    be checked against it afterwards. Off the loop's thread; at 20 reads/s it costs nothing measurable.
    `available` is False off Linux (or without the steal column), and nothing is recorded."""

    def __init__(self, max_s: float, every_s: float = 0.05):
        import os
        import threading

        self.every_s = float(every_s)
        n = int(max_s / every_s * 1.2) + 100
        self.t, self.ticks, self.n = np.zeros(n), np.zeros(n, np.int64), 0
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.available = self._read() is not None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="StealSampler", daemon=True)

    @staticmethod
    def _read():
        try:
            with open("/proc/stat", "rb") as f:
                fields = f.readline().split()
            return int(fields[8]) if fields[0] == b"cpu" and len(fields) > 8 else None
        except (OSError, ValueError, IndexError):
            return None

    def start(self):
        if self.available:
            self._thread.start()
        return self

    def _run(self):
        from transflower.realtime.timing import SideThreadPriority

        priority = SideThreadPriority()  # it takes the GIL 20 times a second: real-time while the loop is
        while not self._stop.is_set() and self.n < len(self.t):
            priority.follow()
            v = self._read()
            if v is not None:
                self.t[self.n], self.ticks[self.n] = time.perf_counter(), v
                self.n += 1
            self._stop.wait(self.every_s)

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def steal_s(self) -> float | None:
        return float(self.ticks[self.n - 1] - self.ticks[0]) / self.hz if self.available and self.n > 1 else None

    def stolen_between(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """For each interval [t0, t1] (perf_counter s): did steal grow between the samples around it?"""
        t, k = self.t[: self.n], self.ticks[: self.n]
        if self.n < 2:
            return np.zeros(len(t0), bool)
        lo = np.clip(np.searchsorted(t, t0, side="right") - 1, 0, self.n - 1)  # the sample at or before t0
        hi = np.clip(np.searchsorted(t, t1, side="left"), 0, self.n - 1)        # the sample at or after t1
        return k[hi] > k[lo]


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def run_soak(model, input, duration_s: float = 3600.0, fps: float | None = None, osc: str = "127.0.0.1:39539",
             threads: int = 1, no_spin: bool = False, late_policy: str = "skip", rss_every_s: float = 1.0,
             device: str | None = None, dancers: int = 1, priority: str = "auto", probe: bool = False,
             lock_memory: str = "auto") -> dict:
    import resource

    from transflower.realtime.live import LiveSession

    args = _soak_args(model, input, duration_s, fps, osc, threads, no_spin, late_policy, device, dancers, priority,
                      lock_memory)
    rec = FrameRecorder(int(duration_s * (fps or 60) * 1.2) + 100, rss_every_s)
    session = LiveSession(args, on_frame=rec.on_frame)
    steal = StealSampler(duration_s + 30.0)
    # the wake-up probe: separate processes, one per CPU, so a late frame can be told the machine's or the loop's
    probes = None
    if probe:
        from transflower.benchmarks.wakeup import run_probes

        probes = run_probes(duration_s + 25.0)  # covers start-up (~2-20 s) and the run
    rss_before = rss_mb()
    t0 = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    steal.start()
    try:
        session.run()
    finally:
        steal.stop()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    return _soak_result(session, rec, steal, probes, duration_s, wall, rss_before, cpu0, cpu1)


def _soak_args(model, input, duration_s, fps, osc, threads, no_spin, late_policy, device, dancers, priority, lock_memory):
    """The `transflower live` options of the soak run."""
    from transflower.realtime.live import _parser

    argv = ["--duration", str(duration_s), "--osc", osc, "--status-interval", "0", "--threads", str(threads),
            "--late-policy", late_policy, "--dancers", str(dancers), "--priority", priority, "--lock-memory", lock_memory]
    argv += ["--model", str(model)] if model else []
    if input:
        argv += ["--input", str(input), "--loop"]
    elif device:
        argv += ["--device", str(device)]
    else:
        argv += ["--demo"]
    if fps:
        argv += ["--fps", str(fps)]
    if no_spin:
        argv.append("--no-spin")
    return _parser().parse_args(argv)


class FrameRecorder:
    """The live session's per-frame hook: each frame's time, lateness, latency, emission and page faults into
    preallocated arrays, and the process's memory every `rss_every_s`."""

    def __init__(self, n_max: int, rss_every_s: float):
        self.n_max, self.rss_every_s = n_max, rss_every_s
        self.t_rel = np.zeros(n_max)            # tick time since start (s)
        self.lat = np.full(n_max, np.nan)       # audio-in -> OSC-out (ms) when a new audio row was used
        self.late = np.zeros(n_max)             # tick lateness (ms)
        self.emitted = np.zeros(n_max)          # when each frame was handed on (clock time, s)
        self.majflt = np.zeros(n_max, np.int32)  # major page faults (a page read back from disk) since the previous frame
        self.rss = []                           # (t, MB)
        self.n, self.next_rss, self.ru_first, self.last_majflt = 0, 0.0, None, 0

    def on_frame(self, session, tick, latency):
        import resource

        i = self.n
        if i >= self.n_max:
            return
        ru = resource.getrusage(resource.RUSAGE_SELF)  # ~2 us; a bench's hook, not the live path
        if i == 0:
            self.ru_first = ru  # start-up's page faults left out
        else:
            self.majflt[i] = ru.ru_majflt - self.last_majflt
        self.last_majflt = ru.ru_majflt
        el = tick.deadline - session.clock.t0
        self.t_rel[i], self.late[i], self.emitted[i] = el, 1000 * tick.late_by, tick.now
        if latency is not None:
            self.lat[i] = latency
        self.n = i + 1
        if el >= self.next_rss:
            self.next_rss = el + self.rss_every_s
            self.rss.append((el, rss_mb()))


def _pct(a, q):
    a = a[np.isfinite(a)]
    return round(float(np.percentile(a, q)), 3) if a.size else None


def _soak_result(session, rec: FrameRecorder, steal, probes, duration_s, wall, rss_before, cpu0, cpu1) -> dict:
    """The soak's figures: lateness, jitter, CPU share, latency and its drift, memory growth, steal, page faults,
    and each late frame lined up against steal and the wake-up probe's stalls."""
    import os

    from transflower.benchmarks.wakeup import stalls_near

    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    # the clock's start on the wall clock, to line late frames up with other logs (a wake-up probe's)
    clock_t0_unix = time.time() - time.perf_counter() + session.clock.t0
    ru_first = rec.ru_first or cpu0
    n = rec.n
    t_rel, lat, late, majflt = rec.t_rel[:n], rec.lat[:n], rec.late[:n], rec.majflt[:n]
    tenth = max(1, n // 10)
    first, last = lat[:tenth], lat[-tenth:]
    # jitter: how far each inter-frame interval is from the frame period (skipped frames excluded)
    period = 1.0 / session.fps
    intervals = np.diff(rec.emitted[:n])
    jitter = 1000 * np.abs(intervals[intervals < 1.5 * period] - period)
    rss_arr = np.array([m for _, m in rec.rss]) if rec.rss else np.array([rss_before])
    k = max(1, len(rss_arr) // 10)  # memory growth after warm-up: median of the first 10% of samples vs the last 10%
    sm = session.summary(session.source, session.feats)
    # were the late frames moments when the hypervisor ran someone else? (each frame's window: its deadline
    # to its emission, widened by one sampling period); the share of all frames' windows with steal is the
    # chance level to compare with
    is_late = late > 1000 * session.clock.late_tolerance_s
    emitted_n = rec.emitted[:n]
    stolen = steal.stolen_between(emitted_n - late / 1000.0 - steal.every_s, emitted_n)
    steal_out = {"available": steal.available, "steal_s": steal.steal_s(),
                 "late_frames_during_steal": int(np.sum(stolen & is_late)),
                 "share_of_all_frames_during_steal": round(float(stolen.mean()), 5) if n else None}
    probe_out = probes.result() if probes is not None else None
    late_idx = np.flatnonzero(is_late)[:200]
    # a late frame meets a probe stall if some CPU's probe woke late between its deadline (less 5 ms) and its emission
    near = ([stalls_near(probe_out, clock_t0_unix + float(t_rel[i]), 0.005, float(late[i]) / 1000.0 + 0.002)
             for i in late_idx] if probe_out else [None] * len(late_idx))
    out = {
        "duration_s": duration_s, "wall_s": round(wall, 2), "frames": sm.frames, "fps": sm.fps,
        "late": sm.late, "skipped": sm.skipped,
        "late_first_10pct": int(np.sum(is_late[:tenth])),
        "late_last_10pct": int(np.sum(is_late[-tenth:])),
        "dancers": sm.dancers, "priority": sm.priority, "memory": sm.memory, "step_ms": sm.step_ms, "engine_ms": sm.engine_ms, "host_ms": sm.host_ms,
        "startup_s": sm.startup_s, "gc": sm.gc, "loadavg": [round(x, 2) for x in os.getloadavg()],
        "jitter_ms": {"p50": _pct(jitter, 50), "p99": _pct(jitter, 99), "max": _pct(jitter, 100)},
        "cpu_share": round(cpu_s / max(wall, 1e-9), 3),  # of one core, whole process (audio thread included)
        "latency_ms": {"p50": _pct(lat, 50), "p99": _pct(lat, 99), "first_10pct_p50": _pct(first, 50),
                       "last_10pct_p50": _pct(last, 50),
                       "drift": (None if _pct(first, 50) is None or _pct(last, 50) is None
                                 else round(_pct(last, 50) - _pct(first, 50), 3))},
        "rss_mb": {"before": round(rss_before, 1), "start": round(float(np.median(rss_arr[:k])), 1),
                   "end": round(float(np.median(rss_arr[-k:])), 1), "max": round(float(rss_arr.max()), 1),
                   "growth": round(float(np.median(rss_arr[-k:]) - np.median(rss_arr[:k])), 2)},
        "engine_resets": sm.engine_resets, "audio_overruns": sm.audio_overruns, "udp_errors": sm.udp_errors,
        "audio_outages": sm.audio_outages, "steal": steal_out,
        # a page fault in the loop is a stall the loop cannot see coming (the whole process, from the first frame)
        "page_faults": {"minor": int(cpu1.ru_minflt - ru_first.ru_minflt), "major": int(cpu1.ru_majflt - ru_first.ru_majflt)},
        "clock_t0_unix": round(clock_t0_unix, 4),
        # each late frame (the first 200): when, how late, and whether steal was seen in its window, so the
        # next hour can be lined up against other logs (interrupts, the host's)
        "late_frames": [{"t_s": round(float(t_rel[i]), 3), "late_ms": round(float(late[i]), 2), "steal": bool(stolen[i]),
                         "major_faults": int(majflt[i]), **({"probe_stall_cpus": cpus} if cpus is not None else {})}
                        for i, cpus in zip(late_idx, near)],
        "late_frames_with_major_fault": int(np.sum(is_late & (majflt > 0))),
        "frames_with_major_fault": int(np.sum(majflt > 0)),
    }
    if probe_out is not None:
        out["probe"] = {"cpus": [{k: c[k] for k in ("cpu", "realtime", "wakeups", "late_ms", "over_report")}
                                 for c in probe_out["cpus"]],
                        "all_cpus_at_once": len(probe_out["all_cpus_at_once"]),
                        "late_frames_with_probe_stall": sum(1 for c in near if c),
                        "events": {c["cpu"]: c["events"] for c in probe_out["cpus"]}}  # up to 2000 per CPU
    return out


def configure_parser(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", help="exported .onnx (default: the shipped model)")
    ap.add_argument("--input", help="audio file, looped (default: the demo track)")
    ap.add_argument("--device", help="an input device instead (e.g. pulse): measures audio-in -> OSC-out end to end")
    ap.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    ap.add_argument("--fps", type=float)
    ap.add_argument("--osc", default="127.0.0.1:39539")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dancers", type=int, default=1)
    ap.add_argument("--no-spin", action="store_true")
    ap.add_argument("--priority", choices=["auto", "realtime", "normal"], default="auto",
                    help="the frame loop's scheduling, as `live --priority` (default auto: realtime where allowed)")
    ap.add_argument("--lock-memory", choices=["auto", "on", "off"], default="auto",
                    help="as `live --lock-memory` (default auto: mlockall where the loop runs realtime)")
    ap.add_argument("--probe", action="store_true",
                    help="run `bench wakeup`'s probe beside the loop (one real-time process per CPU, ~1%% CPU each) "
                         "and mark each late frame with the CPUs whose probe woke late then: the machine's stall, "
                         "not the loop's")
    ap.add_argument("--json", help="write the result here")


def run(a) -> int:
    r = run_soak(a.model, a.input, a.duration, a.fps, a.osc, a.threads, a.no_spin, device=a.device, dancers=a.dancers,
                 priority=a.priority, probe=a.probe, lock_memory=a.lock_memory)
    text = json.dumps(r, indent=1)
    print(text)
    if a.json:
        from transflower.atomic import write_text_atomic

        write_text_atomic(a.json, text)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m transflower.benchmarks.soak", description=__doc__.splitlines()[0])
    configure_parser(ap)
    a = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
