"""The live dance engine: an exported Transflower step run by onnxruntime, with its ring KV cache.

`OnnxDanceModel` loads and validates an exported file (metadata, input/output signature) and opens an
onnxruntime session on the best provider available (CUDA/TensorRT with onnxruntime-gpu and a GPU,
else CPU), with thread counts set for low latency. `DanceEngine` owns the step's state: the ring cache
(C = context - 1 slots per layer; the new frame's key/value go into slot t mod C), rotary angles
computed on the host in float64 (exact after hours), the noise RNG and temperature, warm start from a
seed clip, and a reset when the output goes non-finite or explodes (counted; the stream continues).

numpy + onnxruntime only: the live path never imports torch.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transflower.errors import UserError

log = logging.getLogger("transflower.engine")
METADATA_KEY = "transflower"
FORMAT_VERSION = 1
REQUIRED_META = ("format_version", "fps", "lookahead", "context", "n_layers", "n_heads", "head_dim", "rope_base",
                 "motion_dim", "audio_dim", "audio_config", "motion_scaler", "skeleton", "seed_motion")
EXPECTED_INPUTS = ["motion", "audio", "rope_cos", "rope_sin", "cache_k", "cache_v", "cache_bias", "noise"]
OPTIONAL_INPUTS = ["style"]  # (B, S) style weights, when the model is style-conditioned (metadata "styles")


def silence_audio_row(audio_config: dict) -> np.ndarray:
    """The audio feature row of digital silence (mel at the floor, no onset, no tempo)."""
    from transflower.audio_features import AudioFeatureConfig, AudioFeatureExtractor

    ex = AudioFeatureExtractor(AudioFeatureConfig.from_dict(audio_config))
    return ex.push_hop(np.zeros(ex.hop, np.float32)).copy()


def default_model_path() -> Path:
    return Path(__file__).resolve().parent.parent / "transflower" / "default_model" / "transflower_live.onnx"


def check_single_runtime() -> None:
    """onnxruntime and onnxruntime-gpu install into the same folder: with both, one is silently broken."""
    from importlib import metadata

    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    if len(found) > 1:
        log.warning("both %s are installed; they overwrite each other's files. Run `pip uninstall -y onnxruntime "
                    "onnxruntime-gpu` and reinstall one: `pip install transflower-live[cpu]` or `[gpu]`", " and ".join(found))


def pick_providers(preference: str = "auto") -> list[str]:
    """CUDA (or TensorRT when asked) if onnxruntime-gpu sees a GPU, else CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if preference == "cpu":
        return ["CPUExecutionProvider"]
    wanted = {"auto": ["CUDAExecutionProvider"], "cuda": ["CUDAExecutionProvider"],
              "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]}.get(preference)
    if wanted is None:
        raise UserError(f"--provider {preference!r}: expected one of auto, cpu, cuda, tensorrt")
    chosen = [p for p in wanted if p in available]
    if preference != "auto" and not chosen:
        raise UserError(f"--provider {preference}: not available in this onnxruntime ({available}); install the "
                        "`gpu` extra (onnxruntime-gpu) on a machine with an NVIDIA GPU")
    return chosen + ["CPUExecutionProvider"]


class OnnxDanceModel:
    def __init__(self, path=None, provider: str = "auto", threads: int = 2, spinning: bool = True):
        import onnxruntime as ort

        self.path = Path(path) if path else default_model_path()
        if not self.path.exists():
            raise UserError(f"{self.path}: model file not found" + ("" if path else
                            " (the default model ships with the package; reinstall, or pass --model FILE.onnx)"))
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        so.log_severity_level = 3
        check_single_runtime()
        providers = pick_providers(provider)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=providers)
        except Exception as e:
            raise UserError(f"{self.path}: not a loadable ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        self.provider = self.session.get_providers()[0]
        self.meta = self._read_metadata()
        self._check_signature()
        log.info("model %s on %s (%d intra-op threads, spinning %s)", self.path.name, self.provider, threads, "on" if spinning else "off")

    def _read_metadata(self) -> dict:
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise UserError(f"{self.path}: an ONNX file without transflower metadata; export one with `transflower export`")
        try:
            meta = json.loads(raw)
        except ValueError:
            raise UserError(f"{self.path}: its transflower metadata is not valid JSON") from None
        missing = [k for k in REQUIRED_META if k not in meta]
        if missing:
            raise UserError(f"{self.path}: transflower metadata lacks {missing}")
        if meta["format_version"] != FORMAT_VERSION:
            raise UserError(f"{self.path}: metadata format {meta['format_version']}, this runtime reads format {FORMAT_VERSION}; re-export it")
        return meta

    def _check_signature(self) -> None:
        m = self.meta
        names = [i.name for i in self.session.get_inputs()]
        if names[: len(EXPECTED_INPUTS)] != EXPECTED_INPUTS or any(n not in OPTIONAL_INPUTS for n in names[len(EXPECTED_INPUTS):]):
            raise UserError(f"{self.path}: graph inputs {names}, expected {EXPECTED_INPUTS} (+ optional {OPTIONAL_INPUTS})")
        self.styles = list(m.get("styles") or [])
        if ("style" in names) != bool(self.styles):
            raise UserError(f"{self.path}: the graph {'has' if 'style' in names else 'lacks'} a style input but the metadata "
                            f"lists styles {self.styles}: the metadata does not match the graph")
        C = m["context"] - 1
        expected = {"motion": [1, m["motion_dim"]], "audio": [1, m["audio_dim"]], "rope_cos": [m["head_dim"] // 2],
                    "cache_k": [m["n_layers"], 1, C, m["n_heads"], m["head_dim"]], "cache_bias": [1, C], "noise": [1, m["motion_dim"]],
                    "style": [1, len(self.styles)]}
        batch_free = lambda shape: [1 if not isinstance(d, int) else d for d in shape]  # noqa: E731 (a named batch axis takes 1)
        for inp in self.session.get_inputs():
            if inp.name in expected and batch_free(inp.shape) != expected[inp.name]:
                raise UserError(f"{self.path}: input {inp.name!r} has shape {inp.shape} but the metadata says {expected[inp.name]}: "
                                "the metadata does not match the graph")
        if len(m["motion_scaler"]["mean"]) != m["motion_dim"] or len(m["seed_motion"][0]) != m["motion_dim"]:
            raise UserError(f"{self.path}: metadata motion_dim {m['motion_dim']} does not match its scaler / seed motion")

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])


