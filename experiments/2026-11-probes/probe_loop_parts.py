"""Time the parts of a live frame: audio pull (ring, resampler, feature hop), engine, bodies, VMC send.

    python experiments/2026-11-probes/probe_loop_parts.py [--fps 20] [--seconds 15] [--dancers 1]

Runs `transflower live --demo` in-process with each part wrapped in a timer, with a UDP sink listening on
the VMC port (as a receiving app would), and prints p50 / p99 / max per part and host work (frame minus
engine). A diagnostic for benchmarks/README.md ("Where the host work went"); the wrappers add a few us each.
"""
from __future__ import annotations

import argparse
import collections
import socket
import threading
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", default="20")
    ap.add_argument("--seconds", default="15")
    ap.add_argument("--dancers", default="1")
    ap.add_argument("--port", type=int, default=39539)
    a = ap.parse_args()
    from transflower.realtime.live import LiveSession, _parser

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", a.port))
    threading.Thread(target=lambda: [sink.recv(65536) for _ in iter(int, 1)], daemon=True).start()
    args = _parser().parse_args(["--demo", "--fps", a.fps, "--duration", a.seconds, "--status-interval", "0",
                                 "--threads", "1", "--dancers", a.dancers, "--osc", f"127.0.0.1:{a.port}"])
    session = LiveSession(args)
    times = collections.defaultdict(list)

    def wrap(obj, name, key):
        f = getattr(obj, name)

        def timed(*args, **kw):
            t = time.perf_counter()
            r = f(*args, **kw)
            times[key].append(1000 * (time.perf_counter() - t))
            return r
        setattr(obj, name, timed)

    start = session._start

    def start_and_wrap():
        start()
        s = session
        for obj, name, key in [(s, "frame", "frame"), (s, "_engine_step", "engine"), (s, "_pull_audio", "audio pull"),
                               (s.feats.source.ring, "read_into", "  ring read"),
                               (s.feats.resampler, "process_into", "  resampler"),
                               (s.feats.extractor, "push_hop", "  feature hop"), (s.crowd, "body", "bodies"),
                               (s.crowd, "send", "send"), (s.crowd.senders[0].retarget, "retarget", "  retarget"),
                               (s.crowd.senders[0], "_drain_errors", "  error-queue check"),
                               (s.crowd.senders[0], "_send_datagram", "  sendto")]:
            wrap(obj, name, key)
    session._start = start_and_wrap
    session.run()
    skip = 20  # the first frames warm up
    for key, v in times.items():
        v = np.array(v[skip:])
        print(f"{key:20s} n {len(v):5d}  p50 {np.percentile(v, 50):.3f}  p99 {np.percentile(v, 99):.3f}  max {v.max():.3f} ms")
    frame, engine = np.array(times["frame"][skip:]), np.array(times["engine"][skip:])
    if len(frame) == len(engine):
        host = frame - engine
        print(f"{'host (frame-engine)':20s}             p50 {np.percentile(host, 50):.3f}  p99 {np.percentile(host, 99):.3f} ms")


if __name__ == "__main__":
    main()
