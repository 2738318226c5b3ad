"""`transflower export CKPT OUT.onnx`: a trained Transflower -> one ONNX file the live path runs alone.

The graph is one live step; every shape is static except the batch axis B (one row per dancer: a
crowd runs as one batched step; all dancers share the frame index, so the rotary angles are shared):
  inputs   motion   (B, D_m)   the previous pose's features, unscaled (the graph folds the scaler)
           audio    (B, D_a)   the audio features of frame t + lookahead, unscaled
           rope_cos, rope_sin (hd/2,)  rotary angles of this frame, computed on the host in float64
           cache_k, cache_v (n_layers, B, C, H, hd)  rotated keys / values of up to C = context-1 past frames
           cache_bias (B, C)   0 for filled slots, -1e9 for empty ones
           noise    (B, D_m)   N(0, 1) * temperature, drawn by the host (seeding stays ours)
           style    (B, S)     only for a style-conditioned model: weights over metadata "styles"
                               (entry 0 "auto"; one-hot picks a style, a mix blends two during a switch)
  outputs  pose     (B, D_m)   the next pose's features, unscaled
           new_k, new_v (n_layers, B, H, hd)  this frame's key/value; the host writes them into a ring slot
Returning only the new K/V (not the whole cache) is 1.7-1.9x faster here (FIELD_NOTES).
The flow's sampling direction has its 1x1 inverses precomputed in float64 (no matrix-inverse op).
Metadata (JSON under the key `transflower`) carries everything the runtime needs: rates, lookahead,
cache geometry, feature definitions, scalers, skeleton, a warm-start seed clip, the model config, and
for a style model a seed clip per style and the per-style presets (transflower.styles).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from transflower.checkpoint import find_features_meta, load_checkpoint, load_seed_clip, load_style_seeds  # noqa: F401 (re-exported)
from transflower.errors import UserError
from transflower.styles import check_noise_correlation, check_presets, load_presets

log = logging.getLogger("transflower.export")
FORMAT_VERSION = 1
METADATA_KEY = "transflower"


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
            x = model.residual_mask * m + self.flow_inverse(noise, model.flow_condition(h, m))  # residual: a change
            pose = x * self.m_std + self.m_mean
            return pose, new_k, new_v

    return LiveStep().eval()


def example_inputs(cfg, batch: int = 2):
    """Example inputs; batch >= 2, or the exporter silently fixes the batch axis to 1 (FIELD_NOTES)."""
    import torch

    c, B = cfg, batch
    C = c.context - 1
    inputs = (
        torch.randn(B, c.motion_dim), torch.randn(B, c.audio_dim),
        torch.rand(c.head_dim // 2), torch.rand(c.head_dim // 2),
        torch.randn(c.n_layers, B, C, c.n_heads, c.head_dim), torch.randn(c.n_layers, B, C, c.n_heads, c.head_dim),
        torch.zeros(B, C), torch.randn(B, c.motion_dim),
    )
    if c.styles:
        inputs += (torch.softmax(torch.randn(B, c.styles), -1),)
    return inputs


INPUT_NAMES = ["motion", "audio", "rope_cos", "rope_sin", "cache_k", "cache_v", "cache_bias", "noise"]
OUTPUT_NAMES = ["pose", "new_k", "new_v"]
# which axis of each input/output is the batch (None: shared by all dancers)
BATCH_AXIS = {"motion": 0, "audio": 0, "rope_cos": None, "rope_sin": None, "cache_k": 1, "cache_v": 1, "cache_bias": 0,
              "noise": 0, "style": 0, "pose": 0, "new_k": 1, "new_v": 1}


def input_names(cfg) -> list[str]:
    return INPUT_NAMES + (["style"] if cfg.styles else [])


def export_onnx(ckpt_path, out_path, features_json=None, seed_clip=None, dynamo: bool = True, check: bool = True,
                parity_frames: int = 500, default_temperature: float | None = None, parity_audio=None,
                style_presets=None, default_noise_correlation: float | None = None) -> dict:
    """style_presets: a YAML path or a mapping (transflower.styles.check_presets); default: the checkpoint's own.
    default_noise_correlation: stored for live / generate (TransflowerLive.generate); default: the checkpoint's own."""
    import onnx
    import torch

    from transflower import __version__
    from transflower.features import StandardScaler

    model, cfg = load_checkpoint(ckpt_path)
    if cfg["model"] != "transflower_live":
        raise UserError(f"{ckpt_path}: model {cfg['model']!r} has no cached live step; only transflower_live exports")
    mc = model.cfg
    feats = find_features_meta(ckpt_path, cfg, features_json)
    m_scaler = StandardScaler.from_dict(feats["motion_scaler"])
    a_scaler = StandardScaler.from_dict(feats["audio_scaler"])
    step = build_step_module(model, m_scaler, a_scaler)
    seed = load_seed_clip(feats, seed_clip, mc.context, ckpt_path)
    style_names = list(feats.get("styles") or [])[: mc.styles] if mc.styles else []
    style_seeds = load_style_seeds(feats, mc.context, ckpt_path) if style_names else {}
    if style_presets and not style_names:
        raise UserError(f"{ckpt_path}: style presets given, but the model has no style input")
    if isinstance(style_presets, (str, Path)):
        style_presets = load_presets(style_presets, style_names)
    presets = check_presets(feats.get("style_presets") if style_presets is None else style_presets, style_names,
                            where=f"{ckpt_path}: style_presets" if style_presets is None else "--style-presets")

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    t0 = time.time()
    if mc.styles and len(feats.get("styles") or []) != mc.styles:
        raise UserError(f"{ckpt_path}: the model takes {mc.styles} style weights but its features.json lists styles "
                        f"{feats.get('styles')}; pass the features.json it was trained on (--features)")
    names = input_names(mc)
    dynamic_axes = {n: {BATCH_AXIS[n]: "batch"} for n in names + OUTPUT_NAMES if BATCH_AXIS[n] is not None}
    with torch.no_grad():
        try:
            if not dynamo:
                raise RuntimeError("legacy exporter requested")
            batch = torch.export.Dim("batch", min=1, max=4096)
            shapes = tuple({BATCH_AXIS[n]: batch} if BATCH_AXIS[n] is not None else None for n in names)
            prog = torch.onnx.export(step, example_inputs(mc), input_names=names, output_names=OUTPUT_NAMES, dynamo=True,
                                     dynamic_shapes=shapes, verbose=False)
            prog.save(str(tmp))
            exporter = "dynamo"
        except Exception as e:  # fall back to the TorchScript exporter, which also handles this graph
            if dynamo:
                log.warning("dynamo export failed (%s); using the legacy exporter", e)
            torch.onnx.export(step, example_inputs(mc), str(tmp), input_names=names, output_names=OUTPUT_NAMES,
                              dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
            exporter = "torchscript"
    proto = onnx.load(str(tmp), load_external_data=True)
    rho = default_noise_correlation if default_noise_correlation is not None else (cfg.get("_features") or {}).get(
        "default_noise_correlation")
    rho = None if rho is None else check_noise_correlation(rho, "--default-noise-correlation")
    meta = {
        "format_version": FORMAT_VERSION, "exporter": f"transflower {__version__} ({exporter}, torch {torch.__version__})",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fps": feats["fps"], "lookahead": mc.lookahead, "context": mc.context, "n_layers": mc.n_layers,
        "n_heads": mc.n_heads, "head_dim": mc.head_dim, "rope_base": mc.rope_base,
        "motion_dim": mc.motion_dim, "audio_dim": mc.audio_dim,
        "audio_config": feats["audio_config"], "motion_names": feats["motion_names"], "audio_names": feats.get("audio_names"),
        "motion_scaler": feats["motion_scaler"], "audio_scaler": feats["audio_scaler"],
        "skeleton": feats["skeleton"], "model_config": mc.to_dict(), "seed_motion": seed,
        "styles": style_names, "style_seeds": style_seeds, "style_presets": presets,
        **({"default_temperature": float(default_temperature)} if default_temperature is not None else {}),
        **({"default_noise_correlation": rho} if rho is not None else {}),
        "source_checkpoint": Path(ckpt_path).name,
    }
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    for extra in tmp.parent.glob(f"{tmp.name}.data"):
        extra.unlink()
    os.replace(tmp, out_path)
    report = {"onnx": str(out_path), "exporter": exporter, "export_seconds": round(time.time() - t0, 1),
              "nodes": len(proto.graph.node), "bytes": out_path.stat().st_size}
    if check:
        from export.parity import rollout_parity

        # a trained model rolled out on random audio at temperature 1 can leave its training distribution (and
        # then both runtimes agree on non-finite poses); real audio rows (parity_audio) and the model's own
        # default temperature keep the check on what live does
        report["parity"] = rollout_parity(model, out_path, m_scaler, a_scaler, frames=parity_frames,
                                          temperature=1.0 if default_temperature is None else float(default_temperature),
                                          audio=None if parity_audio is None else np.asarray(parity_audio, np.float32)[:parity_frames])
    return report


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint from `transflower train` (RUN/checkpoints/last.ckpt)")
    p.add_argument("out", help="the .onnx file to write (atomically)")
    p.add_argument("--features", help="features.json of the training data (default: found via the run's model card)")
    p.add_argument("--seed-motion", help="BVH clip whose last frames warm-start the live model (default: the mean pose)")
    p.add_argument("--style-presets", metavar="YAML", help="per-style presets: multipliers of strength and temperature, "
                   "values of noise correlation and traction (`rumba: {strength: 2.5, temperature: 0.6, correlation: 0.8, "
                   "traction: 0.5}`; chosen with `transflower bench style --split train`); default: the checkpoint's own, if any")
    p.add_argument("--default-noise-correlation", type=float, metavar="RHO",
                   help="the AR(1) noise correlation `live` and `generate` use unless told otherwise (0..0.95; default: "
                        "the checkpoint's own, else none stored, i.e. 0)")
    p.add_argument("--legacy", action="store_true", help="use the TorchScript exporter instead of dynamo")
    p.add_argument("--no-check", action="store_true", help="skip the torch-vs-onnxruntime parity rollout")
    p.add_argument("--parity-frames", type=int, default=500, help="frames in the parity rollout (default 500)")
    p.add_argument("--default-temperature", type=float, help="the sampling temperature `live` and `generate` use unless told "
                   "otherwise (choose it with `transflower bench quality --temperature`; default: none stored, i.e. 1)")


def run(args) -> int:
    report = export_onnx(args.checkpoint, args.out, args.features, args.seed_motion, dynamo=not args.legacy,
                         check=not args.no_check, parity_frames=args.parity_frames,
                         default_temperature=args.default_temperature, style_presets=args.style_presets,
                         default_noise_correlation=args.default_noise_correlation)
    print(json.dumps(report, indent=1))
    par = report.get("parity")
    if par and not par["ok"]:
        print(f"error: parity check failed: max abs error {par['max_abs_error']:.3g} >= {par['tolerance']}")
        return 1
    return 0
