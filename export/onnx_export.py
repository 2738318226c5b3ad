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
from transflower.models.live_step import (BATCH_AXIS, INPUT_NAMES, OUTPUT_NAMES, build_step_module,  # noqa: F401 (re-exported)
                                          input_names, model_metadata)
from transflower.errors import UserError

log = logging.getLogger("transflower.export")
FORMAT_VERSION = 1
METADATA_KEY = "transflower"


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


def export_onnx(ckpt_path, out_path, features_json=None, seed_clip=None, dynamo: bool = True, check: bool = True,
                parity_frames: int = 500, default_temperature: float | None = None, parity_audio=None,
                style_presets=None, default_noise_correlation: float | None = None) -> dict:
    """style_presets: a YAML path or a mapping (transflower.styles.check_presets); default: the checkpoint's own.
    default_noise_correlation: the AR(1) noise coefficient live and generate sample at (transflower.realtime.engine.DanceEngine); default: the checkpoint's own."""
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
    meta_core = model_metadata(ckpt_path, model, cfg, feats, seed_clip, style_presets, default_temperature,
                               default_noise_correlation)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    t0 = time.time()
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
    meta = {"format_version": FORMAT_VERSION,
            "exporter": f"transflower {__version__} ({exporter}, torch {torch.__version__})",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **meta_core,
            "source_checkpoint": Path(ckpt_path).name}
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
        from transflower.export.parity import rollout_parity

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
