"""`OnnxDanceModel`: an exported Transflower step file, loaded, checked and opened in onnxruntime.

It reads the file's metadata (`METADATA_KEY`: fps, lookahead, cache shape, scalers, skeleton, seed clips,
styles and their presets), checks the graph's input/output signature against what the engine binds, and
opens a session on the best provider available (CUDA/TensorRT with onnxruntime-gpu and a GPU, else CPU)
with thread counts set for low latency. `default_model_path()` is the model the package ships.

numpy + onnxruntime only: the live path never imports torch.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from transflower.errors import UserError
from transflower.styles import check_presets

log = logging.getLogger("transflower.engine")
METADATA_KEY = "transflower"
FORMAT_VERSION = 1
REQUIRED_META = ("format_version", "fps", "lookahead", "context", "n_layers", "n_heads", "head_dim", "rope_base",
                 "motion_dim", "audio_dim", "audio_config", "motion_scaler", "skeleton", "seed_motion")
EXPECTED_INPUTS = ["motion", "audio", "rope_cos", "rope_sin", "cache_k", "cache_v", "cache_bias", "noise"]
OPTIONAL_INPUTS = ["style"]
OUTPUTS = ["pose", "new_k", "new_v"]
# where each input's batch axis is (rope angles are shared by the whole batch)
BATCH_AXIS = {"motion": 0, "audio": 0, "cache_k": 1, "cache_v": 1, "cache_bias": 0, "noise": 0, "style": 0}


def default_model_path() -> Path:
    import transflower  # the folder the package data ships in, wherever this subpackage's folder lies

    return Path(transflower.__file__).resolve().parent / "default_model" / "transflower_live.onnx"


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
        self.styles = self._read_styles()
        self._check_signature()
        log.info("model %s on %s (%d intra-op threads, spinning %s%s)", self.path.name, self.provider, threads,
                 "on" if spinning else "off", ", batch axis dynamic" if self.batch_dynamic else "")

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

    def _read_styles(self) -> list[str]:
        """Style names: `styles` in the transflower metadata, else a top-level ONNX metadata key `styles` (JSON list)."""
        styles = self.meta.get("styles")
        if styles is None:
            raw = self.session.get_modelmeta().custom_metadata_map.get("styles")
            try:
                styles = json.loads(raw) if raw else None
            except ValueError:
                raise UserError(f"{self.path}: metadata key 'styles' is not a JSON list of names") from None
        if not styles:  # absent, or [] (no style input)
            return []
        if not isinstance(styles, list) or not all(isinstance(n, str) for n in styles):
            raise UserError(f"{self.path}: metadata 'styles' must be a list of names, got {styles!r}")
        return list(styles)

    def _check_signature(self) -> None:
        m = self.meta
        inputs = {i.name: i for i in self.session.get_inputs()}
        names = [i.name for i in self.session.get_inputs()]
        extra = [n for n in names if n not in EXPECTED_INPUTS]
        if [n for n in names if n in EXPECTED_INPUTS] != EXPECTED_INPUTS or any(n not in OPTIONAL_INPUTS for n in extra):
            raise UserError(f"{self.path}: graph inputs {names}, expected {EXPECTED_INPUTS} (+ optional {OPTIONAL_INPUTS})")
        self.has_style = "style" in inputs
        if self.has_style != bool(self.styles):
            raise UserError(f"{self.path}: the graph {'has' if self.has_style else 'lacks'} a style input but the metadata "
                            f"lists styles {self.styles}: the metadata does not match the graph")
        out_names = [o.name for o in self.session.get_outputs()]
        if out_names != OUTPUTS:
            raise UserError(f"{self.path}: graph outputs {out_names}, expected {OUTPUTS}")
        C = m["context"] - 1
        expected = {"motion": [1, m["motion_dim"]], "audio": [1, m["audio_dim"]], "rope_cos": [m["head_dim"] // 2],
                    "cache_k": [m["n_layers"], 1, C, m["n_heads"], m["head_dim"]], "cache_bias": [1, C], "noise": [1, m["motion_dim"]]}
        if self.has_style:
            expected["style"] = [1, len(self.styles)]
        # the batch axis: fixed to 1 on every batched input, or symbolic (dynamic) on every one
        dynamic = {n: not isinstance(inputs[n].shape[a], int) for n, a in BATCH_AXIS.items() if n in inputs}
        if len(set(dynamic.values())) > 1:
            raise UserError(f"{self.path}: the batch axis is dynamic on {sorted(n for n, d in dynamic.items() if d)} but "
                            f"fixed on {sorted(n for n, d in dynamic.items() if not d)}; export it dynamic on all or none")
        self.batch_dynamic = all(dynamic.values())
        for name, want in expected.items():
            got = list(inputs[name].shape)
            if self.batch_dynamic and name in BATCH_AXIS:
                got[BATCH_AXIS[name]] = 1
            if got != want:
                raise UserError(f"{self.path}: input {name!r} has shape {inputs[name].shape} but the metadata says {want}: "
                                "the metadata does not match the graph")
        if len(m["motion_scaler"]["mean"]) != m["motion_dim"] or len(m["seed_motion"][0]) != m["motion_dim"]:
            raise UserError(f"{self.path}: metadata motion_dim {m['motion_dim']} does not match its scaler / seed motion")
        self.style_presets = check_presets(m.get("style_presets"), self.styles, where=f"{self.path}: metadata style_presets")
        self.style_seeds = {}
        for name, clip in (m.get("style_seeds") or {}).items():
            clip = np.asarray(clip, np.float32)
            if name not in self.styles or clip.ndim != 2 or clip.shape[1] != m["motion_dim"] or len(clip) > C:
                raise UserError(f"{self.path}: metadata style_seeds[{name!r}]: expected one of {self.styles} with up to "
                                f"{C} frames of {m['motion_dim']} motion features, got shape {clip.shape}")
            self.style_seeds[name] = clip

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])
