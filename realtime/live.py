"""`transflower live`: music in, dance out, every frame on time.

    audio source (mic / file / demo) --callback--> ring buffer
    loop, once per frame on absolute deadlines (FrameClock):
        StreamingAudioFeatures.pull()   drain ring -> resample -> causal features (every hop)
        DanceEngine.step(newest row)    ONNX step with the ring KV cache -> pose features
        MotionIntegrator.step()         features -> root position + local joint rotations
        VmcSender.send()                one OSC bundle per frame to every target (never blocks)
        status line                     fps, step p50/p99, level, late/skipped frames, resets

The model sees audio up to the newest complete hop; it was trained to place the pose `lookahead`
frames before that, so the dance trails the music by hop + lookahead frames + processing, which the
summary reports as measured audio-in -> pose-out latency.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transflower.errors import UserError

log = logging.getLogger("transflower.live")

# options a --config YAML may set (the CLI's own names, with dashes as underscores)
CONFIG_KEYS = {"device", "input", "demo", "audible", "model", "fps", "temperature", "seed", "seed_motion", "lookahead",
               "duration", "osc", "preview", "preview_port", "threads", "provider", "late_policy", "stage_radius",
               "no_spin", "status_interval", "input_gain", "summary_json", "loop_input"}


class RollingStats:
    """Fixed-size ring of recent values (no allocation per frame) with percentiles on demand."""

    def __init__(self, size: int = 2048):
        self.buf = np.zeros(size, np.float64)
        self.n = 0

    def add(self, v: float) -> None:
        self.buf[self.n % len(self.buf)] = v
        self.n += 1

    def values(self) -> np.ndarray:
        return self.buf[: min(self.n, len(self.buf))]

    def pct(self, q: float) -> float:
        v = self.values()
        return float(np.percentile(v, q)) if len(v) else float("nan")


@dataclass
class LiveSummary:
    frames: int = 0
    seconds: float = 0.0
    late: int = 0
    skipped: int = 0
    step_ms: dict = field(default_factory=dict)
    latency_ms: dict = field(default_factory=dict)
    engine_resets: int = 0
    audio_rows: int = 0
    starved_frames: int = 0
    audio_overruns: int = 0
    udp_errors: int = 0
    source: str = ""
    provider: str = ""
    lookahead_ms: float = 0.0


def configure_parser(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("audio input (default: the default input device, else the demo track)")
    src.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    src.add_argument("--device", help="input device index or name (see --list-devices)")
    src.add_argument("--input", metavar="FILE", help="play an audio file through the live path, paced in real time")
    src.add_argument("--loop-input", action="store_true", help="loop --input")
    src.add_argument("--audible", action="store_true", help="also play --input / the demo track on the default output")
    src.add_argument("--demo", action="store_true", help="dance to the built-in synthesised track (no hardware needed)")
    src.add_argument("--input-gain", type=float, default=1.0, help="multiply input samples (match a quiet line-in to the training level)")
    mdl = p.add_argument_group("model")
    mdl.add_argument("--model", help="exported .onnx model (default: the shipped model)")
    mdl.add_argument("--fps", type=float, help="frame rate; must equal the model's (default: the model's)")
    mdl.add_argument("--temperature", type=float, default=1.0, help="sampling temperature: 0 = calm/average, 1 = as trained")
    mdl.add_argument("--seed", type=int, help="random seed for a reproducible dance")
    mdl.add_argument("--seed-motion", metavar="BVH", help="BVH clip whose last frames start the dance")
    mdl.add_argument("--lookahead", type=int, help="frames of music lookahead; must equal what the model was trained with")
    mdl.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    mdl.add_argument("--provider", default="auto", help="auto | cpu | cuda | tensorrt (default auto: a GPU if there is one)")
    mdl.add_argument("--no-spin", action="store_true", help="turn off onnxruntime thread spinning (less CPU, ~1 ms slower)")
    out = p.add_argument_group("output")
    out.add_argument("--osc", action="append", metavar="HOST:PORT", help="VMC/OSC target, repeatable (default 127.0.0.1:39539)")
    out.add_argument("--preview", action="store_true", help="serve a live 3D skeleton in the browser")
    out.add_argument("--preview-port", type=int, default=8765, help="HTTP port of --preview (default 8765)")
    out.add_argument("--stage-radius", type=float, default=150.0, help="keep the dancer within this radius (cm) of the origin")
    run = p.add_argument_group("run")
    run.add_argument("--duration", type=float, help="run this many seconds, then exit 0 with a summary")
    run.add_argument("--late-policy", choices=["skip", "hold"], default="skip", help="a late frame: skip to the next deadline, or emit it late")
    run.add_argument("--status-interval", type=float, default=0.5, help="seconds between status line updates (0: none)")
    run.add_argument("--summary-json", metavar="FILE", help="write the run summary as JSON")
    run.add_argument("--config", metavar="YAML", help="options as YAML (keys as the long options, e.g. temperature: 0.8)")


def apply_config_file(args) -> None:
    if not args.config:
        return
    import yaml

    path = Path(args.config)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"--config {path}: file not found") from None
    except yaml.YAMLError as e:
        raise UserError(f"--config {path}: not valid YAML ({e})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"--config {path}: expected a mapping of option: value")
    unknown = {k.replace("-", "_") for k in cfg} - CONFIG_KEYS
    if unknown:
        raise UserError(f"--config {path}: unknown keys {sorted(unknown)}; expected some of {sorted(CONFIG_KEYS)}")
    defaults = vars(build_defaults())
    for k, v in cfg.items():
        k = k.replace("-", "_")
        if getattr(args, k) == defaults.get(k):  # the command line wins over the file
            setattr(args, k, v)


def build_defaults():
    p = argparse.ArgumentParser()
    configure_parser(p)
    return p.parse_args([])


def validate(args) -> None:
    if args.temperature is not None and not (0.0 <= float(args.temperature) <= 5.0):
        raise UserError(f"--temperature {args.temperature}: expected a value between 0 and 5")
    if args.duration is not None and float(args.duration) <= 0:
        raise UserError(f"--duration {args.duration}: expected a positive number of seconds")
    if not (1 <= int(args.threads) <= 64):
        raise UserError(f"--threads {args.threads}: expected 1..64")
    if float(args.input_gain) <= 0:
        raise UserError(f"--input-gain {args.input_gain}: expected a positive factor")
    if args.input and args.device:
        raise UserError("--input and --device: choose one audio input")
    if args.input and not Path(args.input).exists():
        raise UserError(f"--input {args.input}: file not found")


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
        from realtime.audio_sources import list_input_devices

        devs = list_input_devices()
        if not devs:
            print("no audio input devices (the demo track is used by default)")
        for d in devs:
            print(f"{d.index:3d}  {d.name}  ({d.channels} ch, {d.default_samplerate:g} Hz)")
        return 0
    apply_config_file(args)
    validate(args)
    return LiveSession(args).run()


class LiveSession:
    def __init__(self, args):
        from bridge.vmc import VmcSender
        from realtime.engine import DanceEngine, OnnxDanceModel
        from realtime.frame_clock import FrameClock
        from transflower.audio_features import AudioFeatureConfig
        from transflower.motion_features import MotionFeatures, MotionIntegrator
        from transflower.skeleton import Skeleton

        self.args = args
        self.model = OnnxDanceModel(args.model, provider=args.provider, threads=int(args.threads), spinning=not args.no_spin)
        meta = self.model.meta
        fps = float(meta["fps"])
        if args.fps is not None and abs(float(args.fps) - fps) > 1e-6:
            raise UserError(f"--fps {args.fps}: this model runs at {fps:g} fps (the avatar client interpolates to its display rate)")
        if args.lookahead is not None and int(args.lookahead) != int(meta["lookahead"]):
            raise UserError(f"--lookahead {args.lookahead}: this model was trained with lookahead {meta['lookahead']}; "
                            "pass a model trained for the lookahead you want (--model)")
        seed_motion = None
        if args.seed_motion:
            from transflower.generate import seed_from_bvh

            seed_motion = seed_from_bvh(args.seed_motion, fps)[-(int(meta["context"]) - 1):]
        self.engine = DanceEngine(self.model, temperature=float(args.temperature), seed=args.seed, seed_motion=seed_motion)
        self.skeleton = Skeleton.from_dict(meta["skeleton"])
        self.integrator = MotionIntegrator(MotionFeatures(self.skeleton))
        self.audio_config = AudioFeatureConfig.from_dict(meta["audio_config"])
        self.sender = VmcSender(args.osc or ["127.0.0.1:39539"], self.skeleton)
        self.clock = FrameClock(fps, late_policy=args.late_policy)
        self.fps = fps
        self.lookahead = int(meta["lookahead"])
        self.preview = None
        if args.preview:
            from bridge.preview import PreviewServer

            self.preview = PreviewServer(port=int(args.preview_port), fps=fps)
        self.stop_requested = False
        self.step_ms = RollingStats()
        self.latency_ms = RollingStats()
        self.starved = 0

    def _on_signal(self, signum, frame):
        self.stop_requested = True

    def run(self) -> int:
        from realtime.streaming_features import StreamingAudioFeatures
        from transflower.skeleton import Pose

        args = self.args
        source = open_source(args)
        old_handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        status_every = float(args.status_interval)
        gain = float(args.input_gain)
        feats = None
        try:
            source.start()
            if not source.wait_for_audio(timeout=4.0):
                log.warning("%s delivered no audio in 4 s; dancing to silence until it does", source.name)
            feats = StreamingAudioFeatures(source, self.audio_config, gain=gain)
            if self.preview:
                self.preview.start()
                log.info("preview: http://127.0.0.1:%d/", self.args.preview_port)
            targets = ", ".join(f"{t.host}:{t.port}" for t in self.sender.targets)
            log.info("dancing to %s at %g fps (lookahead %d frames = %.0f ms) -> VMC %s; Ctrl-C stops",
                     source.name, self.fps, self.lookahead, 1000 * self.lookahead / self.fps, targets)
            engine, integ, sender, clock = self.engine, self.integrator, self.sender, self.clock
            pose = Pose(0, 0.0, np.zeros(3, np.float32), np.zeros((self.skeleton.num_joints, 4), np.float32))
            radius = float(args.stage_radius)
            silence = engine.silence
            last_audio = time.monotonic()
            end_at = None if args.duration is None else float(args.duration)
            clock.start()
            next_status = status_every
            while not self.stop_requested:
                tick = clock.wait_next()
                elapsed = tick.deadline - clock.t0
                if end_at is not None and elapsed >= end_at:
                    break
                t_start = time.perf_counter()
                new_rows = feats.pull()
                if new_rows:
                    last_audio = time.monotonic()
                    row = feats.row
                else:
                    self.starved += 1
                    # a stalled input: keep dancing to the last music for a moment, then to silence
                    row = feats.row if time.monotonic() - last_audio < 0.5 else silence
                features = engine.step(row)
                root, rots = integ.step(features)
                r = float(np.hypot(root[0], root[2]))
                if r > radius:  # keep the dancer on stage: pull the integrator back to the circle
                    integ.position[0] *= radius / r
                    integ.position[2] *= radius / r
                    root = integ.position
                pose.frame_index, pose.time = tick.frame_index, elapsed
                pose.root_position, pose.local_rotations = root, rots
                sender.send(pose)
                sent = time.monotonic()
                if self.preview:
                    self.preview.push_pose(pose, self.skeleton)
                self.step_ms.add(1000 * (time.perf_counter() - t_start))
                if new_rows and feats.row_arrival is not None:
                    self.latency_ms.add(1000 * (sent - feats.row_arrival))
                if status_every > 0 and elapsed >= next_status:
                    next_status = elapsed + status_every
                    self._print_status(feats, source, elapsed)
                if getattr(source, "finished", False) and feats.source.ring.available() == 0:
                    log.info("input finished")
                    break
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            if status_every > 0:
                sys.stderr.write("\n")
            try:
                self.sender.send_rest_pose()
            except Exception:  # shutting down: a failing socket must not hide the summary
                pass
            source.stop()
            if self.preview:
                self.preview.stop()
        summary = self.summary(source, feats)
        print(json.dumps(summary.__dict__, indent=1))
        if args.summary_json:
            Path(args.summary_json).write_text(json.dumps(summary.__dict__, indent=1))
        self.sender.close()
        return 0

    def _print_status(self, feats, source, elapsed):
        c, e = self.clock, self.engine
        udp = sum(t.failed + t.refused for t in self.sender.targets)
        line = (f"\r{elapsed:7.1f}s  {c.frames / max(elapsed, 1e-9):5.1f} fps  step p50 {self.step_ms.pct(50):5.2f} "
                f"p99 {self.step_ms.pct(99):5.2f} ms  latency p50 {self.latency_ms.pct(50):5.0f} ms  "
                f"level {feats.level_db:6.1f} dB  late {c.late} skipped {c.skipped}  resets {e.stats.resets}  udp err {udp}  ")
        sys.stderr.write(line)
        sys.stderr.flush()

    def summary(self, source, feats) -> LiveSummary:
        c = self.clock
        pct = lambda s: {"p50": round(s.pct(50), 3), "p99": round(s.pct(99), 3),  # noqa: E731
                         "max": round(float(s.values().max()), 3) if s.n else None, "n": int(s.n)}
        return LiveSummary(
            frames=c.frames, seconds=round(c.frames / self.fps, 2), late=c.late, skipped=c.skipped,
            step_ms=pct(self.step_ms), latency_ms=pct(self.latency_ms), engine_resets=self.engine.stats.resets,
            audio_rows=feats.rows if feats else 0, starved_frames=self.starved,
            audio_overruns=int(source.ring.overruns), udp_errors=int(sum(t.failed + t.refused for t in self.sender.targets)),
            source=source.name, provider=self.model.provider, lookahead_ms=1000 * self.lookahead / self.fps,
        )
