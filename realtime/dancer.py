"""`Dancer`: the live dancer as a Python library, for hosts that bring their own audio and clock
(Blender, TouchDesigner, a game server) instead of running `transflower live`.

    from transflower.realtime.dancer import Dancer

    dancer = Dancer(temperature=0.8, seed=1)          # the shipped model; or Dancer("mine.onnx")
    dancer.stream_vmc("127.0.0.1:39539")              # optional: send every pose to an avatar app, in real time
    for block in my_audio_blocks:                     # any size, any rate, mono or (n, channels)
        for pose in dancer.push_audio(block, 48000):  # 0, 1 or more poses: one per completed frame
            use(pose.root_position, pose.local_rotations)   # cm; (J, 4) quaternions x, y, z, w
    dancer.close()                                    # sends the rest pose, closes the socket

One pose per `1 / dancer.fps` seconds of pushed audio, whatever the block size: the result depends only
on the samples pushed (and the seed), not on how they were cut into blocks. The pose for music time t
comes out once audio up to t + lookahead has been pushed (`dancer.latency_s`). `push_audio` does the
model step for each completed frame (about a millisecond each on a laptop CPU): call it from your own
thread or frame loop, never from inside an audio callback.

Poses are computed as fast as audio is pushed; what `stream_vmc` sends is paced in real time (pose k no
earlier than k / fps after the first), so a file pushed in a loop reaches the avatar at the music's speed,
not as a fast-forward: `push_audio` then waits (sleeps) until each pose is due. `stream_vmc(...,
realtime=False)` sends at once, for offline rendering.

Built only on constructors and step-level methods of the public pieces (OnnxDanceModel, DanceEngine,
StreamResampler, AudioFeatureExtractor, MotionIntegrator, FloorClamp, VmcSender), so the live loop's
internals can change without breaking this API. numpy + onnxruntime only: never torch.
"""
from __future__ import annotations

import time

import numpy as np

from transflower.errors import UserError
from transflower.skeleton import Pose

__all__ = ["Dancer", "Pose"]

# a host that falls this far behind the stream's pace (a stall, a slow machine) is not caught up in a burst:
# the pace starts again from the late pose
MAX_BEHIND_S = 0.25


