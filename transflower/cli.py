"""`transflower` command line: one entry point, one subcommand per job.

Each subcommand lives in its own module exposing `configure_parser(parser)` and `run(args) -> int`.
Those modules import heavy dependencies (torch, onnxruntime) inside `run`, so `transflower live`
never pays for (or needs) the training stack, and `--help` is instant.

Errors: a UserError prints its one line (exit 2); anything unexpected prints one line naming a log file
that holds the traceback (exit 1). During `live`, native libraries' own stderr (PortAudio, ALSA) goes
to that log file too (transflower.runlog).
"""
from __future__ import annotations

import argparse
import importlib
import contextlib
import logging
import sys

from transflower.errors import UserError

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "import": ("transflower.data_import", "convert a motion-capture dataset into paired <id>.bvh + <id>.wav files"),
    "features": ("transflower.features", "compute motion and audio features (<id>.<feature>.npy) and scalers for a data folder"),
    "train": ("transflower.train", "train a model from a YAML config (Lightning; resumable; DDP-ready)"),
    "generate": ("transflower.generate", "generate a dance for a whole song offline (BVH, MP4)"),
    "export": ("transflower.export.onnx_export", "export a checkpoint to ONNX (KV-cached step + flow sampler) and check parity"),
    "quantize": ("transflower.export.quantize", "make an int8 (CPU) or fp16 (GPU) variant of an exported .onnx model"),
    "live": ("transflower.realtime.live", "dance live to a microphone, line-in or file; stream poses over OSC (VMC)"),
    "view": ("transflower.bridge.preview", "open a browser preview of a VMC stream (a 3D skeleton)"),
    "bench": ("transflower.benchmarks.cli", "latency and quality benchmarks (tables, JSON, plots)"),
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
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = argv  # which options were typed (they beat the same key in a --config file)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "_missing", None):
        print(f"error: {args._missing}", file=sys.stderr)
        return 2
    from transflower import runlog

    # PortAudio/ALSA print to fd 2 from C, many lines a second while a device is lost
    native = runlog.NativeStderrToLog(args.command) if args.command == "live" else None
    try:
        with native or contextlib.nullcontext():
            args._log_path = native.path if native is not None else None  # live writes its summary JSON beside it
            return int(args._run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001  a bug or an environment we did not foresee: one line, traceback in a file
        path = runlog.write_traceback(args.command, e, native.path if native else None, argv)
        where = f"traceback in {path}" if path else "no log file could be written; rerun with -v"
        first = (str(e).strip().splitlines() or [""])[0][:200]
        print(f"error: unexpected {type(e).__name__}{': ' + first if first else ''} ({where})", file=sys.stderr)
        native = None  # the line above already names the log file
        return 1
    finally:
        if native is not None:
            _report_native_log(native)


def _report_native_log(native) -> None:
    """Delete an empty live log; otherwise say once where the native libraries' messages went."""
    if native.path is None:
        return
    try:
        size = native.path.stat().st_size
    except OSError:
        return
    if size == 0:
        native.path.unlink(missing_ok=True)
    elif native.captured_bytes:
        print(f"note: the audio library printed {native.captured_bytes} bytes of its own messages; they are in {native.path}",
              file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
