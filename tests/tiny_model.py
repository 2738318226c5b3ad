"""A tiny, randomly initialised Transflower checkpoint and its ONNX export, for fast tests.

It has the real skeleton and feature layout (46 motion dims, 68 audio dims), so every part of the
live path runs on it exactly as on the shipped model, just without having been trained.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def make_tiny_checkpoint(tmp_path: Path, context: int = 12, lookahead: int = 1, seed: int = 0, **model_config):
    import torch

    from transflower.audio_features import AudioFeatureConfig
    from transflower.models import build_model
    from transflower.motion_features import MotionFeatures
    from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton

    rng = np.random.default_rng(seed)
    offsets = np.zeros((len(JOINT_NAMES), 3))
    offsets[1:] = rng.normal(size=(len(JOINT_NAMES) - 1, 3)) * 5 + np.array([0, 10, 0])
    skel = Skeleton(JOINT_NAMES, PARENTS, offsets)
    mf = MotionFeatures(skel)
    motion_dim, ac = mf.dim, AudioFeatureConfig()
    cfg = {"model": "transflower_live",
           "model_config": dict(motion_dim=motion_dim, audio_dim=ac.dim, d_model=32, n_heads=4, motion_layers=1,
                                audio_layers=1, cross_layers=1, context=context, lookahead=lookahead, dropout=0.0,
                                flow_steps=2, flow_hidden=16, **model_config)}
    torch.manual_seed(seed)
    model = build_model(cfg["model"], cfg["model_config"])
    for s in model.flow.steps:
        s.norm.initialized.fill_(True)
    with torch.no_grad():
        for p in model.flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = Path(tmp_path) / "tiny.ckpt"
    torch.save({"hyper_parameters": {"cfg": cfg}, "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, path)
    m_mean = np.zeros(motion_dim)
    m_mean[3] = 95.0  # hips height, cm
    feats = {"fps": 20.0, "audio_config": ac.to_dict(), "audio_names": ac.names, "motion_names": mf.names,
             "skeleton": skel.to_dict(),
             "motion_scaler": {"mean": m_mean.tolist(), "std": np.full(motion_dim, 0.1).tolist()},
             "audio_scaler": {"mean": (np.full(ac.dim, -50.0)).tolist(), "std": np.full(ac.dim, 15.0).tolist()}}
    if model_config.get("styles"):
        feats["styles"] = ["auto"] + [f"style{i}" for i in range(1, model_config["styles"])]
    fpath = Path(tmp_path) / "features.json"
    fpath.write_text(json.dumps(feats))
    return path, fpath, model


def make_tiny_onnx(tmp_path: Path, **kw) -> Path:
    from export.onnx_export import export_onnx

    ckpt, feats, _ = make_tiny_checkpoint(tmp_path, **kw)
    out = Path(tmp_path) / "tiny.onnx"
    export_onnx(ckpt, out, features_json=feats, check=False)
    return out


def make_tiny_batched_onnx(tmp_path: Path, styles: list[str] | None = None, **kw) -> Path:
    """The tiny model exported with a dynamic batch axis (what a crowd needs), optionally with a `style`
    input: float32 (B, S) weights that shift the audio features through a fixed random matrix, so the
    dance depends on them. Test-only: `transflower export` itself writes a batch of 1 and no style."""
    import onnx
    import torch

    from export.onnx_export import INPUT_NAMES, OUTPUT_NAMES, build_step_module, example_inputs, load_checkpoint
    from transflower.features import StandardScaler

    tmp_path = Path(tmp_path)
    ckpt, feats_path, _ = make_tiny_checkpoint(tmp_path, **kw)
    static = tmp_path / "tiny_static.onnx"
    from export.onnx_export import export_onnx

    export_onnx(ckpt, static, features_json=feats_path, check=False)
    model, _ = load_checkpoint(ckpt)
    feats = json.loads(Path(feats_path).read_text())
    step = build_step_module(model, StandardScaler.from_dict(feats["motion_scaler"]), StandardScaler.from_dict(feats["audio_scaler"]))
    ex = [t.repeat(*([1] * t.dim())) for t in example_inputs(model.cfg)]
    # batch 2 in the example (a size-1 example would fix the axis to 1)
    for name, axis in (("motion", 0), ("audio", 0), ("cache_k", 1), ("cache_v", 1), ("cache_bias", 0), ("noise", 0)):
        i = INPUT_NAMES.index(name)
        ex[i] = torch.cat([ex[i], ex[i]], dim=axis)
    names, module = list(INPUT_NAMES), step
    if styles:
        g = torch.Generator().manual_seed(3)
        shift = torch.randn(len(styles), model.cfg.audio_dim, generator=g) * 30.0
        shift[0] = 0.0  # "auto" changes nothing

        class Styled(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.step = step
                self.register_buffer("shift", shift)

            def forward(self, motion, audio, rope_cos, rope_sin, cache_k, cache_v, cache_bias, noise, style):
                return self.step(motion, audio + style @ self.shift, rope_cos, rope_sin, cache_k, cache_v, cache_bias, noise)

        module, names = Styled().eval(), names + ["style"]
        ex.append(torch.full((2, len(styles)), 1.0 / len(styles)))
    axes = {"motion": {0: "batch"}, "audio": {0: "batch"}, "cache_k": {1: "batch"}, "cache_v": {1: "batch"},
            "cache_bias": {0: "batch"}, "noise": {0: "batch"}, "style": {0: "batch"},
            "pose": {0: "batch"}, "new_k": {1: "batch"}, "new_v": {1: "batch"}}
    out = tmp_path / ("tiny_styled.onnx" if styles else "tiny_batched.onnx")
    with torch.no_grad():
        torch.onnx.export(module, tuple(ex), str(out), input_names=names, output_names=OUTPUT_NAMES, opset_version=17,
                          dynamo=False, dynamic_axes={k: v for k, v in axes.items() if k in names + OUTPUT_NAMES})
    proto = onnx.load(str(out))
    meta = json.loads(onnx.load(str(static)).metadata_props[0].value)
    if styles:
        meta["styles"] = list(styles)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "transflower", json.dumps(meta)
    onnx.save(proto, str(out))
    return out
