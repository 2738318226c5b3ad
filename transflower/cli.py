"""`transflower` command line: one entry point, one subcommand per job.

Each subcommand lives in its own module exposing `configure_parser(parser)` and `run(args) -> int`.
Those modules import heavy dependencies (torch, onnxruntime) inside `run`, so `transflower live`
never pays for (or needs) the training stack, and `--help` is instant.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from transflower.errors import UserError

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "import": ("transflower.data_import", "convert a motion-capture dataset into paired <id>.bvh + <id>.wav files"),
    "features": ("transflower.features", "compute motion and audio features (<id>.<feature>.npy) and scalers for a data folder"),
    "train": ("transflower.train", "train a model from a YAML config (Lightning; resumable; DDP-ready)"),
    "generate": ("transflower.generate", "generate a dance for a whole song offline (BVH, MP4)"),
    "export": ("export.onnx_export", "export a checkpoint to ONNX (KV-cached step + flow sampler) and check parity"),
    "live": ("realtime.live", "dance live to a microphone, line-in or file; stream poses over OSC (VMC)"),
    "view": ("bridge.preview", "open a browser preview of a VMC stream (a 3D skeleton)"),
    "bench": ("benchmarks.cli", "latency and quality benchmarks (tables, JSON, plots)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transflower",
        description="transflower-live: turn live music into 3D dance, streamed to an avatar over OSC.\n\n"
        "Workflow: import -> features -> train -> export -> live.\n"
        "Run `transflower SUBCOMMAND --help` for the options of each step.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:  # a part that is not installed (or not written yet) must not break the others
            p.set_defaults(_missing=f"`transflower {name}` is unavailable: {e}")
            continue
        module.configure_parser(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "_missing", None):
        print(f"error: {args._missing}", file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
