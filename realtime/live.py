"""`transflower live`: music in, dance out, every frame on time.

    audio source (mic / file / demo) --callback--> ring buffer
    LiveSession.run: start-up (model, warm start, kernels, gc.freeze), then once per frame on absolute
    deadlines (realtime.frame_clock) LiveSession.frame(tick), which is a frame's whole path:
        pull audio rows          StreamingAudioFeatures.pull(): drain ring -> resample -> causal features
                                 (AudioWatchdog: a lost input dances on to silence, reopened with back-off)
        frame hooks              `for hook in session.frame_hooks: hook(session)`: live control
                                 (realtime.control: OSC / MIDI; temperature, style, hold, reset, gain) or a
                                 script may change engine.temperature / set_style / reset per dancer here,
                                 before the step; `session.hold` freezes the dancers
        step                     DanceEngine.step(newest row): every dancer, one batched ONNX run
        pose                     Crowd.body(): integrate, stage radius, floor (--fps: Crowd.blend())
        send                     Crowd.send(): one OSC bundle per dancer to its own target(s)
    then bookkeeping: engine_ms / host_ms / step_ms, latency, overload hint, status line.

The model sees audio up to the newest complete hop; it was trained to place the pose `lookahead`
frames before that, so the dance trails the music by hop + lookahead frames + processing, which the
summary reports as measured audio-in -> pose-out latency (`latency_ms`: from the capture time of the
newest row's last sample to the send of the first bundle computed from it).

Faults never stop the stream: a lost audio input is reopened in the background (realtime.watchdog);
an engine that raises or outputs non-finite/exploding poses is reset from the seed motion; OSC send
errors are counted (bridge.vmc); a late step is skipped or held per --late-policy, and sustained
overload logs one hint. SIGINT/SIGTERM stop cleanly: the dancers ease into a standing pose, summary printed, exit 0.

Late frames, and what the loop does against them: nothing in a frame allocates container objects, and
everything made at start-up is moved out of the garbage collector's reach (gc.freeze), so a
collection never walks the model's objects mid-show (the summary counts collections: `gc`);
onnxruntime runs 1 intra-op thread unless --threads says otherwise (a spinning second thread on a
2-core machine takes the core the audio thread and the OS need).
"""
from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from realtime.control import DEFAULT_CONTROL_PORT
from realtime.live_summary import LiveSummary, human_summary, summarize, write_summary_json
from realtime.status_line import PLAIN_EVERY_S
from transflower.errors import UserError

log = logging.getLogger("transflower.live")

# options a --config YAML may set (the CLI's own names, with dashes as underscores)
CONFIG_KEYS = {"device", "input", "demo", "audible", "model", "fps", "temperature", "seed", "seed_motion", "lookahead",
               "duration", "osc", "preview", "preview_port", "threads", "provider", "late_policy", "stage_radius",
               "no_spin", "status_interval", "input_gain", "summary_json", "loop_input", "no_floor", "no_energy", "dancers", "temperatures", "style",
               "style_strength", "no_style_presets", "noise_correlation", "control", "midi", "midi_map", "bone_positions", "bone_map", "avatar", "priority",
               "lock_memory"}

# Receivers that do not interpolate (EVMC4U, VSeeFace, Warudo as set up by default) show the newest frame at each
# display refresh: at the model's 20 fps that is visible 50 ms stepping, so the stream goes out at 60 fps,
# interpolated, for one model frame of latency (scripts/measure_send_rate.py; docs/receivers.md). --fps 20 gives
# that frame back where the receiver interpolates itself (our Unity package, the browser preview).
DEFAULT_SEND_FPS = 60.0
MUSIC_LEVEL_DB = -60.0  # above this the status line shows the music's tempo (below it there is no beat to find)
TEMPO_AFTER_S = 3.0
LOOP_SWITCH_INTERVAL_S = 0.0005  # the GIL switch interval while the loop runs (see _start)
FPS_HELP = ("output frame rate (default 60, or the model's if higher). A rate other than the model's streams by "
            "interpolating between the two newest model frames (slerp rotations, lerp root), which adds one model frame "
            "of latency (reported as interpolation_ms); --fps 20 (the model's) is lowest latency for receivers that "
            "interpolate themselves. The model always steps at its own rate")


