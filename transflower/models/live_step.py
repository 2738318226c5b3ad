"""The live model's step in torch, as the live engine runs it, and a checkpoint behind the engine's model interface.

`build_step_module` is the one step the ONNX export traces (scalers folded, the flow's inverse weights
precomputed): unscaled motion / audio rows and the ring cache in, the next pose and the frame's keys and
values out. `TorchDanceModel` puts a checkpoint behind the interface `transflower.realtime.engine.DanceEngine` takes
(`meta`, `session`, `styles`, ...), so a checkpoint is sampled by the same sampler as its export: one
temperature, preset, noise, style-blend, redraw, grounding and energy code path for `generate`, the
benchmarks and live.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from transflower.errors import UserError

INPUT_NAMES = ["motion", "audio", "rope_cos", "rope_sin", "cache_k", "cache_v", "cache_bias", "noise"]
OUTPUT_NAMES = ["pose", "new_k", "new_v"]
# which axis of each input/output is the batch (None: shared by all dancers)
BATCH_AXIS = {"motion": 0, "audio": 0, "rope_cos": None, "rope_sin": None, "cache_k": 1, "cache_v": 1, "cache_bias": 0,
              "noise": 0, "style": 0, "pose": 0, "new_k": 1, "new_v": 1}


def input_names(cfg) -> list[str]:
    return INPUT_NAMES + (["style"] if cfg.styles else [])


def build_step_module(model, motion_scaler, audio_scaler):
    """An nn.Module computing one live step, with scalers folded and flow inverses precomputed."""
    import torch
    import torch.nn as nn

    class FlowInverse(nn.Module):
        def __init__(self, flow):
            super().__init__()
            self.flow = flow
            w_inv = [torch.linalg.inv(s.mix.weight().double()).float() for s in flow.steps]
            for i, w in enumerate(w_inv):
                self.register_buffer(f"w_inv_{i}", w.T.contiguous())

        def forward(self, z, cond):
            for i in reversed(range(len(self.flow.steps))):
                step = self.flow.steps[i]
                z = step.coupling.inverse(z, cond)
                z = z @ getattr(self, f"w_inv_{i}")
                z = z * torch.exp(-step.norm.log_scale) - step.norm.bias
            return z

    class LiveStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = model.backbone
            self.flow_inverse = FlowInverse(model.flow)
            f = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
            self.register_buffer("m_mean", f(motion_scaler.mean))
            self.register_buffer("m_std", f(motion_scaler.std))
            self.register_buffer("a_mean", f(audio_scaler.mean))
            self.register_buffer("a_std", f(audio_scaler.std))

        def forward(self, motion, audio, rope_cos, rope_sin, cache_k, cache_v, cache_bias, noise, style=None):
            m = (motion - self.m_mean) / self.m_std
            a = (audio - self.a_mean) / self.a_std
            h, new_k, new_v = self.backbone.step(m, a, rope_cos, rope_sin, cache_k, cache_v, cache_bias, style)
            x = model.residual_mask * m + self.flow_inverse(noise, h)  # residual: a change
            pose = x * self.m_std + self.m_mean
            return pose, new_k, new_v

    return LiveStep().eval()



def model_metadata(ckpt_path, model, cfg: dict, feats: dict, seed_clip=None, style_presets=None,
                   default_temperature: float | None = None, default_noise_correlation: float | None = None) -> dict:
    """What the engine reads about a model (the ONNX metadata's content, less the exporter's stamp).
    style_presets: a YAML path or a mapping (default: the checkpoint's own); default_noise_correlation: default
    the checkpoint's own; default_temperature: stored only when given."""
    from transflower.checkpoint import load_seed_clip, load_style_seeds
    from transflower.control_spec import TEMPERATURE
    from transflower.styles import check_noise_correlation, check_presets, load_presets

    mc = model.cfg
    if mc.styles and len(feats.get("styles") or []) != mc.styles:
        raise UserError(f"{ckpt_path}: the model takes {mc.styles} style weights but its features.json lists styles "
                        f"{feats.get('styles')}; pass the features.json it was trained on (--features)")
    seed = load_seed_clip(feats, seed_clip, mc.context, ckpt_path)
    style_names = list(feats.get("styles") or [])[: mc.styles] if mc.styles else []
    style_seeds = load_style_seeds(feats, mc.context, ckpt_path) if style_names else {}
    if style_presets and not style_names:
        raise UserError(f"{ckpt_path}: style presets given, but the model has no style input")
    if isinstance(style_presets, (str, Path)):
        style_presets = load_presets(style_presets, style_names)
    presets = check_presets(feats.get("style_presets") if style_presets is None else style_presets, style_names,
                            where=f"{ckpt_path}: style_presets" if style_presets is None else "--style-presets")
    rho = default_noise_correlation if default_noise_correlation is not None else (cfg.get("_features") or {}).get(
        "default_noise_correlation")
    rho = None if rho is None else check_noise_correlation(rho, "--default-noise-correlation")
    return {
        "fps": feats["fps"], "lookahead": mc.lookahead, "context": mc.context, "n_layers": mc.n_layers,
        "n_heads": mc.n_heads, "head_dim": mc.head_dim, "rope_base": mc.rope_base,
        "motion_dim": mc.motion_dim, "audio_dim": mc.audio_dim,
        "audio_config": feats["audio_config"], "motion_names": feats["motion_names"], "audio_names": feats.get("audio_names"),
        "motion_scaler": feats["motion_scaler"], "audio_scaler": feats["audio_scaler"],
        "skeleton": feats["skeleton"], "model_config": mc.to_dict(), "seed_motion": seed,
        "styles": style_names, "style_seeds": style_seeds, "style_presets": presets,
        "style_tempos": {k: float(v) for k, v in (feats.get("style_tempos") or {}).items() if k in style_names},
        **({"default_temperature": TEMPERATURE.check(default_temperature, "--default-temperature")}
           if default_temperature is not None else {}),
        **({"default_noise_correlation": rho} if rho is not None else {}),
    }


def _array_at(ptr: int, shape) -> np.ndarray:
    """The float32 array an onnxruntime-style binding names by its address (a view, no copy)."""
    n = int(np.prod(shape))
    return np.frombuffer((ctypes.c_float * n).from_address(ptr), np.float32).reshape(shape)


class _Binding:
    def __init__(self):
        self.inputs, self.outputs = {}, {}

    def bind_input(self, name, device, device_id, dtype, shape, ptr):
        self.inputs[name] = _array_at(ptr, shape)

    def bind_output(self, name, device, device_id, dtype, shape, ptr):
        self.outputs[name] = _array_at(ptr, shape)


class TorchStepSession:
    """The step module behind the two calls the engine makes of an onnxruntime session: `run(None, feeds)`
    and `run_with_iobinding(binding)` (inputs read from, outputs written into the bound arrays)."""

    def __init__(self, step, names: list[str]):
        import torch

        self.step, self.names, self.torch = step, names, torch

    def _forward(self, feeds: dict):
        t = self.torch.from_numpy
        with self.torch.no_grad():
            return [o.numpy() for o in self.step(*(t(np.ascontiguousarray(feeds[n])) for n in self.names))]

    def run(self, output_names, feeds: dict) -> list[np.ndarray]:
        return self._forward(feeds)

    def io_binding(self) -> _Binding:
        return _Binding()

    def run_with_iobinding(self, binding: _Binding) -> None:
        for name, value in zip(OUTPUT_NAMES, self._forward(binding.inputs)):
            binding.outputs[name][...] = value


class TorchDanceModel:
    """A `transflower train` checkpoint (or shipped .pt) as the live engine's model: `meta` as its export would
    carry it (the checkpoint's features.json: scalers, skeleton, seed clips, presets, defaults), `session` the
    step in torch. transflower.realtime.engine.DanceEngine samples it exactly as it samples the .onnx."""

    provider = "torch"
    batch_dynamic = True

    def __init__(self, path, features_json=None, threads: int | None = None):
        import torch

        from transflower.checkpoint import find_features_meta, load_checkpoint
        from transflower.features import StandardScaler

        self.path = Path(path)
        model, cfg = load_checkpoint(self.path)
        if cfg["model"] != "transflower_live":
            raise UserError(f"{path}: generation runs the causal transflower_live model; got {cfg['model']!r}")
        if threads:
            torch.set_num_threads(int(threads))
        feats = find_features_meta(self.path, cfg, features_json)
        self.meta = model_metadata(self.path, model, cfg, feats, default_temperature=feats.get("default_temperature"))
        step = build_step_module(model, StandardScaler.from_dict(feats["motion_scaler"]), StandardScaler.from_dict(feats["audio_scaler"]))
        self.session = TorchStepSession(step, input_names(model.cfg))
        self.styles = list(self.meta["styles"])
        self.has_style = bool(self.styles)
        self.style_presets = self.meta["style_presets"]
        self.style_seeds = {k: np.asarray(v, np.float32) for k, v in (self.meta["style_seeds"] or {}).items()}
        self.torch_model = model

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])
