"""The ONNX step back to back vs with a pause before each step (busy-wait, so the core never sleeps).

    python experiments/2026-11-probes/probe_engine_gap.py [--model M.onnx]

Prints the step's p50 for pauses of 0-50 ms, each with and without overwriting 4 MB of our own memory
during the pause: if the step slows with the pause alone, the working set is lost to something outside
this process (benchmarks/README.md, "The engine step inside the loop vs alone").
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="an exported .onnx (default: the shipped model)")
    ap.add_argument("--steps", type=int, default=100)
    a = ap.parse_args()
    from transflower.realtime.engine import DanceEngine, OnnxDanceModel

    model = OnnxDanceModel(a.model, provider="cpu", threads=1)
    engine = DanceEngine(model, temperature=0.6, seed=0)
    row = np.zeros(model.meta["audio_dim"], np.float32)
    for _ in range(50):
        engine.step(row)
    scratch = np.zeros(4 << 20, np.uint8)
    for gap_ms in (0, 1, 2, 5, 10, 20, 50):
        for evict in (False, True):
            ts = []
            for _ in range(a.steps):
                t_end = time.perf_counter() + gap_ms / 1000
                if evict:
                    scratch += 1
                while time.perf_counter() < t_end:
                    pass
                t = time.perf_counter()
                engine.step(row)
                ts.append(1000 * (time.perf_counter() - t))
            print(f"pause {gap_ms:3d} ms{' + 4 MB written' if evict else '               '}: step p50 {np.percentile(ts, 50):.2f} ms")


if __name__ == "__main__":
    main()