def configure_parser(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("audio input (default: the default input device, else the demo track)")
    src.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    src.add_argument("--device", help="input device: an index or a part of its name, e.g. 'Stereo Mix' or 'monitor' (see --list-devices)")
    src.add_argument("--input", metavar="FILE", help="play an audio file through the live path, paced in real time")
    src.add_argument("--loop-input", action="store_true", help="loop --input")
    src.add_argument("--audible", action="store_true", help="also play --input / the demo track on the default output")
    src.add_argument("--demo", action="store_true", help="dance to the built-in synthesised track (no hardware needed)")
    src.add_argument("--input-gain", type=float, default=1.0, help="multiply input samples (match a quiet line-in to the training level)")
    mdl = p.add_argument_group("model")
    mdl.add_argument("--model", help="exported .onnx model (default: the shipped model)")
    mdl.add_argument("--fps", type=float, help=FPS_HELP)
    mdl.add_argument("--temperature", type=float, default=None, help="sampling temperature: 0 = calm/average, 1 = as trained "
                     "(default: the model's own, chosen by its benchmarks; 1 when it names none)")
    mdl.add_argument("--noise-correlation", type=float, default=None, metavar="RHO",
                     help="how alike consecutive frames' sampling noise is, 0..0.95: 0 = independent draws (as trained), "
                          "higher = smoother, less twitchy motion (default: the model's own; a style's preset may set its own)")
    mdl.add_argument("--style", help="dance style from the model's list (--list-styles; default auto: the music decides)")
    mdl.add_argument("--style-strength", type=float, default=1.0, metavar="S",
                     help="how strongly the style beats the music: 1 = as trained (default), 0 = auto, up to 4; above 1 "
                          "the style is clearer and the motion jerkier (benchmarks/README.md, 'Style strength')")
    mdl.add_argument("--no-style-presets", action="store_true",
                     help="ignore the model's per-style presets (strength and temperature multipliers, noise correlation "
                          "and foot traction that make each style clearer and smoother; transflower.styles)")
    mdl.add_argument("--list-styles", action="store_true", help="print the model's dance styles and exit")
    mdl.add_argument("--seed", type=int, help="random seed for a reproducible dance")
    mdl.add_argument("--seed-motion", metavar="BVH", help="BVH clip whose last frames start the dance")
    mdl.add_argument("--lookahead", type=int, help="frames of music lookahead; must equal what the model was trained with")
    mdl.add_argument("--dancers", type=int, default=1, help="N independent dancers (own noise seed each) on the same music, one batched model step")
    mdl.add_argument("--temperatures", metavar="T1,T2,...", help="one sampling temperature per dancer (default: --temperature for all)")
    mdl.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1: a second, spinning thread "
                     "competes with the audio thread on small CPUs; try 2 on an idle machine with more cores)")
    mdl.add_argument("--provider", default="auto", help="auto | cpu | cuda | tensorrt (default auto: a GPU if there is one)")
    mdl.add_argument("--no-spin", action="store_true", help="turn off onnxruntime thread spinning (less CPU, ~1 ms slower)")
    mdl.add_argument("--priority", choices=["auto", "realtime", "normal"], default="auto",
                     help="scheduling of the frame loop's thread: realtime (SCHED_FIFO: wakes on time on a busy machine; "
                          "Linux, needs CAP_SYS_NICE or an rtprio limit), normal, or auto (default: realtime where "
                          "allowed, else normal; the summary's `priority` says which)")
    mdl.add_argument("--lock-memory", choices=["auto", "on", "off"], default="auto",
                     help="keep the process's memory resident (mlockall), so no page the loop touches is read back from "
                          "disk mid-show: on, off, or auto (default: try where the loop runs realtime; the summary's "
                          "`memory` says which)")
    out = p.add_argument_group("output")
    out.add_argument("--osc", action="append", metavar="HOST:PORT", help="VMC/OSC target, repeatable (default 127.0.0.1:39539)")
    out.add_argument("--bone-positions", choices=["none", "skeleton"], default="none",
                     help="Bone/Pos positions: none (default: receivers keep the avatar's own proportions) or skeleton "
                          "(the dancer's; EVMC4U's Bone Position Synchronize then reshapes the avatar)")
    out.add_argument("--bone-map", metavar="JSON", help="joint -> HumanBodyBones map for the model's skeleton "
                     "(default: the shipped map that fits: transflower, cmu, mixamo; see docs/bone_maps.md)")
    out.add_argument("--preview", action="store_true", help="serve a live 3D view (a VRM avatar) in the browser")
    out.add_argument("--avatar", metavar="FILE.vrm", help="VRM avatar for --preview (default: the built-in box figure)")
    out.add_argument("--preview-port", type=int, default=8765, help="HTTP port of --preview (default 8765; 0 = any free port)")
    out.add_argument("--stage-radius", type=float, default=150.0, help="keep the dancer within this radius (cm) of the origin")
    out.add_argument("--no-floor", action="store_true", help="no floor handling: do not lift the body when a sampled pose puts a foot "
                     "below the floor, nor keep the dancer from floating off it (by default each pose's root height is "
                     "grounded before it is fed back to the model)")
    mdl.add_argument("--no-energy", action="store_true",
                     help="dance at full size whatever the music's level (by default quieter passages are danced smaller "
                          "and a break in the music calms the dancer into a sway; it picks the dance up when the music returns)")
    ctl = p.add_argument_group("live control (docs/control.md)")
    ctl.add_argument("--control", nargs="?", const=str(DEFAULT_CONTROL_PORT), metavar="[HOST:]PORT",
                     help=f"take OSC control messages (/transflower/temperature, style, hold, reset, gain) on UDP; "
                          f"bound to 127.0.0.1 unless a host is given (--control alone: port {DEFAULT_CONTROL_PORT})")
    ctl.add_argument("--midi", metavar="DEVICE", help="take control from a MIDI input (index or name, see --list-midi; "
                                                      "needs the [midi] extra)")
    ctl.add_argument("--midi-map", metavar="YAML", help="MIDI CC/note -> control map (default: docs/midi_map_example.yaml's)")
    ctl.add_argument("--list-midi", action="store_true", help="list MIDI input ports and exit")
    run = p.add_argument_group("run")
    run.add_argument("--duration", type=float, help="run this many seconds, then exit 0 with a summary")
    run.add_argument("--late-policy", choices=["skip", "hold"], default="skip", help="a late frame: skip to the next deadline, or emit it late")
    run.add_argument("--status-interval", type=float, default=0.5, help="seconds between status line updates on a "
                     f"terminal (default 0.5; a pipe or a file gets one every {PLAIN_EVERY_S:g} s; 0: none)")
    run.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                     help="add the engine's figures to the status line (step, engine and host times, latency) and log "
                          "debug messages")
    run.add_argument("--summary-json", metavar="FILE", help="write every figure of the run as JSON (atomically; also "
                     "written beside the run's log file when there is one; the terminal gets a few lines)")
    run.add_argument("--config", metavar="YAML", help="options as YAML (keys as the long options, e.g. temperature: 0.8)")


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
    unknown = {str(k).replace("-", "_") for k in cfg} - CONFIG_KEYS
    if unknown:
        raise UserError(f"--config {path}: unknown keys {sorted(unknown)}; expected some of {sorted(CONFIG_KEYS)}")
    actions = {a.dest: a for a in _parser()._actions}
    typed = typed_options(args)
    for k, v in cfg.items():
        k = str(k).replace("-", "_")
        a = actions[k]
        if v is not None:
            if k == "osc":
                v = [v] if isinstance(v, str) else v
                if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
                    raise UserError(f"--config {path}: osc: expected HOST:PORT or a list of them, got {v!r}")
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

    if args.temperature is not None:
        num("temperature", args.temperature, 0.0, 5.0)
    num("noise-correlation", getattr(args, "noise_correlation", None), 0.0, 0.95)
    num("duration", args.duration, 0.0, lo_open=True)
    num("fps", args.fps, 1.0, 240.0)
    num("threads", args.threads, 1, 64)
    num("input-gain", args.input_gain, 0.0, lo_open=True)
    num("stage-radius", args.stage_radius, 0.0, lo_open=True)
    num("status-interval", args.status_interval, 0.0)
    num("preview-port", args.preview_port, 0, 65535)
    num("lookahead", args.lookahead, 0, 1000)
    num("dancers", args.dancers, 1, 4096)
    if args.input and args.device is not None:
        raise UserError("--input and --device: choose one audio input")
    if args.input and args.demo:
        raise UserError("--input and --demo: choose one audio input")
    if args.input and not Path(args.input).is_file():
        raise UserError(f"--input {args.input}: file not found")
    if args.model and not Path(args.model).is_file():
        raise UserError(f"--model {args.model}: file not found")
    if args.control:  # fail before the model loads
        from realtime.control import parse_listen_address

        parse_listen_address(args.control)
    if args.midi_map:
        if args.midi is None:
            raise UserError(f"--midi-map {args.midi_map}: also give --midi DEVICE (see --list-midi)")
        from realtime.midi import load_midi_map

        load_midi_map(args.midi_map)


