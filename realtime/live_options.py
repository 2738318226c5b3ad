"""The options of `transflower live`: the parser (grouped as --help shows them: input, output, dancer, live
control, run, engine), a --config YAML file (typed command-line options beat it) and the checks that turn bad
values into one clear line (UserError) before the model loads."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from transflower.realtime.control import DEFAULT_CONTROL_PORT
from transflower.realtime.status_line import PLAIN_EVERY_S
from transflower.control_spec import CONTROLS, CORRELATION, GAIN, PREFIX, STYLE_STRENGTH, TEMPERATURE
from transflower.errors import UserError
from transflower.realtime.time_base import COUNT_IN_HELP, TIME_BASE_HELP

# options a --config YAML may set (the CLI's own names, with dashes as underscores)
CONFIG_KEYS = {"device", "input", "demo", "audible", "model", "fps", "temperature", "seed", "seed_motion", "lookahead",
               "duration", "osc", "preview", "preview_port", "threads", "provider", "late_policy", "stage_radius",
               "no_spin", "status_interval", "input_gain", "summary_json", "loop", "no_floor", "no_energy", "time_base", "count_in", "dancers", "temperatures", "style",
               "style_strength", "no_style_presets", "noise_correlation", "control", "midi", "midi_map", "bone_positions", "bone_map", "avatar", "priority",
               "lock_memory"}
CONFIG_ALIASES = {"loop_input": "loop"}  # an older name a config file may still use
LIST_KEYS = {"osc": "HOST:PORT", "input": "FILE"}  # options a config file may give one value of, or a list


FPS_HELP = ("output frame rate (default 60, or the model's if higher). A rate other than the model's streams by "
            "interpolating between the two newest model frames (slerp rotations, lerp root), which adds one model frame "
            "of latency (reported as interpolation_ms); --fps 20 (the model's) is lowest latency for receivers that "
            "interpolate themselves. The model always steps at its own rate")



def configure_parser(p: argparse.ArgumentParser) -> None:
    for title, add in OPTION_GROUPS:
        add(p.add_argument_group(title))


def _input_options(grp) -> None:
    grp.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    grp.add_argument("--device", help="input device: an index or a part of its name, e.g. 'Stereo Mix' or 'monitor' (see --list-devices)")
    grp.add_argument("--input", nargs="+", metavar="FILE", help="play audio files through the live path, paced in real "
                     "time: one file, several, or a folder (its audio files in name order), one after another with the "
                     "dancer carried across songs (no reset between them)")
    grp.add_argument("--loop", "--loop-input", dest="loop", action="store_true",
                     help="play --input again from the start when it ends (the whole playlist)")
    grp.add_argument("--audible", action="store_true", help="also play --input / the demo track on the default output")
    grp.add_argument("--demo", action="store_true", help="dance to the built-in synthesised track (no hardware needed)")
    grp.add_argument("--input-gain", type=float, default=GAIN.default, help="multiply input samples (match a quiet line-in "
                     f"to the training level; {GAIN.range_text}, 0 mutes)")


def _output_options(grp) -> None:
    grp.add_argument("--osc", action="append", metavar="HOST:PORT", help="VMC/OSC target, repeatable (default 127.0.0.1:39539)")
    grp.add_argument("--fps", type=float, help=FPS_HELP)
    grp.add_argument("--bone-positions", choices=["none", "skeleton"], default="none",
                     help="Bone/Pos positions: none (default: receivers keep the avatar's own proportions) or skeleton "
                          "(the dancer's; EVMC4U's Bone Position Synchronize then reshapes the avatar)")
    grp.add_argument("--bone-map", metavar="JSON", help="joint -> HumanBodyBones map for the model's skeleton "
                     "(default: the shipped map that fits: transflower, cmu, mixamo; see docs/bone_maps.md)")
    grp.add_argument("--preview", action="store_true", help="serve a live 3D view (a VRM avatar) in the browser")
    grp.add_argument("--avatar", metavar="FILE.vrm", help="VRM avatar for --preview (default: the built-in plain dancer)")
    grp.add_argument("--preview-port", type=int, default=8765, help="HTTP port of --preview (default 8765; 0 = any free port)")
    grp.add_argument("--record", metavar="FILE.bvh", help="also record dancer 0's dance and write it as a BVH file when "
                     "the run ends (to edit, retarget or render later)")


def _dancer_options(grp) -> None:
    grp.add_argument("--model", help="exported .onnx model (default: the shipped model)")
    grp.add_argument("--temperature", type=float, default=None, help=f"sampling temperature {TEMPERATURE.range_text}: 0 = "
                     "calm/average, 1 = as trained (default: the model's own, chosen by its benchmarks; 1 when it names none)")
    grp.add_argument("--style", help="dance style from the model's list (--list-styles; default auto: the music decides)")
    grp.add_argument("--style-strength", type=float, default=STYLE_STRENGTH.default, metavar="S",
                     help=f"how strongly the style beats the music, {STYLE_STRENGTH.range_text}: 1 = as trained (default), "
                          "0 = auto; above 1 "
                          "the style is clearer and the motion jerkier (experiments/2026-11-benchmark-history.md, 'Style strength')")
    grp.add_argument("--list-styles", action="store_true", help="print the model's dance styles and exit")
    grp.add_argument("--noise-correlation", type=float, default=None, metavar="RHO",
                     help=f"how alike consecutive frames' sampling noise is, {CORRELATION.range_text}: 0 = independent draws (as trained), "
                          "higher = smoother, less twitchy motion (default: the model's own; a style's preset may set its own)")
    grp.add_argument("--no-style-presets", action="store_true",
                     help="ignore the model's per-style presets (strength and temperature multipliers, noise correlation "
                          "and foot traction that make each style clearer and smoother; transflower.styles)")
    grp.add_argument("--no-energy", action="store_true",
                     help="dance at full size whatever the music's level (by default quieter passages are danced smaller "
                          "and a break in the music calms the dancer into a sway; it picks the dance up when the music returns)")
    grp.add_argument("--time-base", action="store_true", help=TIME_BASE_HELP)
    grp.add_argument("--count-in", type=float, default=None, metavar="SECONDS", help=COUNT_IN_HELP)
    grp.add_argument("--no-floor", action="store_true", help="no floor handling: do not lift the body when a sampled pose puts a foot "
                     "below the floor, nor keep the dancer from floating off it (by default each pose's root height is "
                     "grounded before it is fed back to the model)")
    grp.add_argument("--stage-radius", type=float, default=150.0, help="keep the dancer within this radius (cm) of the origin")
    grp.add_argument("--seed", type=int, help="random seed for a reproducible dance")
    grp.add_argument("--seed-motion", metavar="BVH", help="BVH clip whose last frames start the dance")
    grp.add_argument("--dancers", type=int, default=1, help="N independent dancers (own noise seed each) on the same music, one batched model step")
    grp.add_argument("--temperatures", metavar="T1,T2,...", help="one sampling temperature per dancer (default: --temperature for all)")


def _control_options(grp) -> None:
    grp.add_argument("--control", nargs="?", const=str(DEFAULT_CONTROL_PORT), metavar="[HOST:]PORT",
                     help=f"take OSC control messages ({PREFIX}{', '.join(p.name for p in CONTROLS)}) on UDP; "
                          f"bound to 127.0.0.1 unless a host is given (--control alone: port {DEFAULT_CONTROL_PORT})")
    grp.add_argument("--midi", metavar="DEVICE", help="take control from a MIDI input (index or name, see --list-midi; "
                                                      "needs the [midi] extra)")
    grp.add_argument("--midi-map", metavar="YAML", help="MIDI CC/note -> control map (default: docs/midi_map_example.yaml's)")
    grp.add_argument("--list-midi", action="store_true", help="list MIDI input ports and exit")


def _run_options(grp) -> None:
    grp.add_argument("--duration", type=float, help="run this many seconds, then exit 0 with a summary")
    grp.add_argument("--status-interval", type=float, default=0.5, help="seconds between status line updates on a "
                     f"terminal (default 0.5; a pipe or a file gets one every {PLAIN_EVERY_S:g} s; 0: none)")
    grp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                     help="add the engine's figures to the status line (step, engine and host times, latency) and log "
                          "debug messages")
    grp.add_argument("--summary-json", metavar="FILE", help="write every figure of the run as JSON (atomically; also "
                     "written beside the run's log file when there is one; the terminal gets a few lines)")
    grp.add_argument("--config", metavar="YAML", help="options as YAML (keys as the long options, e.g. temperature: 0.8)")


def _engine_options(grp) -> None:
    grp.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1: a second, spinning thread "
                     "competes with the audio thread on small CPUs; try 2 on an idle machine with more cores)")
    grp.add_argument("--provider", default="auto", help="auto | cpu | cuda | tensorrt (default auto: a GPU if there is one)")
    grp.add_argument("--no-spin", action="store_true", help="turn off onnxruntime thread spinning (less CPU, ~1 ms slower)")
    grp.add_argument("--priority", choices=["auto", "realtime", "normal"], default="auto",
                     help="scheduling of the frame loop's thread: realtime (SCHED_FIFO: wakes on time on a busy machine; "
                          "Linux, needs CAP_SYS_NICE or an rtprio limit), normal, or auto (default: realtime where "
                          "allowed, else normal; the summary's `priority` says which)")
    grp.add_argument("--lock-memory", choices=["auto", "on", "off"], default="auto",
                     help="keep the process's memory resident (mlockall), so no page the loop touches is read back from "
                          "disk mid-show: on, off, or auto (default: try where the loop runs realtime; the summary's "
                          "`memory` says which)")
    grp.add_argument("--lookahead", type=int, help="frames of music lookahead; must equal what the model was trained with")
    grp.add_argument("--late-policy", choices=["skip", "hold"], default="skip", help="a late frame: skip to the next deadline, or emit it late")

# --help's groups, in order: what a DJ or a VTuber sets first, the engine's tuning last
OPTION_GROUPS = [
    ("audio input (default: the default input device, else the demo track)", _input_options),
    ("output", _output_options),
    ("dancer (how it dances)", _dancer_options),
    ("live control (docs/control.md)", _control_options),
    ("run", _run_options),
    ("engine (advanced: speed and timing on this machine; the defaults suit most)", _engine_options),
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="transflower live")
    configure_parser(p)
    return p


def build_defaults():
    return _parser().parse_args([])


def apply_config_file(args) -> None:
    if not getattr(args, "config", None):
        return
    import yaml

    path = Path(args.config)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"--config {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--config {path}: cannot read it ({e})") from None
    except yaml.YAMLError as e:
        raise UserError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"--config {path}: expected a mapping of option: value")
    cfg = {CONFIG_ALIASES.get(str(k).replace("-", "_"), str(k).replace("-", "_")): v for k, v in cfg.items()}
    unknown = set(cfg) - CONFIG_KEYS
    if unknown:
        raise UserError(f"--config {path}: unknown keys {sorted(unknown)}; expected some of {sorted(CONFIG_KEYS)}")
    actions = {a.dest: a for a in _parser()._actions}
    typed = typed_options(args)
    for k, v in cfg.items():
        a = actions[k]
        if v is not None:
            if k in LIST_KEYS:
                v = [v] if isinstance(v, str) else v
                if not isinstance(v, list) or not v or not all(isinstance(t, str) for t in v):
                    raise UserError(f"--config {path}: {k}: expected {LIST_KEYS[k]} or a list of them, got {v!r}")
            elif a.nargs == 0:  # store_true flags
                if not isinstance(v, bool):
                    raise UserError(f"--config {path}: {k}: expected true or false, got {v!r}")
            elif a.type is not None:
                if isinstance(v, bool) or isinstance(v, (list, dict)):
                    raise UserError(f"--config {path}: {k}: expected a {a.type.__name__}, got {v!r}")
                try:
                    v = a.type(v)
                except (TypeError, ValueError):
                    raise UserError(f"--config {path}: {k}: expected a {a.type.__name__}, got {v!r}") from None
            else:
                v = str(v)
            if a.choices is not None and v not in a.choices:
                raise UserError(f"--config {path}: {k}: {v!r} is not one of {list(a.choices)}")
        if k not in typed:  # the command line wins over the file
            setattr(args, k, v)


def typed_options(args) -> set[str]:
    """The options given on the command line (`args._argv`, which transflower.cli keeps), found by
    parsing it again with every default suppressed: `--temperature 1.0` counts even though 1.0 is the
    default. Without `_argv` (args built in code), the options whose value differs from the default."""
    argv = getattr(args, "_argv", None)
    if argv is None:
        defaults = vars(build_defaults())
        return {k for k, v in vars(args).items() if k in defaults and v != defaults[k]}
    p = _parser()
    for a in p._actions:
        a.default = argparse.SUPPRESS
    typed, _ = p.parse_known_args([str(a) for a in argv])  # the subcommand's name and global flags stay unknown
    return set(vars(typed))


def validate(args) -> None:
    def num(name, value, lo=None, hi=None, lo_open=False):
        if value is None:
            return
        v = float(value)
        if not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi):
            rng = f"{'>' if lo_open else '>='} {lo:g}" if hi is None else f"{lo:g}..{hi:g}"
            raise UserError(f"--{name} {value}: expected a value {rng}")

    for spec in CONTROLS:  # the live controls' start values: the ranges OSC, MIDI and the engine take
        value = getattr(args, spec.dest, None) if spec.kind == "number" else None
        if value is not None:
            spec.check(value, spec.option)
    num("duration", args.duration, 0.0, lo_open=True)
    num("fps", args.fps, 1.0, 240.0)
    num("threads", args.threads, 1, 64)
    num("stage-radius", args.stage_radius, 0.0, lo_open=True)
    num("status-interval", args.status_interval, 0.0)
    num("preview-port", args.preview_port, 0, 65535)
    num("lookahead", args.lookahead, 0, 1000)
    num("dancers", args.dancers, 1, 4096)
    if args.input and args.device is not None:
        raise UserError("--input and --device: choose one audio input")
    if args.input and args.demo:
        raise UserError("--input and --demo: choose one audio input")
    if args.input:
        from transflower.realtime.playlist import playlist_files

        playlist_files(args.input)  # each file there, each folder holding audio files
    if args.model and not Path(args.model).is_file():
        raise UserError(f"--model {args.model}: file not found")
    if args.control:  # fail before the model loads
        from transflower.realtime.control import parse_listen_address

        parse_listen_address(args.control)
    if args.midi_map:
        if args.midi is None:
            raise UserError(f"--midi-map {args.midi_map}: also give --midi DEVICE (see --list-midi)")
        from transflower.realtime.midi import load_midi_map

        load_midi_map(args.midi_map)
