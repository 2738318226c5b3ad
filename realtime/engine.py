"""The live dance engine: an exported Transflower step run by onnxruntime, with its ring KV cache.

`DanceEngine` runs a model (`transflower.realtime.onnx_model.OnnxDanceModel`, or a checkpoint's torch step behind the
same interface, `transflower.models.live_step.TorchDanceModel`) and owns the step's state: the ring cache
(C = context - 1 slots per layer; the new frame's key/value go into slot t mod C), rotary angles
computed on the host in float64 (exact after hours), the noise RNGs and temperatures, warm start from a
seed clip, and a reset when the output goes non-finite or explodes (counted; the stream continues).

A crowd: `DanceEngine(model, dancers=N)` steps N independent dancers (own noise generator, temperature
and style each; the same music) with one batched graph run when the graph's batch axis is dynamic, else
one run per dancer (same results, N times the cost). All dancers share the frame counter, so one set of
rotary angles serves the batch; a dancer reset mid-show gets the primed snapshot re-rotated to the
current frame (RoPE rotations compose), its ring slots rolled to match.

Per dancer (`engine.dancers[i]`, or the engine itself for dancer 0 / all):
  `temperature` (settable any time), `set_style(name_or_weights, blend_s=1.0)` (models with a `style`
  input: float32 (B, S) weights over the names in the metadata's "styles", index 0 "auto" = the music
  decides; moved linearly over blend_s * fps frames), `styles` ([] without a style input), `reset()`.
A style model may carry per-style presets (multipliers of strength and temperature, blended with the
style) and seed clips: `start_style(name)` begins a dance in a style, warm-started on its own seed clip.

The step is allocation-free: inputs and outputs are preallocated and bound once (onnxruntime IO binding),
noise is drawn into its buffer, checks run into scratch arrays.

numpy + onnxruntime only: the live path never imports torch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from transflower.realtime.onnx_model import OnnxDanceModel
from transflower.control_spec import CORRELATION, TEMPERATURE
from transflower.errors import UserError
from transflower.styles import (check_noise_correlation, preset_correlation, preset_of, preset_style,
                                preset_traction)

log = logging.getLogger("transflower.engine")


@dataclass
class EngineStats:
    steps: int = 0
    resets: int = 0
    resampled: int = 0  # outlier samples redrawn (the flow's rare far-tail draws)
    last_reset_reason: str = ""


class _Group:
    """The dancers [lo, hi) that one graph run steps: contiguous views of the engine's batched inputs, its
    own cache (the batch is axis 1 there) and outputs, all bound once to the session."""

    def __init__(self, engine: "DanceEngine", lo: int, hi: int):
        e, b = engine, hi - lo
        self.lo, self.hi = lo, hi
        shape = (e.n_layers, b, e.C, e.H, e.hd)
        self.cache_k, self.cache_v = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        self.new_k, self.new_v = np.zeros((e.n_layers, b, e.H, e.hd), np.float32), np.zeros((e.n_layers, b, e.H, e.hd), np.float32)
        self.feeds = {"motion": e.motion[lo:hi], "audio": e.audio[lo:hi], "rope_cos": e.rope_cos, "rope_sin": e.rope_sin,
                      "cache_k": self.cache_k, "cache_v": self.cache_v, "cache_bias": e.cache_bias[lo:hi], "noise": e.noise[lo:hi]}
        if e.style is not None:
            self.feeds["style"] = e.style[lo:hi]
        self.outputs = {"pose": e.out_pose[lo:hi], "new_k": self.new_k, "new_v": self.new_v}
        self.binding = e.session.io_binding()
        for name, arr in self.feeds.items():
            assert arr.flags.c_contiguous and arr.dtype == np.float32
            self.binding.bind_input(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)
        for name, arr in self.outputs.items():
            self.binding.bind_output(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)


class DancerControls:
    """One dancer of an engine: what a control surface may change while it dances."""

    def __init__(self, engine: "DanceEngine", index: int):
        self.engine, self.index = engine, index

    @property
    def temperature(self) -> float:
        return float(self.engine.temperatures[self.index, 0])

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.engine.set_temperature(value, dancer=self.index)

    @property
    def styles(self) -> list[str]:
        return self.engine.styles

    @property
    def style_weights(self) -> np.ndarray | None:
        return None if self.engine.style is None else self.engine.style[self.index]

    def set_style(self, name_or_weights, blend_s: float = 1.0, strength: float = 1.0) -> None:
        self.engine.set_style(name_or_weights, blend_s, dancer=self.index, strength=strength)

    def reset(self, reason: str = "") -> None:
        self.engine.reset(reason, dancer=self.index)

    @property
    def pose(self) -> np.ndarray:
        return self.engine.poses[self.index]


class DanceEngine:
    """`dancers` dancers: step(audio_row) -> the next poses' motion features (unscaled), a view of a reused
    buffer: (D,) for one dancer, (dancers, D) for a crowd."""

    MAX_REDRAWS = 3

    def __init__(self, model: OnnxDanceModel, temperature=1.0, seed: int | None = None,
                 seed_motion: np.ndarray | None = None, explode_threshold: float = 25.0, dancers: int = 1,
                 style_presets: bool = True, style: str | None = None, style_strength: float = 1.0, ground: bool = True,
                 noise_correlation: float | None = None, energy: bool = True, prime_audio: np.ndarray | None = None,
                 time_base=False):
        """`style`: begin in it, as start_style does (its label and preset from the first frame; the warm start
        under its label, on `seed_motion` if given, else on the model's seed clip of that style), with one
        warm start instead of two. `ground`: each dancer's pose is kept on the floor its warm-start clip stands
        on, its root height corrected before it is returned and fed back (transflower.floor.Grounding).
        `noise_correlation`: each dancer's noise is an AR(1) process over frames with this coefficient
        (`_draw_noise`; None: the model's default, else 0); a style's preset may set its own.
        `energy`: the dance's size follows the music's loudness and a break calms it
        (transflower.energy.MusicEnergy, on the poses `step` returns, `shown_poses`; the model is fed `poses`).
        `prime_audio`: the audio feature row the warm start hears (unscaled); default the training music's mean
        row (live, which has no music before it starts); offline, the song's first row.
        `time_base`: True or a `TimeBaseConfig`: the model runs on a clock at the music's tempo over the asked
        style's tempo (transflower.realtime.time_base; one clock for the whole crowd, on dancer 0's style); each
        `step` then runs 0-2 model steps and returns the pose at the music's time."""
        m = model.meta
        B = int(dancers)
        if B < 1:
            raise UserError(f"dancers {dancers}: expected at least 1")
        self.model, self.session, self.n_dancers = model, model.session, B
        self.fps = model.fps
        self.n_layers, self.C, self.H, self.hd = m["n_layers"], m["context"] - 1, m["n_heads"], m["head_dim"]
        self.motion_dim, self.audio_dim = m["motion_dim"], m["audio_dim"]
        self.inv_freq = 1.0 / (m["rope_base"] ** (np.arange(0, self.hd, 2, dtype=np.float64) / self.hd))
        self.m_mean = np.asarray(m["motion_scaler"]["mean"], dtype=np.float32)
        self.m_std = np.asarray(m["motion_scaler"]["std"], dtype=np.float32)
        self.explode_threshold = explode_threshold
        self.seed_motion = np.asarray(seed_motion if seed_motion is not None else m["seed_motion"], dtype=np.float32)
        if self.seed_motion.ndim != 2 or self.seed_motion.shape[1] != self.motion_dim:
            raise UserError(f"seed motion: expected (frames, {self.motion_dim}) motion features, got {self.seed_motion.shape}")
        self._init_sampling(model, B, seed, temperature, noise_correlation, style_presets)
        D, A, S = self.motion_dim, self.audio_dim, len(self.styles)
        self._init_buffers(B, D, A, S)
        self.ground = None
        if ground:
            from transflower.floor import Grounding
            from transflower.skeleton import Skeleton

            self.ground = Grounding(Skeleton.from_dict(m["skeleton"]), dancers=B)
        self.energy = None
        if energy:
            from transflower.energy import MusicEnergy

            self.energy = MusicEnergy(self.fps, self.m_mean)
            self._level_index = int(m["audio_config"].get("n_mels", 64))  # rms_db follows the mel bands
        self.time_base = None
        self.style_tempos = dict(m.get("style_tempos") or {})
        if time_base:
            from transflower.realtime.time_base import TimeBase, TimeBaseConfig

            self.time_base = TimeBase(self.fps, m["audio_config"], B, D,
                                      time_base if isinstance(time_base, TimeBaseConfig) else None)
            self._timed_poses = np.zeros((B, D), np.float32)
        self._count_in_rngs = None  # the noise generators' states when a count-in began
        self._fade_from = np.zeros((B, D), np.float32)  # the sway's last pose, faded out after it
        self._fade_frames, self._fade_at = 2.0 * self.fps, None  # the fade's length and progress, in model frames
        # the count-in's calm sway with the energy gate off (with it on, the gate itself is held calm)
        self._calm = None
        if self.time_base is not None and self.energy is None and self.time_base.config.count_in_s > 0:
            from transflower.energy import MusicEnergy

            self._calm = MusicEnergy(self.fps, self.m_mean)
        # the poses to show: the dance at the music's energy (energy on) and on the music's clock (time base on),
        # else the poses fed back themselves
        self.shown_poses = np.zeros((B, D), np.float32) if energy or time_base else self.poses
        sizes = [(0, B)] if model.batch_dynamic else [(i, i + 1) for i in range(B)]
        self.groups = [_Group(self, lo, hi) for lo, hi in sizes]
        self.batched = len(self.groups) == 1
        self.feeds = self.groups[0].feeds
        self.dancers = [DancerControls(self, i) for i in range(B)]
        from transflower.audio_features import silence_row

        self.silence = silence_row(m["audio_config"])
        # what the warm start hears: music (the song's first row, or the training music's mean row), so the dancer
        # starts in a dance (primed on silence it started calm, and a dancer keeps its own pace: 0.84x the real
        # speed over 30 s); a silent start is the energy gate's business
        if prime_audio is None:  # an older export without the audio scaler: silence, as before
            prime_audio = (m.get("audio_scaler") or {}).get("mean", self.silence)
        self.prime_row = np.asarray(prime_audio, np.float32)
        if self.prime_row.shape != (self.audio_dim,):
            raise UserError(f"prime_audio: expected {self.audio_dim} audio features, got shape {self.prime_row.shape}")
        if self.silence.shape != (self.audio_dim,):
            raise UserError(f"{model.path}: audio_config gives {self.silence.shape[0]} features, the graph takes {self.audio_dim}")
        self.audio[:] = self.silence
        self.stats = EngineStats()
        self.frame = 0
        if style not in (None, "auto"):  # UserError for an unknown style
            self.start_style(style, style_strength, seed_motion=None if seed_motion is None else self.seed_motion)
        else:
            self.reset()

    def _init_sampling(self, model, B: int, seed, temperature, noise_correlation, style_presets: bool) -> None:
        """Per-dancer noise generators, temperatures, the AR(1) noise state, presets and traction."""
        m = model.meta
        # one noise generator per dancer: dancer i of seed s draws what a lone dancer of seed s + i draws
        self.rngs = [np.random.default_rng(None if seed is None else seed + i) for i in range(B)]
        self.temperatures = np.ones((B, 1), np.float32)
        # the style preset's temperature multiplier (1 without one) and the noise scale = temperature x it
        self.temp_scale, self._noise_scale = np.ones((B, 1), np.float32), np.ones((B, 1), np.float32)
        self._temp_target, self._temp_step = np.ones((B, 1), np.float32), np.zeros((B, 1), np.float32)
        self.presets = dict(getattr(model, "style_presets", {}) or {}) if style_presets else {}
        self.style_seeds = dict(getattr(model, "style_seeds", {}) or {})
        for i, t in enumerate(np.broadcast_to(np.asarray(temperature, np.float64), (B,))):
            self.set_temperature(float(t), dancer=i)
        self.styles = list(model.styles) if model.has_style else []
        D = self.motion_dim
        # the AR(1) noise: z = rho z_last + sqrt(1 - rho^2) e, per dancer; rho blends with a style's preset
        self.base_correlation = check_noise_correlation(
            m.get(CORRELATION.model_key, CORRELATION.default) if noise_correlation is None else noise_correlation)
        self.correlation = np.full((B, 1), self.base_correlation, np.float32)
        self._corr_keep = np.sqrt(1.0 - self.correlation ** 2).astype(np.float32)
        self._corr_target, self._corr_step = self.correlation.copy(), np.zeros((B, 1), np.float32)
        # what the styles' presets ask for (base without one), and a performer's override of it (None: none)
        self._corr_preset = self.correlation.copy()
        self.correlation_override: float | None = None
        self._corr_left = np.zeros(B, np.int64)  # frames left in each dancer's correlation blend
        self._corr_active, self._corr_landed = np.zeros((B, 1), bool), np.zeros((B, 1), bool)
        self._corr_blending = 0
        self._z_state, self._z_new, self._z_scratch = (np.zeros((B, D), np.float32) for _ in range(3))
        self._fresh = np.ones(B, bool)  # a (re)started dancer: its next draw is e alone, no state yet
        self._fresh_now = np.ones(B, bool)
        # traction (transflower.floor.Grounding), per dancer: a style's preset's, blended with the style
        self.traction = np.zeros((B, 1), np.float64)
        self._trac_target, self._trac_step = self.traction.copy(), np.zeros((B, 1), np.float64)

    def _init_buffers(self, B: int, D: int, A: int, S: int) -> None:
        """The batched inputs (row i = dancer i) and outputs, bound once; scratch for the checks; style weights."""
        self.motion, self.audio, self.noise = np.zeros((B, D), np.float32), np.zeros((B, A), np.float32), np.zeros((B, D), np.float32)
        self.cache_bias = np.full((B, self.C), -1e9, np.float32)
        self.rope_cos, self.rope_sin = np.zeros(self.hd // 2, np.float32), np.zeros(self.hd // 2, np.float32)
        self._angle = np.zeros(self.hd // 2, np.float64)
        self._trig = np.zeros(self.hd // 2, np.float64)
        self.out_pose = np.zeros((B, D), np.float32)
        self.poses = np.zeros((B, D), np.float32)
        self.pose = self.poses[0]
        self._z = np.zeros((B, D), np.float32)
        self._z_max = np.zeros(B, np.float32)
        self._good = np.zeros(B, bool)
        self._accepted = np.zeros(B, bool)
        self.style = None
        if S:
            self.style = np.zeros((B, S), np.float32)
            self.style[:, 0] = 1.0  # "auto": the music decides
            self._style_target = self.style.copy()
            self._style_step = np.zeros((B, S), np.float32)
            self._style_left = np.zeros(B, np.int64)
            self._style_active, self._style_landed = np.zeros((B, 1), bool), np.zeros((B, 1), bool)
        self._blending = 0

    # -- controls --------------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """Dancer 0's temperature; setting it sets every dancer's."""
        return float(self.temperatures[0, 0])

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.set_temperature(value)

    def set_temperature(self, value: float, dancer: int | None = None) -> None:
        value = TEMPERATURE.check(value)
        self.temperatures[slice(None) if dancer is None else dancer] = value
        np.multiply(self.temperatures, self.temp_scale, out=self._noise_scale)

    def set_style(self, name_or_weights, blend_s: float = 1.0, dancer: int | None = None, strength: float = 1.0) -> None:
        """Move a dancer's (default: every dancer's) style weights linearly to a style name or a weight
        vector over blend_s * fps frames (0: at the next step). For a name, `strength` (0..4) is how much of
        the weight goes to it rather than to "auto" (transflower.styles: 1 = as trained, > 1 exaggerates),
        times the style's preset (which also scales the temperature, blended alike); capped at 4."""
        if not self.styles:
            raise UserError(f"{self.model.path.name}: this model has no style input")
        S = len(self.styles)
        if isinstance(name_or_weights, str):
            if name_or_weights not in self.styles:
                raise UserError(f"style {name_or_weights!r}: unknown; expected one of {self.styles}")
            target, p_temp = preset_style(name_or_weights, self.styles, strength, self.presets)
            p_corr = preset_correlation(self.presets, name_or_weights, self.base_correlation)
            p_trac = preset_traction(self.presets, name_or_weights)
            if target is None:  # "auto"
                target = np.zeros(S, np.float32)
                target[0] = 1.0
        else:
            target = np.asarray(name_or_weights, np.float64).reshape(-1)
            if target.shape != (S,) or not np.isfinite(target).all() or (target < 0).any() or target.sum() <= 0:
                raise UserError(f"style weights {list(np.round(target, 3))}: expected {S} non-negative weights over {self.styles}")
            target = (target / target.sum()).astype(np.float32)
            # a blend of styles samples at the blend of their temperature presets (strength: the weights say it)
            p_temp = float(sum(w * preset_of(self.presets, name)[1] for w, name in zip(target, self.styles)))
            p_corr = float(sum(w * preset_correlation(self.presets, name, self.base_correlation)
                               for w, name in zip(target, self.styles)))
            p_trac = float(sum(w * preset_traction(self.presets, name) for w, name in zip(target, self.styles)))
        if not (np.isfinite(blend_s) and blend_s >= 0):
            raise UserError(f"blend_s {blend_s}: expected seconds >= 0")
        frames = max(1, int(round(float(blend_s) * self.fps)))
        rows = range(self.n_dancers) if dancer is None else [dancer]
        for i in rows:
            self._style_target[i] = target
            self._style_step[i] = (target - self.style[i]) / frames
            self._style_left[i] = frames
            self._temp_target[i] = p_temp
            self._temp_step[i] = (p_temp - self.temp_scale[i]) / frames
            self._corr_preset[i] = p_corr
            self._blend_correlation(i, p_corr if self.correlation_override is None else self.correlation_override, frames)
            self._trac_target[i] = p_trac
            self._trac_step[i] = (p_trac - self.traction[i]) / frames
        self._blending = int(np.count_nonzero(self._style_left))
        if self.time_base is not None and dancer in (None, 0):  # the crowd's clock follows dancer 0's style
            name = name_or_weights if isinstance(name_or_weights, str) else None
            self.time_base.set_reference(self.style_tempos.get(name) if name else None)

    def set_noise_correlation(self, value: float | None, blend_s: float = 1.0) -> None:
        """A performer's noise correlation for every dancer, blended over blend_s * fps frames; it holds
        across later style switches (a style's preset no longer sets it). None: back to what the styles'
        presets (else the model's default) ask for."""
        self.correlation_override = None if value is None else check_noise_correlation(value, "noise correlation")
        if not (np.isfinite(blend_s) and blend_s >= 0):
            raise UserError(f"blend_s {blend_s}: expected seconds >= 0")
        frames = max(1, int(round(float(blend_s) * self.fps)))
        for i in range(self.n_dancers):
            self._blend_correlation(i, self._corr_preset[i, 0] if value is None else self.correlation_override, frames)

    def _blend_correlation(self, i: int, target: float, frames: int) -> None:
        self._corr_target[i] = target
        self._corr_step[i] = (target - self.correlation[i]) / frames
        self._corr_left[i] = frames
        self._corr_blending = int(np.count_nonzero(self._corr_left))

    def _advance_correlation(self) -> None:
        active, landed = self._corr_active, self._corr_landed  # (B, 1) scratch: no allocation per frame
        np.greater(self._corr_left[:, None], 0, out=active)
        np.add(self.correlation, self._corr_step, out=self.correlation, where=active)
        np.subtract(self._corr_left, active[:, 0], out=self._corr_left)
        np.equal(self._corr_left[:, None], 0, out=landed)
        np.logical_and(landed, active, out=landed)
        np.copyto(self.correlation, self._corr_target, where=landed)  # land exactly
        np.multiply(self.correlation, self.correlation, out=self._corr_keep)
        np.subtract(1.0, self._corr_keep, out=self._corr_keep)
        np.sqrt(self._corr_keep, out=self._corr_keep)
        self._corr_blending = int(np.count_nonzero(self._corr_left))

    def start_style(self, name: str, strength: float = 1.0, seed_motion: np.ndarray | None = None) -> None:
        """A fresh start in a style (every dancer): its weights at once, and a warm start under its label on
        `seed_motion` if given, else on the model's seed clip of that style, else on the engine's seed clip.
        That warm start becomes the reset state. (torch generation warms up under the label too.)"""
        self.set_style(name, blend_s=0.0, strength=strength)
        self._advance_styles()  # land now: the warm start runs under the style's label
        self._advance_correlation()
        if seed_motion is None:
            seed_motion = self.style_seeds.get(name, self.seed_motion)
        self.warm_start(seed_motion)

    def _advance_styles(self) -> None:
        active, landed = self._style_active, self._style_landed  # (B, 1) scratch: no allocation per frame
        np.greater(self._style_left[:, None], 0, out=active)
        np.add(self.style, self._style_step, out=self.style, where=active)
        np.add(self.temp_scale, self._temp_step, out=self.temp_scale, where=active)
        np.subtract(self._style_left, active[:, 0], out=self._style_left)
        np.equal(self._style_left[:, None], 0, out=landed)
        np.copyto(self.style, self._style_target, where=landed)  # land exactly
        np.copyto(self.temp_scale, self._temp_target, where=landed)
        np.multiply(self.temperatures, self.temp_scale, out=self._noise_scale)
        np.add(self.traction, self._trac_step, out=self.traction, where=active)
        np.copyto(self.traction, self._trac_target, where=landed)
        np.clip(self.traction, 0.0, 1.0, out=self.traction)
        if self.ground is not None:
            self.ground.traction[:] = self.traction[:, 0]
        self._blending = int(np.count_nonzero(self._style_left))

    # -- state -----------------------------------------------------------------------------------
    def reset(self, reason: str = "", dancer: int | None = None) -> None:
        """Back to the warm-started state of the seed motion (audio: silence-level features).

        The first call runs the warm start (context-1 steps, ~0.1-0.2 s) and keeps a copy of the primed
        cache; later resets (a non-finite or exploding pose, mid-show) only copy it back: microseconds,
        so a reset costs no frames. `dancer`: reset that one only (the others dance on)."""
        if reason:
            self._count_reset(reason, dancer)
        if getattr(self, "_primed", None) is None:
            self._prime()
        if dancer is None or self.n_dancers == 1:
            self.frame = self._primed["frame"]
            for i in range(self.n_dancers):
                self._restore(i, shift=0)
        else:
            self._restore(dancer, shift=self.frame - self._primed["frame"])

    def _count_reset(self, reason: str, dancer: int | None) -> None:
        self.stats.resets += 1
        self.stats.last_reset_reason = reason
        who = "" if dancer is None or self.n_dancers == 1 else f"dancer {dancer}: "
        log.warning("engine reset: %s%s (reset #%d); back to the warm-started seed motion", who, reason, self.stats.resets)

    def _restore(self, i: int, shift: int) -> None:
        """Dancer i's cache := the primed snapshot moved `shift` frames later (keys re-rotated by RoPE,
        ring slots rolled), so it fits the shared frame counter."""
        g, j = self._group_of(i)
        p = self._primed
        if shift == 0:
            g.cache_k[:, j] = p["cache_k"]
            g.cache_v[:, j] = p["cache_v"]
            self.cache_bias[i] = p["cache_bias"]
        else:
            roll = shift % self.C
            k = np.roll(p["cache_k"], roll, axis=1).astype(np.float64)
            ang = shift * self.inv_freq
            cos, sin, h = np.cos(ang), np.sin(ang), self.hd // 2
            g.cache_k[:, j, ..., :h] = k[..., :h] * cos - k[..., h:] * sin
            g.cache_k[:, j, ..., h:] = k[..., :h] * sin + k[..., h:] * cos
            g.cache_v[:, j] = np.roll(p["cache_v"], roll, axis=1)
            self.cache_bias[i] = np.roll(p["cache_bias"], roll)
        self.poses[i] = p["pose"]
        self._fresh[i] = True
        if self.ground is not None:
            self.ground.set_state(i, *p["ground"])

    def _group_of(self, i: int):
        g = self.groups[0] if self.batched else self.groups[i]
        return g, i - g.lo

    def _prime(self) -> None:
        """Warm start one dancer on the seed clip (teacher forcing, silence) with plain runs; keep the snapshot."""
        C, D = self.C, self.motion_dim
        shape = (self.n_layers, 1, C, self.H, self.hd)
        f = {"motion": np.zeros((1, D), np.float32), "audio": self.prime_row[None].astype(np.float32),
             "rope_cos": self.rope_cos, "rope_sin": self.rope_sin, "cache_k": np.zeros(shape, np.float32),
             "cache_v": np.zeros(shape, np.float32), "cache_bias": np.full((1, C), -1e9, np.float32),
             "noise": np.zeros((1, D), np.float32)}
        if self.style is not None:  # dancer 0's current style (auto unless start_style chose one)
            f["style"] = self.style[:1].copy()
        for frame, row in enumerate(self.seed_motion):
            f["motion"][0] = row
            self._set_rope(frame)
            _, new_k, new_v = self.session.run(None, f)
            slot = frame % C
            f["cache_k"][:, :, slot] = new_k
            f["cache_v"][:, :, slot] = new_v
            f["cache_bias"][0, slot] = 0.0
        self._primed = {"cache_k": f["cache_k"][:, 0].copy(), "cache_v": f["cache_v"][:, 0].copy(),
                        "cache_bias": f["cache_bias"][0].copy(), "frame": len(self.seed_motion),
                        "pose": self.seed_motion[-1].copy(),
                        "ground": self.ground.seed_state(self.seed_motion) if self.ground is not None else None}

    def warm_start(self, seed_motion: np.ndarray) -> None:
        """Prime every dancer with another seed clip (teacher forcing, silence) and make it the reset state."""
        self.seed_motion = np.asarray(seed_motion, np.float32)
        self._primed = None
        self.reset()

    def _set_rope(self, frame: int) -> None:
        np.multiply(self.inv_freq, frame, out=self._angle)  # float64: exact for days of frames
        np.cos(self._angle, out=self._trig)
        self.rope_cos[:] = self._trig
        np.sin(self._angle, out=self._trig)
        self.rope_sin[:] = self._trig

    def _run(self) -> None:
        for g in self.groups:
            self.session.run_with_iobinding(g.binding)

    def _draw_noise(self, only=None) -> None:
        """Each dancer's noise (or those not `only`, a redraw): z = rho z_last + sqrt(1 - rho^2) e, times
        the temperature (z = e on a dancer's first frame). With rho = 0 it is e, from the same stream as ever."""
        if only is None:  # a new frame: the last frame's draws are the state
            np.copyto(self._z_state, self._z_new)
            self._fresh_now[:] = self._fresh  # a redraw in this frame draws as the first draw did
            self._fresh[:] = False
        for i, rng in enumerate(self.rngs):
            if only is not None and only[i]:
                continue
            z = self._z_new[i]
            rng.standard_normal(dtype=np.float32, out=z)
            rho = self.correlation[i, 0]
            if rho > 0.0 and not self._fresh_now[i]:  # after a (re)start the first draw is e itself
                np.multiply(z, self._corr_keep[i, 0], out=z)
                np.multiply(self._z_state[i], rho, out=self._z_scratch[i])
                np.add(z, self._z_scratch[i], out=z)
        np.multiply(self._z_new, self._noise_scale, out=self.noise)

    def _check(self) -> bool:
        """_good[i]: dancer i's sample is finite and within explode_threshold standard deviations."""
        z = self._z
        np.subtract(self.out_pose, self.m_mean, out=z)
        np.divide(z, self.m_std, out=z)
        np.abs(z, out=z)
        np.max(z, axis=1, out=self._z_max)
        np.less_equal(self._z_max, self.explode_threshold, out=self._good)  # NaN compares False
        return bool(self._good.all())

    # -- the live step ---------------------------------------------------------------------------
    def step(self, audio_row: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """The next poses given this frame's audio features (of frame t + lookahead, unscaled; the same row
        for every dancer).

        A sample far outside the training distribution (|z| > explode_threshold in some dimension; the
        flow's inverse can amplify a tail draw) is redrawn: the graph is rerun with new noise for that
        dancer (keys/values do not depend on the noise; the ring is written once, after the last draw).
        If it persists (or the pose is not finite, e.g. from bad input), that dancer resets to its
        warm-started state. `noise` (already scaled; (D,) or (dancers, D)) replaces the engine's own
        draw, for parity checks (then nothing is redrawn). With a time base, one output frame may run 0-2
        model steps (`_model_step`) and shows the pose between the newest two at the music's time."""
        if self.time_base is None:
            self._model_step(audio_row, noise)
            return self._show(self.poses, audio_row)
        tb = self.time_base
        due = tb.due(audio_row)
        if tb.counting_in:  # the dancer listens: a dance on the model's own clock, shown as a calm sway
            if self._count_in_rngs is None:  # the count-in began: the dance proper will start with this noise
                self._count_in_rngs = [r.bit_generator.state for r in self.rngs]
            self._model_step(tb.row, noise)
            return self._show(self.poses, audio_row, calm=True)
        if tb.started_now:  # on the count: the dance starts from the warm start, with the noise it had then
            self._fade_from[:] = self.shown_poses  # ... faded in from the sway last shown (the two poses differ)
            self._fade_at = 0.0
            self.reset()
            if self._count_in_rngs is not None:
                for r, state in zip(self.rngs, self._count_in_rngs):
                    r.bit_generator.state = state
            self._count_in_rngs = None
        for _ in range(due):
            self._model_step(tb.row, noise)
            tb.clock.push(self.poses)
        shown = self._show(tb.clock.output(self._timed_poses), audio_row)
        if self._fade_at is not None:
            self._fade_in(tb.clock.rate)
        return shown

    def _fade_in(self, rate: float) -> None:
        """The first two seconds of model time after a count-in: the pose shown grows from the last sway pose
        into the dance's, eased. On the model's clock, so that the dance at another tempo is the same dance
        from its first frame (the root's travel and turn are the dance's own: per-frame motion, not a pose)."""
        self._fade_at += rate
        x = min(self._fade_at / self._fade_frames, 1.0)
        if x >= 1.0:
            self._fade_at = None
            return
        w = np.float32(x * x * (3.0 - 2.0 * x))  # smoothstep: no kink at either end
        rot = self.shown_poses[:, 3:]
        rot -= self._fade_from[:, 3:]
        rot *= w
        rot += self._fade_from[:, 3:]

    def _show(self, poses: np.ndarray, audio_row: np.ndarray, calm: bool = False) -> np.ndarray:
        """The output frame: `poses` at the music's energy (energy on), else as they are; `calm`: at the energy
        gate's break size whatever the music (the time base's count-in; the size comes back after it)."""
        if self.energy is not None:
            self.energy.update(audio_row[self._level_index], calm=calm)
            self.energy.apply(poses, self.shown_poses)
        elif poses is not self.shown_poses:
            self.shown_poses[:] = poses
        if self._calm is not None and (calm or self._calm.gain < 0.999):  # energy off: the count-in's calm alone
            self._calm.update(0.0, calm=calm)
            self._calm.apply(self.shown_poses, self.shown_poses)
        return self.shown_poses[0] if self.n_dancers == 1 else self.shown_poses

    def _model_step(self, audio_row: np.ndarray, noise: np.ndarray | None = None) -> None:
        """One model frame: the graph run, checks, redraws or reset, grounding, the ring cache written."""
        self.stats.steps += 1
        self.audio[:] = audio_row
        if self._blending:
            self._advance_styles()
        if self._corr_blending:
            self._advance_correlation()
        if noise is None:
            self._draw_noise()
        else:
            self.noise[:] = noise
        self.motion[:] = self.poses
        self._set_rope(self.frame)
        self._run()
        if self._check():
            self.poses[:] = self.out_pose
        else:
            self._redraw_or_reset(allow_redraw=noise is None)
        if self.ground is not None:
            self.ground.apply(self.poses)
        slot = self.frame % self.C
        for g in self.groups:
            g.cache_k[:, :, slot] = g.new_k
            g.cache_v[:, :, slot] = g.new_v
        self.cache_bias[:, slot] = 0.0
        self.frame += 1

    def _redraw_or_reset(self, allow_redraw: bool) -> None:
        accepted = self._accepted
        accepted[:] = self._good
        np.copyto(self.poses, self.out_pose, where=accepted[:, None])
        for _ in range(self.MAX_REDRAWS if allow_redraw else 0):
            self.stats.resampled += int(self.n_dancers - np.count_nonzero(accepted))
            self._draw_noise(only=accepted)
            self._run()
            self._check()
            np.copyto(self.poses, self.out_pose, where=(self._good & ~accepted)[:, None])
            accepted |= self._good
            if accepted.all():
                return
        for i in np.flatnonzero(~accepted):
            row = self.out_pose[i]
            reason = ("non-finite pose" if not np.isfinite(row).all()
                      else f"exploding pose (|z| = {self._z_max[i]:.1f} > {self.explode_threshold})")
            self._count_reset(reason + (f" after {self.MAX_REDRAWS} redraws" if allow_redraw else ""), int(i))
            # primed as of the frame after this one; its newest slot is the one this step writes
            self._restore(int(i), shift=self.frame + 1 - self._primed["frame"])
            g, j = self._group_of(int(i))
            slot = self.frame % self.C
            g.new_k[:, j] = g.cache_k[:, j, slot]
            g.new_v[:, j] = g.cache_v[:, j, slot]