class Dancer:
    """One dancer. `model`: an exported .onnx (None: the shipped default model); `temperature`: 0 calm
    .. 1 as trained; `seed`: a reproducible dance; `style`: for a style-conditioned model, one of
    `dancer.styles` or weights over them (default "auto": the music decides); `stage_radius`: keep within
    this many cm of the origin; `floor`: lift the body when a sampled pose puts a foot below the floor, and keep the
    dancer from floating off it (the engine grounds each pose before feeding it back); `energy`: dance smaller
    to quieter music and sway through a break, as `live` does (transflower.energy); `time_base`: the dancer's clock
    at the music's tempo over the style's own, as `live --time-base` (transflower.realtime.time_base): True, or a
    `TimeBaseConfig` (e.g. `TimeBaseConfig(count_in_s=0)`: no count-in, the dance starts at once)."""

    def __init__(self, model=None, temperature: float = 1.0, seed: int | None = None, *, style=None, threads: int = 2,
                 provider: str = "auto", stage_radius: float = 150.0, floor: bool = True, energy: bool = True,
                 time_base=False):
        from transflower.realtime.engine import DanceEngine
        from transflower.realtime.onnx_model import OnnxDanceModel
        from transflower.audio_features import AudioFeatureConfig, AudioFeatureExtractor
        from transflower.floor import FloorClamp
        from transflower.motion_features import MotionFeatures, MotionIntegrator
        from transflower.skeleton import Skeleton

        if not stage_radius > 0:
            raise UserError(f"stage_radius {stage_radius}: expected a positive radius in cm")
        self.model = OnnxDanceModel(model, provider=provider, threads=int(threads))
        meta = self.model.meta
        named = isinstance(style, str) and style != "auto" and bool(self.model.styles)
        # a style name: begins on the model's seed clip of that style, under its label and preset
        self.engine = DanceEngine(self.model, temperature=float(temperature), seed=seed, style=style if named else None,
                                  ground=floor, energy=energy, time_base=time_base)
        self.skeleton = Skeleton.from_dict(meta["skeleton"])
        self.integrator = MotionIntegrator(MotionFeatures(self.skeleton))
        self.floor = FloorClamp(self.skeleton) if floor else None
        self.stage_radius = float(stage_radius)
        self.audio_config = AudioFeatureConfig.from_dict(meta["audio_config"])
        self.fps = float(meta["fps"])
        if abs(self.audio_config.fps - self.fps) > 1e-9:
            raise UserError(f"{self.model.path}: audio features at {self.audio_config.fps} rows/s but the model runs at {self.fps} fps")
        self.lookahead = int(meta["lookahead"])
        self.extractor = AudioFeatureExtractor(self.audio_config)
        self.hop = self.extractor.hop
        self._resampler = None
        self._rate = None
        self._fifo = np.zeros(0, np.float32)  # feature-rate samples not yet a whole hop
        self.rows = 0                         # audio frames (hops) completed = model steps taken
        self.sender = None
        self.realtime = True       # stream_vmc paces what it sends
        self._clock, self._sleep = time.monotonic, time.sleep
        self._pace_t0, self._paced = None, 0
        if style is not None and not named:
            self.set_style(style)

    # -- facts a host needs ------------------------------------------------------------------------
    @property
    def joint_names(self) -> list[str]:
        """Joint order of `Pose.local_rotations` (parents before children; see `skeleton.parents`)."""
        return list(self.skeleton.names)

    @property
    def latency_s(self) -> float:
        """Audio in -> pose out: a frame completes after one hop, and the pose trails it by the lookahead."""
        return (1 + self.lookahead) / self.fps

    # -- the stream ----------------------------------------------------------------------------------
    def push_audio(self, block, sample_rate: float) -> list[Pose]:
        """Feed audio; returns the poses of the frames it completed (a list, possibly empty).

        `block`: (n,) mono or (n, channels) samples, float in [-1, 1] or integer PCM. Each Pose holds
        `frame_index` (0, 1, 2, ...: the poses this dancer made since it started or was reset), `time` (the
        music time it dances to, in seconds from the first pushed sample: (frame_index - lookahead) / fps, so
        the first `lookahead` poses, before the music's first frame, are the lead-in), `root_position` (3,) in
        cm and `local_rotations` (J, 4), both copies the caller may keep. While streaming (`stream_vmc`) this
        waits until each pose is due (real time), unless streaming with realtime=False."""
        x = np.asarray(block)
        if x.ndim == 2:
            x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
        if x.ndim != 1:
            raise UserError(f"push_audio: expected (samples,) or (samples, channels) audio, got shape {np.shape(block)}")
        if np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
        x = x.astype(np.float32, copy=False)
        if not np.all(np.isfinite(x)):
            raise UserError("push_audio: the block holds non-finite samples (nan/inf)")
        if not (isinstance(sample_rate, (int, float, np.integer, np.floating)) and 1000 <= float(sample_rate) <= 768000):
            raise UserError(f"push_audio: sample_rate {sample_rate!r}: expected a rate in Hz, 1000..768000")
        if self._rate != float(sample_rate):  # the first block, or the host changed rate
            from transflower.realtime.resampler import StreamResampler

            self._rate = float(sample_rate)
            self._resampler = StreamResampler(self._rate, self.audio_config.sample_rate)
        y = self._resampler.process(x)
        fifo = np.concatenate([self._fifo, y]) if self._fifo.size else y
        poses = []
        n_hops = fifo.shape[0] // self.hop
        for k in range(n_hops):
            row = self.extractor.push_hop(fifo[k * self.hop:(k + 1) * self.hop])
            poses.append(self._step(row))
        self._fifo = fifo[n_hops * self.hop:].copy()
        return poses

    def _step(self, row) -> Pose:
        features = self.engine.step(row)
        root, rots = self.integrator.step(features)
        r = float(np.hypot(root[0], root[2]))
        if r > self.stage_radius:  # keep the dancer on stage: pull the integrator (and this frame) back
            self.integrator.position[0] *= self.stage_radius / r
            self.integrator.position[2] *= self.stage_radius / r
            root[0], root[2] = self.integrator.position[0], self.integrator.position[2]
        if self.floor is not None:
            self.floor.apply(root, rots)
        frame = self.rows
        self.rows += 1
        pose = Pose(frame, (frame - self.lookahead) / self.fps, root.copy(), rots.copy())
        if self.sender is not None:
            if self.realtime:
                self._wait_for_turn()
            self.sender.send((pose,))
        return pose

    def _wait_for_turn(self) -> None:
        """Real-time pacing of the stream: the k-th pose sent goes out k / fps after the first."""
        now = self._clock()
        if self._pace_t0 is None or now - (self._pace_t0 + self._paced / self.fps) > MAX_BEHIND_S:
            self._pace_t0 = now - self._paced / self.fps  # the first pose, or after a stall: pace from now on
        wait = self._pace_t0 + self._paced / self.fps - now
        if wait > 0:
            self._sleep(wait)
        self._paced += 1

    @property
    def styles(self) -> list[str]:
        """The styles a style-conditioned model knows ([] for a model without a style input)."""
        return list(self.model.meta.get("styles") or [])

    def set_style(self, style) -> None:
        """A name from `styles`, or non-negative weights over them (blended); takes effect from the next frame."""
        if not self.styles:
            raise UserError(f"{self.model.path.name}: this model has no style input")
        self.engine.set_style(style, blend_s=0.0)  # the engine blends over 1 s by default

    def reset(self) -> None:
        """Start over (a new song): the warm-started model state, the dancer back at the origin."""
        self.engine.reset()
        if self.engine.time_base is not None:  # a new song: its tempo is read afresh (a style's tempo stays)
            self.engine.time_base.reset()
        self.integrator.reset()
        self.extractor.reset()
        self._resampler, self._rate = None, None
        self._fifo = np.zeros(0, np.float32)
        self.rows = 0
        self._pace_t0, self._paced = None, 0

    # -- streaming to an avatar -----------------------------------------------------------------------
    def stream_vmc(self, *targets: str, realtime: bool = True) -> "Dancer":
        """Also send every pose over OSC in the VMC protocol to each "host:port" (default 127.0.0.1:39539).

        `realtime` (default): send at the dance's pace, one pose per 1 / fps seconds from the first, however
        fast audio is pushed (push_audio waits for each pose's turn), so a receiver sees the music's speed.
        False: send each pose as soon as it is computed (offline rendering into a recorder)."""
        from transflower.bridge.sinks import VmcSink

        if self.sender is not None:
            self.sender.close()
        self.sender = VmcSink([list(targets) or ["127.0.0.1:39539"]], self.skeleton)  # transflower.bridge.sinks
        self.realtime = bool(realtime)
        self._pace_t0, self._paced = None, 0
        return self

    def close(self) -> None:
        """Send the rest pose to the VMC targets (if any) and close the socket."""
        if self.sender is not None:
            try:
                self.sender.send_rest_pose()
            finally:
                self.sender.close()
                self.sender = None

    def __enter__(self) -> "Dancer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
