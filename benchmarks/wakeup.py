"""`transflower bench wakeup`: how promptly this machine wakes a real-time thread, the way rt-tests'
`cyclictest` measures it, with nothing of the live loop in the way (no model, no GIL shared with anyone).

One process per CPU, pinned to it, in the real-time class (SCHED_FIFO, one step above the live loop, where
the system allows it), sleeps to absolute deadlines every --interval-ms and records how late each wake-up
came: a histogram per CPU, and each wake-up later than --report-ms with its wall-clock time.

Why: the live loop's rare late frames (a few in an hour) could be the loop's own (the GIL, a page fault,
the collector) or the machine's (a hypervisor that takes the virtual CPU, an interrupt storm). Run beside
the loop (`bench soak --probe`), a late frame that meets a late wake-up of this separate process, on every
CPU at once, is the machine's; one that meets none is the loop's.

    transflower bench wakeup --duration 60 [--interval-ms 1] [--report-ms 1] [--json F]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time

PROBE_PRIORITY = 11  # above the live loop's (transflower.realtime.timing.REALTIME_PRIORITY): it measures the machine, not the loop


def _probe(cpu: int, duration_s: float, interval_s: float, report_s: float, start_at: float, queue) -> None:
    """One CPU's probe (a child process): sleep to each deadline, note how late the wake-up was."""
    import gc

    from transflower.realtime.timing import RunStats

    gc.disable()  # nothing here makes cycles; a collection would be a late wake-up of our own making
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(min(PROBE_PRIORITY, os.sched_get_priority_max(os.SCHED_FIFO))))
        realtime = True
    except (AttributeError, OSError):
        realtime = False
    stats, events, dropped = RunStats(), [], 0
    perf, sleep = time.perf_counter, time.sleep
    # every CPU's probe starts on the same wall-clock instant, so their deadlines line up
    wait = start_at - time.time()
    if wait > 0:
        sleep(wait)
    t0, wall0 = perf(), time.time()
    k, n_max = 1, int(duration_s / interval_s)
    while k <= n_max:
        deadline = t0 + k * interval_s
        d = deadline - perf()
        if d > 0:
            sleep(d)
        late = perf() - deadline
        stats.add(1000.0 * late)
        if late > report_s:
            if len(events) < 2000:
                events.append((round(wall0 + (deadline - t0), 4), round(1000.0 * late, 3)))
            else:
                dropped += 1
        k = max(k + 1, int((perf() - t0) / interval_s) + 1)  # a long stall: the deadlines it covered are gone
    queue.put({"cpu": cpu, "realtime": realtime, "wakeups": stats.n, "late_ms": stats.summary(),
               "over_report": len(events) + dropped, "events": events})


def run_probes(duration_s: float, interval_ms: float = 1.0, report_ms: float = 1.0, cpus=None) -> "ProbeRun":
    """Start one probe per CPU (default: every CPU this process may use); `.result()` waits and returns."""
    return ProbeRun(duration_s, interval_ms, report_ms, cpus)


class ProbeRun:
    def __init__(self, duration_s, interval_ms, report_ms, cpus=None):
        from transflower.errors import UserError

        if not duration_s > 0 or not interval_ms > 0 or not report_ms > 0:
            raise UserError(f"bench wakeup: --duration ({duration_s}), --interval-ms ({interval_ms}) and --report-ms "
                            f"({report_ms}) must be positive")
        if cpus is None:
            cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        self.cpus, self.duration_s = list(cpus), float(duration_s)
        self.interval_ms, self.report_ms = float(interval_ms), float(report_ms)
        ctx = mp.get_context("spawn")  # a clean child: no threads or locks inherited from the caller
        self._queue = ctx.Queue()
        self.start_at = time.time() + 2.0  # time for the children to import
        self._procs = [ctx.Process(target=_probe, args=(c, self.duration_s, self.interval_ms / 1000.0, self.report_ms / 1000.0,
                                                         self.start_at, self._queue), daemon=True) for c in self.cpus]
        for p in self._procs:
            p.start()

    def result(self, timeout_s: float | None = None) -> dict:
        timeout_s = self.duration_s + 30.0 if timeout_s is None else timeout_s
        per_cpu = []
        for _ in self._procs:
            try:
                per_cpu.append(self._queue.get(timeout=timeout_s))
            except Exception:  # noqa: BLE001  queue.Empty: a probe died; report what came back
                break
        for p in self._procs:
            p.join(timeout=1.0)
            if p.is_alive():
                p.terminate()
        per_cpu.sort(key=lambda r: r["cpu"])
        return {"benchmark": "wakeup", "duration_s": self.duration_s, "interval_ms": self.interval_ms,
                "report_ms": self.report_ms, "start_unix": round(self.start_at, 4), "cpus": per_cpu,
                "all_cpus_at_once": _together(per_cpu, 2 * self.interval_ms / 1000.0 + 0.002)}


def _together(per_cpu: list[dict], within_s: float) -> list[dict]:
    """Moments when every CPU's probe woke late at once (within `within_s`): the whole machine stalled."""
    if len(per_cpu) < 2 or not all(r["events"] for r in per_cpu):
        return []
    out = []
    for t, ms in per_cpu[0]["events"]:
        others = [min((abs(t2 - t), ms2) for t2, ms2 in r["events"]) for r in per_cpu[1:]]
        if all(d <= within_s for d, _ in others):
            out.append({"t_unix": t, "late_ms": [ms] + [m for _, m in others]})
    return out


def stalls_near(probe: dict, t_unix: float, before_s: float, after_s: float) -> list[int]:
    """The CPUs whose probe woke late between t_unix - before_s and t_unix + after_s."""
    return [r["cpu"] for r in probe.get("cpus", [])
            if any(t_unix - before_s <= t <= t_unix + after_s for t, _ in r["events"])]


def format_table(r: dict) -> str:
    lines = [f"wake-ups every {r['interval_ms']:g} ms for {r['duration_s']:g} s, one pinned process per CPU",
             "| CPU | real-time | wake-ups | late p50 / p99 / max ms | later than %g ms |" % r["report_ms"],
             "|---|---|---|---|---|"]
    for c in r["cpus"]:
        s = c["late_ms"]
        lines.append(f"| {c['cpu']} | {'yes' if c['realtime'] else 'no (normal class)'} | {c['wakeups']} | "
                     f"{s['p50']:.3f} / {s['p99']:.3f} / {s['max']:.2f} | {c['over_report']} |")
    lines.append(f"every CPU late at once: {len(r['all_cpus_at_once'])} times"
                 + (f" (worst {max(max(e['late_ms']) for e in r['all_cpus_at_once']):.1f} ms)" if r["all_cpus_at_once"] else ""))
    return "\n".join(lines)


def configure_parser(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    ap.add_argument("--interval-ms", type=float, default=1.0, help="sleep to a deadline this often (default 1 ms)")
    ap.add_argument("--report-ms", type=float, default=1.0, help="list each wake-up later than this (default 1 ms)")
    ap.add_argument("--json", help="write the result here")


def run(a) -> int:
    from transflower.atomic import write_text_atomic

    r = run_probes(a.duration, a.interval_ms, a.report_ms).result()
    if not r["cpus"]:
        print("bench wakeup: no probe reported back", file=sys.stderr)
        return 1
    print(format_table(r))
    if a.json:
        write_text_atomic(a.json, json.dumps(r, indent=1))
        print(f"wrote {a.json}")
    return 0