def open_source(args):
    from realtime.audio_sources import DemoSource, FileSource, MicrophoneSource, open_default_source

    if args.input:
        return FileSource(args.input, realtime=True, loop=bool(args.loop_input), audible=bool(args.audible))
    if args.demo:
        return DemoSource(audible=bool(args.audible))
    if args.device is not None:
        dev = int(args.device) if str(args.device).isdigit() else args.device
        return MicrophoneSource(dev)
    return open_default_source(None, demo_fallback=True)


def run(args) -> int:
    if args.list_devices:
        from realtime.audio_sources import format_input_devices, list_input_devices

        devs = list_input_devices()
        if not devs:
            print("no audio input devices (the demo track is used by default)")
        for line in format_input_devices(devs):
            print(line)
        if devs:
            print("--device takes an index or a part of the name; * marks the default input. "
                  "To dance to what this computer plays, see docs/system_audio.md")
        return 0
    if args.list_midi:
        from realtime.midi import list_midi_inputs

        names = list_midi_inputs()
        if not names:
            print("no MIDI input ports")
        for i, name in enumerate(names):
            print(f"{i:3d}  {name}")
        return 0
    if args.list_styles:
        from realtime.engine import OnnxDanceModel
        from transflower.styles import preset_of

        model = OnnxDanceModel(args.model, provider="cpu", threads=1)
        styles = model.meta.get("styles") or []
        if not styles:
            print(f"{model.path.name} has no style input (it dances as the music suggests)")
        for name in styles:
            p_strength, p_temp = preset_of(model.style_presets, name)
            extra = "".join(f", {k} {v:g}" for k, v in (model.style_presets.get(name) or {}).items()
                            if k in ("correlation", "traction"))
            notes = ([f"preset: strength x{p_strength:g}, temperature x{p_temp:g}{extra}"]
                     if (p_strength, p_temp) != (1.0, 1.0) or extra else []) + \
                    (["own seed clip"] if name in model.style_seeds else [])
            print(name + (f"  ({'; '.join(notes)})" if notes else ""))
        return 0
    apply_config_file(args)
    validate(args)
    session = LiveSession(args)
    session.startup_from_process = True
    return session.run()




