"""`transflower live`: music in, dance out, every frame on time.

    audio source (mic / file / demo) --callback--> ring buffer
    LiveSession.run: start-up (model, warm start, kernels, gc.freeze), then once per frame on absolute
    deadlines (transflower.realtime.frame_clock) LiveSession.frame(tick), which is a frame's whole path:
        pull audio rows          StreamingAudioFeatures.pull(): drain ring -> resample -> causal features
                                 (AudioWatchdog: a lost input dances on to silence, reopened with back-off)
        frame hooks              `for hook in session.frame_hooks: hook(session)`: live control
                                 (transflower.realtime.control: OSC / MIDI; temperature, style, hold, reset, gain) or a
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

Faults never stop the stream: a lost audio input is reopened in the background (transflower.realtime.watchdog);
an engine that raises or outputs non-finite/exploding poses is reset from the seed motion; OSC send
errors are counted (transflower.bridge.vmc); a late step is skipped or held per --late-policy, and sustained
overload logs one hint. SIGINT/SIGTERM stop cleanly: the dancers ease into a standing pose, summary printed, exit 0.

Late frames, and what the loop does against them: nothing in a frame allocates container objects, and
everything made at start-up is moved out of the garbage collector's reach (gc.freeze), so a
collection never walks the model's objects mid-show (the summary counts collections: `gc`);
onnxruntime runs 1 intra-op thread unless --threads says otherwise (a spinning second thread on a
2-core machine takes the core the audio thread and the OS need).
"""
from __future__ import annotations

import gc
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path


from transflower.realtime.live_options import (CONFIG_KEYS, _parser, apply_config_file, build_defaults,  # noqa: F401  (the CLI's)
                                   configure_parser, typed_options, validate)
from transflower.realtime.live_summary import LiveSummary, human_summary, summarize, write_summary_json
from transflower.control_spec import TEMPERATURE
from transflower.errors import UserError
from transflower.realtime.time_base import time_base_option

log = logging.getLogger("transflower.live")

# Receivers that do not interpolate (EVMC4U, VSeeFace, Warudo as set up by default) show the newest frame at each
# display refresh: at the model's 20 fps that is visible 50 ms stepping, so the stream goes out at 60 fps,
# interpolated, for one model frame of latency (scripts/measure_send_rate.py; docs/receivers.md). --fps 20 gives
# that frame back where the receiver interpolates itself (our Unity package, the browser preview).
DEFAULT_SEND_FPS = 60.0
MUSIC_LEVEL_DB = -60.0  # above this the status line shows the music's tempo (below it there is no beat to find)
TEMPO_AFTER_S = 3.0
LOOP_SWITCH_INTERVAL_S = 0.0005  # the GIL switch interval while the loop runs (see _start)
def open_source(args):
    from transflower.realtime.audio_sources import DemoSource, FileSource, MicrophoneSource, open_default_source

    if args.input:
        from transflower.realtime.playlist import PlaylistSource, playlist_files

        files = playlist_files(args.input)
        cls = FileSource if len(files) == 1 else PlaylistSource
        return cls(files[0] if len(files) == 1 else files, realtime=True, loop=bool(args.loop), audible=bool(args.audible))
    if args.demo:
        return DemoSource(audible=bool(args.audible))
    if args.device is not None:
        dev = int(args.device) if str(args.device).isdigit() else args.device
        return MicrophoneSource(dev)
    return open_default_source(None, demo_fallback=True)


def run(args) -> int:
    if args.list_devices:
        from transflower.realtime.audio_sources import format_input_devices, list_input_devices

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
        from transflower.realtime.midi import list_midi_inputs

        names = list_midi_inputs()
        if not names:
            print("no MIDI input ports")
        for i, name in enumerate(names):
            print(f"{i:3d}  {name}")
        return 0
    if args.list_styles:
        from transflower.realtime.onnx_model import OnnxDanceModel
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
    from transflower.realtime.live_config import live_config

    session = LiveSession(live_config(args))  # the library takes a frozen config, not the parser's namespace
    session.startup_from_process = True
    return session.run()




