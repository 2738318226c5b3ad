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


def make_tiny_style_checkpoint(tmp_path: Path, styles: int = 3):
    """A residual, style-conditioned tiny checkpoint (the shipped model's kind): a style embedding that
    matters, and small flow steps (an untrained residual model would random-walk away)."""
    import torch

    ckpt, feats, model = make_tiny_checkpoint(tmp_path, residual=True, styles=styles)
    with torch.no_grad():
        model.backbone.style_in.weight.normal_()
        for st in model.flow.steps:
            st.norm.log_scale.fill_(1.5)
            st.norm.bias.zero_()
    torch.save({"hyper_parameters": torch.load(ckpt, weights_only=False)["hyper_parameters"],
                "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, ckpt)
    return ckpt, feats, model


def make_tiny_onnx(tmp_path: Path, **kw) -> Path:
    from transflower.export.onnx_export import export_onnx

    ckpt, feats, _ = make_tiny_checkpoint(tmp_path, **kw)
    out = Path(tmp_path) / "tiny.onnx"
    export_onnx(ckpt, out, features_json=feats, check=False)
    return out


def make_tiny_batched_onnx(tmp_path: Path, styles: int = 0, **kw) -> Path:
    """The tiny model exported by `transflower export` (dynamic batch axis: what a crowd needs), optionally
    style-conditioned (`styles` weights: "auto", "style1", ...) with a style embedding large enough that
    the dance depends on it."""
    import torch

    from transflower.export.onnx_export import export_onnx

    tmp_path = Path(tmp_path)
    ckpt, feats, model = make_tiny_checkpoint(tmp_path, styles=styles, **kw)
    if styles:
        with torch.no_grad():
            model.backbone.style_in.weight.normal_(std=3.0)
        saved = torch.load(ckpt, weights_only=False)
        saved["state_dict"] = {"model." + k: v for k, v in model.state_dict().items()}
        torch.save(saved, ckpt)
    out = tmp_path / ("tiny_styled.onnx" if styles else "tiny_batched.onnx")
    export_onnx(ckpt, out, features_json=feats, check=False)
    return out


def make_tiny_fixed_batch_onnx(tmp_path: Path, **kw) -> Path:
    """The tiny model with its batch axis fixed to 1, as exports before the crowd work wrote it (the
    engine then runs the graph once per dancer)."""
    import onnx
    import torch

    from transflower.export.onnx_export import INPUT_NAMES, OUTPUT_NAMES, build_step_module, example_inputs, load_checkpoint
    from transflower.features import StandardScaler

    tmp_path = Path(tmp_path)
    dynamic = make_tiny_batched_onnx(tmp_path, **kw)
    model, _ = load_checkpoint(tmp_path / "tiny.ckpt")
    feats = json.loads((tmp_path / "features.json").read_text())
    step = build_step_module(model, StandardScaler.from_dict(feats["motion_scaler"]), StandardScaler.from_dict(feats["audio_scaler"]))
    out = tmp_path / "tiny_fixed.onnx"
    with torch.no_grad():
        torch.onnx.export(step, example_inputs(model.cfg, batch=1), str(out), input_names=INPUT_NAMES,
                          output_names=OUTPUT_NAMES, opset_version=17, dynamo=False)
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    for p in onnx.load(str(dynamic)).metadata_props:
        e = proto.metadata_props.add()
        e.key, e.value = p.key, p.value
    onnx.save(proto, str(out))
    return out
