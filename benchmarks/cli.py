"""`transflower bench {latency,floor,quality,decompose,music,style,soak,wakeup}`: each prints a table, writes JSON (--json), draws PNGs (--plot).

Each benchmark module exposes configure_parser(parser) and run(args) -> int, imported lazily so that
`transflower --help` stays instant.
"""
from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "latency": ("transflower.benchmarks.latency", "per-frame step latency: recompute vs torch KV cache vs onnxruntime, context sweep"),
    "floor": ("transflower.benchmarks.floor", "what the step must cost: FLOPs/bytes vs this CPU, onnxruntime's per-run overhead"),
    "quality": ("transflower.benchmarks.quality", "dance quality on the test split: FID_k/FID_g, FPD/FMD, diversity, beats, skating"),
    "decompose": ("transflower.benchmarks.decompose", "where extra joint speed and jerk come from: data, flow noise, rollout, floor clamp, root"),
    "music": ("transflower.benchmarks.music", "does the dancer follow the music: tempo (stretched songs, demo track), breaks, beats"),
    "style": ("transflower.benchmarks.style", "does the dancer dance the requested style: a classifier of real dances judges generated ones"),
    "soak": ("transflower.benchmarks.soak", "a sustained live run: late frames, jitter, CPU share, memory growth, latency drift"),
    "wakeup": ("transflower.benchmarks.wakeup", "how promptly this machine wakes a real-time thread (like cyclictest), per CPU"),
}


def configure_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name, (module_name, help_text) in BENCHMARKS.items():
        bp = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.configure_parser(bp)
        bp.set_defaults(_bench_run=module.run)


def run(args) -> int:
    if getattr(args, "_bench_run", None) is None:
        print("usage: transflower bench {" + ",".join(BENCHMARKS) + "} [options]; see transflower bench BENCHMARK --help")
        return 2
    return int(args._bench_run(args) or 0)