def parse_temperatures(args, temperature: float) -> list[float]:
    """Each dancer's temperature: --temperatures, else `temperature` (--temperature or the model's default) for all."""
    n = int(args.dancers)
    if not args.temperatures:
        return [float(temperature)] * n
    try:
        temps = [float(t) for t in str(args.temperatures).split(",")]
    except ValueError:
        raise UserError(f"--temperatures {args.temperatures}: expected comma-separated numbers, one per dancer") from None
    if len(temps) != n or not all(TEMPERATURE.contains(t) for t in temps):
        raise UserError(f"--temperatures {args.temperatures}: expected {n} values (one per dancer) in "
                        f"{TEMPERATURE.range_text}")
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
        from transflower.realtime.crowd import dancer_targets

        from transflower.realtime.live_config import LiveConfig, live_config

        self._created = time.perf_counter()
        self.startup_from_process = False  # `transflower live` measures from the process's start
        self.args = args = args if isinstance(args, LiveConfig) else live_config(args)  # frozen: read, never changed
        self.source_factory = source_factory or (lambda: open_source(args))
        self.on_frame = on_frame
        self.frame_hooks = []  # callables hook(session), run every frame before the step (live control)
        self.hold = False      # a performer froze the dancers: the loop resends the last poses
        self._load_model(args)
        seed_motion = self._load_seed_motion(args)
        self.dancers = int(getattr(args, "dancers", 1) or 1)
        targets = dancer_targets(args.osc, self.dancers)
        self._build_engine(args, seed_motion)
        self._build_outputs(args, targets)
        self._init_run_state()
        from transflower.realtime.control import attach_controls

        self.controls = attach_controls(self, args)  # --control / --midi; None when neither is given

    def _load_model(self, args) -> None:
        """The ONNX model, its frame rate and the send rate (interpolated when they differ)."""
        from transflower.realtime.onnx_model import OnnxDanceModel

        self.model = OnnxDanceModel(args.model, provider=args.provider, threads=int(args.threads), spinning=not args.no_spin)
        meta = self.model.meta
        self.model_fps = float(meta["fps"])
        self.fps = float(args.fps) if args.fps is not None else max(DEFAULT_SEND_FPS, self.model_fps)
        self.interpolate = abs(self.fps - self.model_fps) > 1e-6
        if args.lookahead is not None and int(args.lookahead) != int(meta["lookahead"]):
            raise UserError(f"--lookahead {args.lookahead}: this model was trained with lookahead {meta['lookahead']}; "
                            "pass a model trained for the lookahead you want (--model)")

    def _load_seed_motion(self, args):
        """--seed-motion's features at the model's rate, its last context - 1 frames (None without it)."""
        if not args.seed_motion:
            return None
        from transflower.motion_features import features_from_bvh as seed_from_bvh

        return seed_from_bvh(args.seed_motion, self.model_fps)[-(int(self.model.meta["context"]) - 1):]

    def _build_engine(self, args, seed_motion) -> None:
        """The DanceEngine for every dancer: temperature(s), style and its strength, floor, noise, energy."""
        from transflower.realtime.engine import DanceEngine
        from transflower.styles import check_strength, preset_of

        temperature = args.temperature  # else the model's benchmarked default (metadata), else 1 = as trained
        if temperature is None:
            temperature = float(self.model.meta.get(TEMPERATURE.model_key, TEMPERATURE.default))
        self.style_strength = check_strength(1.0 if args.style_strength is None else args.style_strength, "--style-strength")
        # with --style: begins in it, warmed up under its label on --seed-motion, else on the style's own seed clip
        self.engine = DanceEngine(self.model, temperature=parse_temperatures(args, temperature), seed=args.seed,
                                  seed_motion=seed_motion, dancers=self.dancers,
                                  style_presets=not getattr(args, "no_style_presets", False),
                                  style=getattr(args, "style", None), style_strength=self.style_strength,
                                  ground=not getattr(args, "no_floor", False),
                                  noise_correlation=getattr(args, "noise_correlation", None),
                                  energy=not getattr(args, "no_energy", False),
                                  time_base=time_base_option(bool(getattr(args, "time_base", False)),
                                                             getattr(args, "count_in", None)))
        if getattr(args, "style", None) and args.style != "auto":
            p_strength, p_temp = preset_of(self.engine.presets, args.style)
            start = ("the seed clip it was given" if seed_motion is not None else "warm-started on its seed clip"
                     if args.style in self.engine.style_seeds else "the model's seed clip")
            log.info("style %s from the start (%s; preset: strength x%g, temperature x%g)", args.style, start, p_strength, p_temp)
        if self.dancers > 1 and not self.engine.batched:
            log.warning("%s has a batch axis fixed to 1: the %d dancers step one graph run each (re-export it with a "
                        "dynamic batch axis for one batched run)", self.model.path.name, self.dancers)

    def _build_outputs(self, args, targets) -> None:
        """Skeleton, the warmed-up kernels, the crowd of senders, audio feature layout, frame clock, preview."""
        from transflower import kernels
        from transflower.audio_features import AudioFeatureConfig
        from transflower.realtime.crowd import Crowd
        from transflower.realtime.frame_clock import FrameClock
        from transflower.skeleton import Skeleton

        meta = self.model.meta
        self.skeleton = Skeleton.from_dict(meta["skeleton"])
        kernels.warm_up()  # load (or compile once) the per-frame kernels now, never in the loop
        from transflower.bridge.sinks import BvhRecorder, PreviewSink, VmcSink

        self.crowd = Crowd(self.skeleton, self.dancers, float(args.stage_radius), floor=not args.no_floor,
                           interpolate=self.interpolate)
        # the outputs, in the order each frame reaches them: VMC first (what the latency measures), then the rest
        self.vmc = VmcSink(targets, self.skeleton, bone_positions=args.bone_positions, bone_map=args.bone_map)
        self.sinks = [self.vmc]
        self.audio_config = AudioFeatureConfig.from_dict(meta["audio_config"])
        self.clock = FrameClock(self.fps, late_policy=args.late_policy)
        self.lookahead = int(meta["lookahead"])
        self.preview = None
        if args.preview:
            from transflower.bridge.preview import PreviewServer

            self.preview = PreviewServer(port=int(args.preview_port), fps=self.fps, status_fn=self._preview_status,
                                         avatar=args.avatar, styles=self.model.meta.get("styles") or [])
            self.sinks.append(PreviewSink(self.preview, self.skeleton))
        if getattr(args, "record", None):
            self.sinks.append(BvhRecorder(args.record, self.skeleton, self.fps))

    def _init_run_state(self) -> None:
        """Counters and handles the run fills in (stop flags, timing stats, audio input, status, receivers)."""
        from transflower.realtime.timing import FrameTimes, RollingStats

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
        self.source_started = False
        self._status_text = "starting"
        self.status_line = None
        self.receivers = None
        self._tempo_row = self.audio_config.names.index("tempo")  # log2(bpm / 120) in an audio feature row

    @property
    def sender(self):
        """Dancer 0's VMC sender (one dancer: the only one)."""
        return self.vmc.senders[0]

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
        self.crowd.send(tick.frame_index, elapsed, self.sinks)
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
        written = write_summary_json(summary, self.args.summary_json, self.args.log_path)
        print(human_summary(summary, written), flush=True)
        for sink in self.sinks:
            sink.close()
        for h in logging.getLogger().handlers:
            h.flush()
        return 0

    def _start(self) -> None:
        from transflower.realtime.audio_sources import MicrophoneSource
        from transflower.realtime.streaming_features import StreamingAudioFeatures
        from transflower.realtime.timing import GcWatch, lock_memory, set_thread_priority
        from transflower.realtime.watchdog import AudioWatchdog

        args = self.args
        if self.preview:
            preview, self.preview = self.preview, None
            preview.start()  # a port in use: UserError (and nothing to stop: its loop never ran)
            self.preview = preview
            log.info("preview: %s", self.preview.urls_text())
        source = self.source = self.source_factory()
        if isinstance(source, MicrophoneSource):  # a device may take seconds to deliver: open it now
            self._start_source()
        self.feats = StreamingAudioFeatures(source, self.audio_config, gain=float(args.input_gain))
        # a device can come back: reopen it; a file or the demo track cannot fail that way
        reopenable = isinstance(source, MicrophoneSource) or getattr(source, "reopenable", False)
        self.watchdog = AudioWatchdog(source, self.source_factory if reopenable else None)
        targets = ", ".join(f"{t.host}:{t.port}" for t in self.vmc.targets[:4]) + (" ..." if len(self.vmc.targets) > 4 else "")
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
        from transflower.realtime.status_line import ReceiverWatch, StatusLine
        from transflower.realtime.timing import OverloadMonitor

        self.status_line = StatusLine(float(args.status_interval)).attach_logging()
        self.receivers = ReceiverWatch(self.vmc.targets, log)
        next_check = 0.0
        end_at = None if args.duration is None else float(args.duration)
        interp_ms = 1000.0 / self.model_fps if self.interpolate else 0.0
        overload = OverloadMonitor(self.OVERLOAD_WINDOW_S, self.OVERLOAD_FRACTION)
        if not self.source_started:  # a file or the demo track plays from the first frame, not during start-up
            self._start_source()
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
                log.info("%s ended after %.1f s; stopping (--loop plays it again)", self._input_name(), elapsed)
                break

    def _start_source(self) -> None:
        source = self.source
        source.start()
        self.source_started = True
        end = time.monotonic() + 4.0
        while source.ring.total_written == 0 and not self.stop_requested and time.monotonic() < end:
            time.sleep(0.01)  # a PortAudio stream may take ~2 s to deliver its first callback
        if source.ring.total_written == 0 and not self.stop_requested:
            log.warning("%s delivered no audio in 4 s; dancing to silence until it does", source.name)
        if self.watchdog is not None:
            self.watchdog.source_started()

    def _input_name(self) -> str:
        paths = getattr(self.args, "input", None) or []
        paths = [paths] if isinstance(paths, str) else paths
        return str(paths[0]) if len(paths) == 1 else f"the playlist ({len(paths)} inputs)" if paths else "the input"

    def _stop(self) -> None:
        if self.gc_watch is not None:
            self.gc_watch.__exit__()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        if self.priority == "realtime":
            from transflower.realtime.timing import reset_thread_priority

            reset_thread_priority()  # self.priority keeps what the loop ran as, for the summary
        if self.memory == "locked":
            from transflower.realtime.timing import unlock_memory

            unlock_memory()
        gc.unfreeze()
        if self.status_line is not None:
            self.status_line.close()  # off the terminal, log handlers as they were
        for sink in self.sinks:  # ~0.5 s into a standing pose, not a snap to the T-pose
            sink.ease_to_neutral(0.5, self.fps)
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
        from transflower.realtime.status_line import status_text

        text = status_text(self._status_facts(feats, elapsed), self.status_line.width)
        self._status_text = text
        if self.preview is not None and self.controls is not None:  # the page shows the current control values
            c = self.controls
            self.preview.set_values({"temperature": c.temperature, "style": c.style, "style_strength": c.style_strength,
                                     "correlation": c.correlation, "hold": int(c.hold), "gain": c.gain})
        self.status_line.show(text)

    def _status_facts(self, feats, elapsed):
        """What the status line shows (transflower.realtime.status_line); --verbose adds the engine figures."""
        from transflower.realtime.status_line import StatusFacts, style_label

        c, e, wd, ctl = self.clock, self.engine, self.watchdog, self.controls
        # the tempo once the music is loud enough and has played for a few seconds (the estimate needs some beats)
        tempo = feats.level_db > MUSIC_LEVEL_DB and feats.rows >= TEMPO_AFTER_S * self.model_fps
        return StatusFacts(
            elapsed, feats.level_db, bpm=120.0 * 2.0 ** float(feats.row[self._tempo_row]) if tempo else None,
            pace=None if e.time_base is None else e.time_base.rate,
            listening=e.time_base is not None and e.time_base.counting_in,
            style=style_label(e.styles, None if e.style is None else e.style[0]),
            size=None if e.energy is None else e.energy.gain, in_break=bool(e.energy is not None and e.energy.in_break),
            late=c.late, skipped=c.skipped, receivers=self.receivers.text,
            audio_lost_s=None if wd is None or wd.state == "ok" else wd.silent_for,
            hold=bool(self.hold or (ctl is not None and ctl.hold)),
            temperature=None if ctl is None else ctl.temperature,
            engine=self._engine_figures(elapsed) if getattr(self.args, "verbose", False) else "")

    def _engine_figures(self, elapsed) -> str:
        c, t, e = self.clock, self.times, self.engine
        udp = sum(x.failed + x.refused for x in self.vmc.targets)
        return (f"{c.frames / max(elapsed, 1e-9):5.1f} fps  step p50 {t.recent_step.pct(50):5.2f} "
                f"p99 {t.recent_step.pct(99):5.2f} ms (engine {t.recent_engine.pct(50):5.2f}/{t.recent_engine.pct(99):5.2f}, "
                f"host {t.recent_host.pct(50):4.2f}/{t.recent_host.pct(99):4.2f})  latency p50 {self.latency_ms.pct(50):5.0f} ms  "
                f"resets {e.stats.resets}  udp err {udp}" + (f"  {self.controls.status_text()}" if self.controls else ""))

    def summary(self, source=None, feats=None) -> LiveSummary:
        """The run's figures (transflower.realtime.live_summary); `source` and `feats` are the session's own, kept for callers."""
        return summarize(self)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), for `startup_s`: command -> first packet."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
