"""`LiveConfig`: a live run's options as one frozen, typed object, what the library takes instead of argparse.

Its fields, their types and defaults are `transflower live`'s options (`transflower.realtime.live_options`),
read from the parser once, so they are defined in one place; ranges and meanings of the live controls
come from `transflower.control_spec`. The CLI parses the command line (and `--config`), validates it and
builds the config; `LiveSession`, `attach_controls` and the sources only read it, never change it (frozen).
In code: `live_config(model="mine.onnx", demo=True, duration=10)`.
"""
from __future__ import annotations

import argparse
from dataclasses import field, fields, make_dataclass


def _option_fields() -> list[tuple]:
    from transflower.realtime.live_options import _parser

    out = []
    for a in _parser()._actions:
        if a.dest in ("help",) or a.dest is argparse.SUPPRESS:
            continue
        if a.nargs == 0:  # store_true / store_false
            kind = bool
        elif isinstance(a, argparse._AppendAction) or a.nargs in ("+", "*"):
            kind = "list | None"
        else:
            kind = f"{(a.type or str).__name__} | None"
        default = tuple(a.default) if isinstance(a.default, list) else a.default
        out.append((a.dest, kind, field(default=default)))
    # set by `transflower` itself: the command line as typed (which options were typed) and the run's log file
    return out + [("argv", "tuple | None", field(default=None)), ("log_path", "str | None", field(default=None))]


LiveConfig = make_dataclass("LiveConfig", _option_fields(), frozen=True,
                            namespace={"__doc__": "The options of a live run (see the module docstring)."})


def live_config(args: argparse.Namespace | None = None, **options) -> LiveConfig:
    """A LiveConfig from parsed options (`args`, as `transflower live` parses them) and/or keyword options;
    the defaults are the command line's. Unknown option names are an error."""
    from transflower.errors import UserError

    names = {f.name for f in fields(LiveConfig)}
    values = {}
    if args is not None:
        values.update({k: v for k, v in vars(args).items() if k in names})
        values["argv"] = tuple(str(a) for a in args._argv) if getattr(args, "_argv", None) is not None else None
        values["log_path"] = str(args._log_path) if getattr(args, "_log_path", None) is not None else None
    unknown = sorted(set(options) - names)
    if unknown:
        raise UserError(f"live options: unknown {unknown}; expected some of {sorted(names)}")
    values.update(options)
    return LiveConfig(**values)