@dataclass
class EngineStats:
    steps: int = 0
    resets: int = 0
    resampled: int = 0  # outlier samples redrawn (the flow's rare far-tail draws)
    last_reset_reason: str = ""


class DanceEngine:
    """One dancer: step(audio_row) -> next pose's motion features (unscaled), as a view of a reused buffer."""

    def __init__(self, model: OnnxDanceModel, temperature: float = 1.0, seed: int | None = None,
                 seed_motion: np.ndarray | None = None, explode_threshold: float = 25.0):
        if not (0.0 <= temperature <= 5.0):
            raise UserError(f"temperature {temperature}: expected a value between 0 and 5 (1 = as trained)")
        m = model.meta
        self.model, self.session = model, model.session
        self.temperature = float(temperature)
        self.rng = np.random.default_rng(seed)
        self.n_layers, self.C, self.H, self.hd = m["n_layers"], m["context"] - 1, m["n_heads"], m["head_dim"]
        self.motion_dim, self.audio_dim = m["motion_dim"], m["audio_dim"]
        self.inv_freq = 1.0 / (m["rope_base"] ** (np.arange(0, self.hd, 2, dtype=np.float64) / self.hd))
        self.m_mean = np.asarray(m["motion_scaler"]["mean"], dtype=np.float32)
        self.m_std = np.asarray(m["motion_scaler"]["std"], dtype=np.float32)
        self.explode_threshold = explode_threshold
        self.seed_motion = np.asarray(seed_motion if seed_motion is not None else m["seed_motion"], dtype=np.float32)
        if self.seed_motion.ndim != 2 or self.seed_motion.shape[1] != self.motion_dim:
            raise UserError(f"seed motion: expected (frames, {self.motion_dim}) motion features, got {self.seed_motion.shape}")
        shape = (self.n_layers, 1, self.C, self.H, self.hd)
        self.feeds = {
            "motion": np.zeros((1, self.motion_dim), np.float32), "audio": np.zeros((1, self.audio_dim), np.float32),
            "rope_cos": np.zeros(self.hd // 2, np.float32), "rope_sin": np.zeros(self.hd // 2, np.float32),
            "cache_k": np.zeros(shape, np.float32), "cache_v": np.zeros(shape, np.float32),
            "cache_bias": np.full((1, self.C), -1e9, np.float32), "noise": np.zeros((1, self.motion_dim), np.float32),
        }
        self.silence = silence_audio_row(m["audio_config"])  # what the warm start hears
        if self.silence.shape != (self.audio_dim,):
            raise UserError(f"{model.path}: audio_config gives {self.silence.shape[0]} features, the graph takes {self.audio_dim}")
        self.feeds["audio"][0] = self.silence
        if model.styles:
            self.feeds["style"] = np.zeros((1, len(model.styles)), np.float32)
            self.feeds["style"][0, 0] = 1.0  # "auto": the music decides
        self.pose = np.zeros(self.motion_dim, np.float32)
        self.stats = EngineStats()
        self.frame = 0
        self.reset()

    @property
    def styles(self) -> list[str]:
        return self.model.styles

    def set_style(self, style) -> None:
        """A style name from the model's metadata ("auto" = the music decides) or a weight vector."""
        if not self.styles:
            raise UserError("this model has no style input")
        if isinstance(style, str):
            if style not in self.styles:
                raise UserError(f"style {style!r}: expected one of {self.styles}")
            w = np.zeros(len(self.styles), np.float32)
            w[self.styles.index(style)] = 1.0
        else:
            w = np.asarray(style, np.float32)
            if w.shape != (len(self.styles),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise UserError(f"style weights: expected {len(self.styles)} non-negative numbers over {self.styles}")
            w = w / w.sum()
        self.feeds["style"][0] = w

    # -- state -----------------------------------------------------------------------------------
    def reset(self, reason: str = "") -> None:
        """Back to the warm-started state of the seed motion (audio: silence-level features).

        The first call runs the warm start (context-1 steps, ~0.1-0.2 s) and keeps a copy of the primed
        cache; later resets (a non-finite or exploding pose, mid-show) only copy it back: microseconds,
        so a reset costs no frames."""
        f = self.feeds
        if reason:
            self.stats.resets += 1
            self.stats.last_reset_reason = reason
            log.warning("engine reset: %s (reset #%d); back to the warm-started seed motion", reason, self.stats.resets)
        snap = getattr(self, "_primed", None)
        if snap is not None:
            f["cache_k"][:] = snap["cache_k"]
            f["cache_v"][:] = snap["cache_v"]
            f["cache_bias"][:] = snap["cache_bias"]
            self.frame = snap["frame"]
            self.pose[:] = snap["pose"]
            return
        f["cache_k"].fill(0.0)
        f["cache_v"].fill(0.0)
        f["cache_bias"].fill(-1e9)
        self.frame = 0
        self.warm_start(self.seed_motion)
        self._primed = {k: f[k].copy() for k in ("cache_k", "cache_v", "cache_bias")}
        self._primed.update(frame=self.frame, pose=self.pose.copy())

    def warm_start(self, seed_motion: np.ndarray, audio_rows: np.ndarray | None = None) -> None:
        """Prime the cache with a seed clip (teacher forcing): frame i feeds seed pose i and audio row i."""
        self.feeds["noise"].fill(0.0)
        for i in range(len(seed_motion)):
            audio = audio_rows[i] if audio_rows is not None and i < len(audio_rows) else self.silence
            self._run(seed_motion[i], audio)
        self.pose[:] = seed_motion[-1]

    def _run(self, motion_row, audio_row):
        """One graph run with the noise already in feeds["noise"]; writes the new K/V into the ring."""
        f = self.feeds
        f["motion"][0] = motion_row
        if audio_row is not None:
            f["audio"][0] = audio_row
        ang = self.frame * self.inv_freq  # float64: exact for days of frames
        f["rope_cos"][:] = np.cos(ang)
        f["rope_sin"][:] = np.sin(ang)
        pose, new_k, new_v = self.session.run(None, f)
        slot = self.frame % self.C
        f["cache_k"][:, :, slot] = new_k
        f["cache_v"][:, :, slot] = new_v
        f["cache_bias"][0, slot] = 0.0
        self.frame += 1
        return pose[0]

    # -- the live step ---------------------------------------------------------------------------
    MAX_REDRAWS = 3

    def step(self, audio_row: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """The next pose given this frame's audio features (of frame t + lookahead, unscaled).

        A sample far outside the training distribution (|z| > explode_threshold in some dimension; the
        flow's inverse can amplify a tail draw) is redrawn: the step is rerun with new noise, rewriting
        the same cache slot with the same key/value. If it persists (or the pose is not finite, e.g. from
        bad input), the engine resets to its warm-started state. `noise` (already scaled) replaces the
        engine's own draw, for parity checks (then nothing is redrawn)."""
        self.stats.steps += 1
        reason = ""
        for attempt in range(1 + (self.MAX_REDRAWS if noise is None else 0)):
            if noise is not None:
                self.feeds["noise"][0] = noise
            else:
                self.feeds["noise"][0] = self.rng.standard_normal(self.motion_dim, dtype=np.float32)
                self.feeds["noise"] *= self.temperature
            pose = self._run(self.pose, audio_row)
            if not np.isfinite(pose).all():
                reason = "non-finite pose"
            else:
                z_max = float(np.max(np.abs((pose - self.m_mean) / self.m_std)))
                if z_max <= self.explode_threshold:
                    self.pose[:] = pose
                    return self.pose
                reason = f"exploding pose (|z| = {z_max:.1f} > {self.explode_threshold})"
            if attempt < self.MAX_REDRAWS and noise is None:
                self.frame -= 1  # rerun this frame: same inputs, same cache slot, new noise
                self.stats.resampled += 1
        self.reset(reason + (f" after {self.MAX_REDRAWS} redraws" if noise is None else ""))
        return self.pose