def parse_temperatures(args) -> list[float]:
    n = int(args.dancers)
    if not args.temperatures:
        return [float(args.temperature)] * n
    try:
        temps = [float(t) for t in str(args.temperatures).split(",")]
    except ValueError:
        raise UserError(f"--temperatures {args.temperatures}: expected comma-separated numbers, one per dancer") from None
    if len(temps) != n or not all(0.0 <= t <= 5.0 for t in temps):
        raise UserError(f"--temperatures {args.temperatures}: expected {n} values (one per dancer) between 0 and 5")
    return temps


class LiveSession:
    # overload hint: more than this fraction of frames late or skipped over the window, once per run
    OVERLOAD_WINDOW_S = 5.0
    OVERLOAD_FRACTION = 0.10
    MAX_CONSECUTIVE_ENGINE_ERRORS = 100
    RECEIVER_CHECK_S = 0.25  # how often the loop looks at the receivers' send errors

    def __init__(self, args, *, source_factory=None, on_frame=None):
        """`source_factory()` -> an unstarted AudioSource (default: from args; tests inject fakes);
        `on_frame(session, tick, latency_ms_or_None)` is called after every sent frame (soak runner)."""
        from realtime.crowd import Crowd, dancer_targets
        from realtime.engine import DanceEngine, OnnxDanceModel
        from realtime.frame_clock import FrameClock
        from realtime.timing import FrameTimes, RollingStats
        from transflower import kernels
        from transflower.audio_features import AudioFeatureConfig
        from transflower.skeleton import Skeleton

        self._created = time.perf_counter()
        self.startup_from_process = False  # `transflower live` measures from the process's start
        self.args = args
        self.source_factory = source_factory or (lambda: open_source(args))
        self.on_frame = on_frame
        self.frame_hooks = []  # callables hook(session), run every frame before the step (live control)
        self.hold = False      # a performer froze the dancers: the loop resends the last poses
        self.model = OnnxDanceModel(args.model, provider=args.provider, threads=int(args.threads), spinning=not args.no_spin)
        meta = self.model.meta
        self.model_fps = float(meta["fps"])
        self.fps = float(args.fps) if args.fps is not None else max(DEFAULT_SEND_FPS, self.model_fps)
        self.interpolate = abs(self.fps - self.model_fps) > 1e-6
        if args.lookahead is not None and int(args.lookahead) != int(meta["lookahead"]):
            raise UserError(f"--lookahead {args.lookahead}: this model was trained with lookahead {meta['lookahead']}; "
                            "pass a model trained for the lookahead you want (--model)")
        seed_motion = None
        if args.seed_motion:
            from transflower.motion_features import features_from_bvh as seed_from_bvh

            seed_motion = seed_from_bvh(args.seed_motion, self.model_fps)[-(int(meta["context"]) - 1):]
        self.dancers = int(getattr(args, "dancers", 1) or 1)
        targets = dancer_targets(args.osc, self.dancers)
        if args.temperature is None:  # the model's benchmarked default (metadata), else 1 = as trained
            args.temperature = float(meta.get("default_temperature", 1.0))
        from transflower.styles import check_strength, preset_of

        args.style_strength = check_strength(1.0 if getattr(args, "style_strength", None) is None else args.style_strength,
                                             "--style-strength")
        # with --style: begins in it, warmed up under its label on --seed-motion, else on the style's own seed clip
        self.engine = DanceEngine(self.model, temperature=parse_temperatures(args), seed=args.seed,
                                  seed_motion=seed_motion, dancers=self.dancers,
                                  style_presets=not getattr(args, "no_style_presets", False),
                                  style=getattr(args, "style", None), style_strength=args.style_strength,
                                  ground=not getattr(args, "no_floor", False),
                                  noise_correlation=getattr(args, "noise_correlation", None),
                                  energy=not getattr(args, "no_energy", False))
        if getattr(args, "style", None) and args.style != "auto":
            p_strength, p_temp = preset_of(self.engine.presets, args.style)
            start = ("the seed clip it was given" if seed_motion is not None else "warm-started on its seed clip"
                     if args.style in self.engine.style_seeds else "the model's seed clip")
            log.info("style %s from the start (%s; preset: strength x%g, temperature x%g)", args.style, start, p_strength, p_temp)
        if self.dancers > 1 and not self.engine.batched:
            log.warning("%s has a batch axis fixed to 1: the %d dancers step one graph run each (re-export it with a "
                        "dynamic batch axis for one batched run)", self.model.path.name, self.dancers)
        self.skeleton = Skeleton.from_dict(meta["skeleton"])
        kernels.warm_up()  # load (or compile once) the per-frame kernels now, never in the loop
        self.crowd = Crowd(self.skeleton, self.dancers, targets, float(args.stage_radius), floor=not args.no_floor,
                           interpolate=self.interpolate, bone_positions=args.bone_positions, bone_map=args.bone_map)
        self.audio_config = AudioFeatureConfig.from_dict(meta["audio_config"])
        self.clock = FrameClock(self.fps, late_policy=args.late_policy)
        self.lookahead = int(meta["lookahead"])
        self.preview = None
        if args.preview:
            from bridge.preview import PreviewServer

            self.preview = PreviewServer(port=int(args.preview_port), fps=self.fps, status_fn=self._preview_status,
                                         avatar=args.avatar, styles=self.model.meta.get("styles") or [])
        self.stop_requested = False
        self.stopped_by = ""
        self.times = FrameTimes()
        self.latency_ms = RollingStats()
        self.frames_without_new_audio = 0  # frames that reused the previous audio row (none had completed since)
        self.silent_frames = 0
        self.engine_errors = 0
        self._engine_fail_run = 0
        self.overload_hints = 0
        self.frames_sent = 0
        self.startup_s = None
        self.gc_watch = None
        self.priority = "normal"
        self.memory = "unlocked"
        self._switch_interval = None
        self.feats = None
        self.watchdog = None
        self.source = None
        self._status_text = "starting"
        self.status_line = None
        self.receivers = None
        self._tempo_row = self.audio_config.names.index("tempo")  # log2(bpm / 120) in an audio feature row
        from realtime.control import attach_controls

        self.controls = attach_controls(self, args)  # --control / --midi; None when neither is given

    @property
    def sender(self):
        """Dancer 0's VMC sender (one dancer: the only one)."""
        return self.crowd.senders[0]

    @property
    def step_ms(self):
        return self.times.recent_step

    def _on_signal(self, signum, frame):
        self.stop_requested = True
        self.stopped_by = signal.Signals(signum).name

    # -- one frame -------------------------------------------------------------------------------
    def frame(self, tick, elapsed: float) -> int:
        """A frame's path: pull audio rows -> frame hooks -> step -> pose -> send. Returns new audio rows."""
        new_rows = self._pull_audio()
        for hook in self.frame_hooks:
            hook(self)
        if not self.interpolate:
            self._model_frame()
        else:
            self._model_frames_until(elapsed)
        self.crowd.send(tick.frame_index, elapsed)
        return new_rows

    def _pull_audio(self) -> int:
        """Newest audio features into self.row; a stalled input dances on to the last music, then silence."""
        feats, watchdog = self.feats, self.watchdog
        new = watchdog.take_replacement()
        if new is not None:
            feats.attach(new)
            self.source = new
        new_rows = feats.pull()
        state = watchdog.check(new_rows > 0)
        if new_rows:
            self.row = feats.row
        else:
            self.frames_without_new_audio += 1
            if state != "ok" and self.row is not self.engine.silence:
                self.row = self.engine.silence
                feats.level_db = -120.0
            if self.row is self.engine.silence:
                self.silent_frames += 1
        return new_rows

    def _model_frame(self) -> None:
        """One model step for every dancer -> their next bodies (crowd.root / crowd.rots)."""
        if self.hold:  # frozen: resend the last poses; the engine and the integrator wait (no jump on resume)
            if self.interpolate:
                self.crowd.hold()
            return
        t0 = time.perf_counter()
        self._engine_step(self.row)
        self._engine_s += time.perf_counter() - t0
        self.crowd.body(self.engine.shown_poses)

    def _model_frames_until(self, elapsed: float) -> None:
        """--fps other than the model's: the model frames due by now, then the blend between the two newest."""
        need = int(math.floor(elapsed * self.model_fps + 1e-9)) + 1
        if need - self._model_done > self._max_catch_up:  # a long stall: do not replay missed model frames
            self._model_done = need - self._max_catch_up
        while self._model_done < need:
            self._model_frame()
            if self._model_done == 0:
                self.crowd.hold()
            self._model_done += 1
        self.crowd.blend(min(max(elapsed * self.model_fps - need + 1, 0.0), 1.0))

    def _engine_step(self, row):
        """engine.step, surviving an engine that raises (counted; reset from the seed motion)."""
        try:
            out = self.engine.step(row)
            self._engine_fail_run = 0
            return out
        except Exception as e:  # noqa: BLE001  onnxruntime errors, injected faults
            self.engine_errors += 1
            self._engine_fail_run += 1
            if self.engine_errors == 1 or self._engine_fail_run == 1:
                log.warning("engine step failed (%s: %s); resetting from the seed motion", type(e).__name__, str(e)[:200])
            if self._engine_fail_run >= self.MAX_CONSECUTIVE_ENGINE_ERRORS:
                raise UserError(f"the model failed {self._engine_fail_run} steps in a row ({type(e).__name__}: {str(e)[:200]})") from None
            try:
                self.engine.reset(f"engine error ({type(e).__name__})")
            except Exception:  # noqa: BLE001
                pass
            return self.engine.shown_poses

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> int:
        import threading

        old_handlers = ({s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
                        if threading.current_thread() is threading.main_thread() else {})  # tests run it in threads
        try:
            self._start()
            self._loop()
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            self._stop()
        summary = self.summary()
        if self.stopped_by in ("SIGINT", "SIGTERM"):
            log.info("stopped by %s after %d frames (%.1f s); eased into the standing pose", self.stopped_by, summary.frames,
                     summary.seconds)
        # every figure as JSON to --summary-json and beside the run's log file (transflower.cli); a few lines here
        written = write_summary_json(summary, self.args.summary_json, getattr(self.args, "_log_path", None))
        print(human_summary(summary, written), flush=True)
        self.crowd.close()
        for h in logging.getLogger().handlers:
            h.flush()
        return 0

    def _start(self) -> None:
        from realtime.audio_sources import MicrophoneSource
        from realtime.streaming_features import StreamingAudioFeatures
        from realtime.timing import GcWatch, lock_memory, set_thread_priority
        from realtime.watchdog import AudioWatchdog

        args = self.args
        if self.preview:
            preview, self.preview = self.preview, None
            preview.start()  # a port in use: UserError (and nothing to stop: its loop never ran)
            self.preview = preview
            log.info("preview: %s", self.preview.url)
        source = self.source = self.source_factory()
        source.start()
        end = time.monotonic() + 4.0
        while source.ring.total_written == 0 and not self.stop_requested and time.monotonic() < end:
            time.sleep(0.01)  # a PortAudio stream may take ~2 s to deliver its first callback
        if source.ring.total_written == 0 and not self.stop_requested:
            log.warning("%s delivered no audio in 4 s; dancing to silence until it does", source.name)
        self.feats = StreamingAudioFeatures(source, self.audio_config, gain=float(args.input_gain))
        # a device can come back: reopen it; a file or the demo track cannot fail that way
        reopenable = isinstance(source, MicrophoneSource) or getattr(source, "reopenable", False)
        self.watchdog = AudioWatchdog(source, self.source_factory if reopenable else None)
        targets = ", ".join(f"{t.host}:{t.port}" for t in self.crowd.targets[:4]) + (" ..." if len(self.crowd.targets) > 4 else "")
        interp_ms = 1000.0 / self.model_fps if self.interpolate else 0.0
        log.info("dancing to %s at %g fps (model %g fps, lookahead %d frames = %.0f ms%s)%s -> VMC %s; Ctrl-C stops",
                 source.name, self.fps, self.model_fps, self.lookahead, 1000 * self.lookahead / self.model_fps,
                 f", interpolated: +{interp_ms:.0f} ms" if self.interpolate else "",
                 f", {self.dancers} dancers" if self.dancers > 1 else "", targets)
        self.row = self.engine.silence
        self._model_done = 0  # model frames computed (interpolation mode)
        self._max_catch_up = max(3, int(math.ceil(self.model_fps / self.fps)) + 1)
        self._engine_s = 0.0
        # everything made so far lives for the whole show: out of the collector's reach
        gc.collect()
        gc.freeze()
        self.gc_watch = GcWatch().__enter__()
        self.priority = set_thread_priority(getattr(args, "priority", "auto") or "auto")
        # a woken loop waits for the GIL until its holder (the file feeder, a callback) lets go, at the latest
        # after the switch interval: 5 ms by default, a late frame at 60 fps; 0.5 ms bounds that wait
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(LOOP_SWITCH_INTERVAL_S)
        lock = getattr(args, "lock_memory", "auto") or "auto"
        self.memory = lock_memory("on" if lock == "on" else lock if self.priority == "realtime" else "off")
        log.info("frame loop priority: %s; memory %s", self.priority, self.memory)

    def _loop(self) -> None:
        args, clock, times = self.args, self.clock, self.times
        from realtime.status_line import ReceiverWatch, StatusLine
        from realtime.timing import OverloadMonitor

        self.status_line = StatusLine(float(args.status_interval)).attach_logging()
        self.receivers = ReceiverWatch(self.crowd.targets, log)
        next_check = 0.0
        end_at = None if args.duration is None else float(args.duration)
        interp_ms = 1000.0 / self.model_fps if self.interpolate else 0.0
        overload = OverloadMonitor(self.OVERLOAD_WINDOW_S, self.OVERLOAD_FRACTION)
        clock.start()
        while not self.stop_requested:
            tick = clock.wait_next()
            elapsed = tick.deadline - clock.t0
            if end_at is not None and elapsed >= end_at - 1e-9:
                self.stopped_by = self.stopped_by or "duration"
                break
            t_start = time.perf_counter()
            self._engine_s = 0.0
            new_rows = self.frame(tick, elapsed)
            sent = time.monotonic()
            if self.startup_s is None:
                self.startup_s = (process_age_s() if self.startup_from_process else None) or (time.perf_counter() - self._created)
            if self.preview:
                try:
                    self.preview.push_pose(self.crowd.poses[0], self.skeleton)
                except Exception as e:  # noqa: BLE001  the preview is a convenience: never stop the show
                    log.warning("preview failed (%s); turning it off", e)
                    self.preview = None
            times.add(1000 * self._engine_s, 1000 * (time.perf_counter() - t_start))
            lat = None
            feats = self.feats
            if new_rows and feats.row_arrival is not None:
                lat = 1000 * (sent - feats.row_arrival) + interp_ms
                self.latency_ms.add(lat)
            self.frames_sent += 1
            if overload.update(tick, elapsed, clock.late_tolerance_s):
                self.overload_hints += 1
                bad, tot = overload.share
                log.warning("overload: %d of the last %d frames were late or skipped (step p99 %.1f ms, budget %.1f ms). "
                            "Try fewer --threads, fewer --dancers, a smaller model, or --no-spin (the audio thread needs CPU too)",
                            bad, tot, times.recent_step.pct(99), 1000 / self.fps)
            if self.on_frame is not None:
                self.on_frame(self, tick, lat)
            if elapsed >= next_check:  # the receivers' state, and the status line when it is due
                next_check = elapsed + self.RECEIVER_CHECK_S
                self.receivers.update()
                if self.status_line.due(elapsed):
                    self._print_status(feats, elapsed)
            if getattr(self.source, "finished", False) and self.source.ring.available() == 0:
                self.stopped_by = "end of input"
                log.info("%s ended after %.1f s; stopping (--loop-input plays it again)",
                         getattr(self.args, "input", None) or "the input", elapsed)
                break

    def _stop(self) -> None:
        if self.gc_watch is not None:
            self.gc_watch.__exit__()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        if self.priority == "realtime":
            from realtime.timing import reset_thread_priority

            reset_thread_priority()  # self.priority keeps what the loop ran as, for the summary
        if self.memory == "locked":
            from realtime.timing import unlock_memory

            unlock_memory()
        gc.unfreeze()
        if self.status_line is not None:
            self.status_line.close()  # off the terminal, log handlers as they were
        self.crowd.ease_to_neutral(0.5, self.fps)  # ~0.5 s into a standing pose, not a snap to the T-pose
        watchdog = self.watchdog
        if watchdog is not None:
            watchdog.close()
        for s in {id(x): x for x in (self.source, watchdog.source if watchdog else None) if x is not None}.values():
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001
                log.debug("stopping %s: %s", s.name, e)
        if self.controls is not None:
            self.controls.close()
        if self.preview:
            try:
                self.preview.stop()
            except Exception as e:  # noqa: BLE001
                log.debug("stopping the preview: %s", e)

    # -- reporting -------------------------------------------------------------------------------
    def _preview_status(self) -> str:
        return self._status_text

    def _print_status(self, feats, elapsed):
        from realtime.status_line import status_text

        text = status_text(self._status_facts(feats, elapsed), self.status_line.width)
        self._status_text = text
        if self.preview is not None and self.controls is not None:  # the page shows the current control values
            c = self.controls
            self.preview.set_values({"temperature": c.temperature, "style": c.style, "style_strength": c.style_strength,
                                     "correlation": c.correlation, "hold": int(c.hold), "gain": c.gain})
        self.status_line.show(text)

    def _status_facts(self, feats, elapsed):
        """What the status line shows (realtime.status_line); --verbose adds the engine figures."""
        from realtime.status_line import StatusFacts, style_label

        c, e, wd, ctl = self.clock, self.engine, self.watchdog, self.controls
        # the tempo once the music is loud enough and has played for a few seconds (the estimate needs some beats)
        tempo = feats.level_db > MUSIC_LEVEL_DB and feats.rows >= TEMPO_AFTER_S * self.model_fps
        return StatusFacts(
            elapsed, feats.level_db, bpm=120.0 * 2.0 ** float(feats.row[self._tempo_row]) if tempo else None,
            style=style_label(e.styles, None if e.style is None else e.style[0]),
            size=None if e.energy is None else e.energy.gain, in_break=bool(e.energy is not None and e.energy.in_break),
            late=c.late, skipped=c.skipped, receivers=self.receivers.text,
            audio_lost_s=None if wd is None or wd.state == "ok" else wd.silent_for,
            hold=bool(self.hold or (ctl is not None and ctl.hold)),
            temperature=None if ctl is None else ctl.temperature,
            engine=self._engine_figures(elapsed) if getattr(self.args, "verbose", False) else "")

    def _engine_figures(self, elapsed) -> str:
        c, t, e = self.clock, self.times, self.engine
        udp = sum(x.failed + x.refused for x in self.crowd.targets)
        return (f"{c.frames / max(elapsed, 1e-9):5.1f} fps  step p50 {t.recent_step.pct(50):5.2f} "
                f"p99 {t.recent_step.pct(99):5.2f} ms (engine {t.recent_engine.pct(50):5.2f}/{t.recent_engine.pct(99):5.2f}, "
                f"host {t.recent_host.pct(50):4.2f}/{t.recent_host.pct(99):4.2f})  latency p50 {self.latency_ms.pct(50):5.0f} ms  "
                f"resets {e.stats.resets}  udp err {udp}" + (f"  {self.controls.status_text()}" if self.controls else ""))

    def summary(self, source=None, feats=None) -> LiveSummary:
        """The run's figures (realtime.live_summary); `source` and `feats` are the session's own, kept for callers."""
        return summarize(self)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), for `startup_s`: command -> first packet."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
