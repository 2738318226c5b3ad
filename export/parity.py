"""Parity: the exported ONNX step, run by the live engine, against the torch model it came from.

An autoregressive rollout (each pose fed back as the next motion input) with identical noise and
audio; errors are measured in standardised feature space (units of each dimension's std).
"""
from __future__ import annotations

import numpy as np


def rollout_parity(model, onnx_path, motion_scaler, audio_scaler, frames: int = 500, seed_frames: int = 10,
                   tolerance: float = 1e-3, temperature: float = 1.0, rng_seed: int = 0) -> dict:
    import torch

    from realtime.engine import DanceEngine, OnnxDanceModel
    from transflower.models.transflower import KVCacheRunner

    onnx_model = OnnxDanceModel(onnx_path, provider="cpu", threads=1)
    seed = np.asarray(onnx_model.meta["seed_motion"], dtype=np.float32)[-seed_frames:]
    engine = DanceEngine(onnx_model, temperature=temperature, seed_motion=seed)
    runner = KVCacheRunner(model)
    ms, a_s = motion_scaler, audio_scaler
    t = lambda x: torch.from_numpy(np.asarray(x, dtype=np.float32))[None]  # noqa: E731
    silence = t(a_s.transform(engine.silence))
    with torch.no_grad():
        for row in seed:
            runner.step(t(ms.transform(row)), silence, torch.zeros(1, model.cfg.motion_dim))
    prev = t(ms.transform(seed[-1]))
    rng = np.random.default_rng(rng_seed)
    errors = np.empty(frames)
    for i in range(frames):
        audio_raw = a_s.inverse(rng.standard_normal(a_s.mean.shape[0]).astype(np.float32))
        noise = (rng.standard_normal(model.cfg.motion_dim) * temperature).astype(np.float32)
        with torch.no_grad():
            p_torch = runner.step(prev, t(a_s.transform(audio_raw)), t(noise))
        p_onnx = engine.step(audio_raw, noise=noise)
        errors[i] = np.abs(p_torch[0].numpy() - ms.transform(p_onnx)).max()
        prev = p_torch
    return {"frames": frames, "max_abs_error": float(errors.max()), "mean_abs_error": float(errors.mean()),
            "tolerance": tolerance, "ok": bool(errors.max() < tolerance), "engine_resets": engine.stats.resets}
