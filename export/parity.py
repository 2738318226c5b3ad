"""Parity: the exported ONNX step, run by the live engine, against the torch model it came from.

A 500-frame autoregressive rollout with identical noise and audio, measured two ways (errors in
standardised feature space, i.e. in units of each dimension's std):

- `stepwise` (the pass/fail criterion): at every frame both runtimes continue from the *same* history
  (torch's pose is fed back to both), so the error is what one exported step adds. Trained dance models
  are chaotic when run free: a 1e-6 difference in one pose grows ~25% per frame.
- `free_running`: each runtime feeds back its own poses, as live does. Reported with the frame where
  the two first differ by more than the tolerance, next to a control: the same torch model in float32
  against itself in float64. When the control diverges at a similar frame, the divergence is the
  dynamics amplifying rounding, not an export error.
"""
from __future__ import annotations

import copy

import numpy as np


def _torch_rollout_setup(model, seed, ms, a_s, prime_row):
    import torch

    from transflower.models.transflower import KVCacheRunner

    runner = KVCacheRunner(model)
    dtype = next(model.parameters()).dtype
    runner.cache_k, runner.cache_v, runner.cache_bias = (x.to(dtype) for x in (runner.cache_k, runner.cache_v, runner.cache_bias))
    if runner.style is not None:
        runner.style = runner.style.to(dtype)
    t = lambda x: torch.from_numpy(np.asarray(x, dtype=np.float64)).to(dtype)[None]  # noqa: E731
    with torch.no_grad():
        for row in seed:
            runner.step(t(ms.transform(row)), t(a_s.transform(prime_row)), torch.zeros(1, model.cfg.motion_dim, dtype=dtype))
    return runner, t


def _first_over(errors, tol):
    over = np.nonzero(errors > tol)[0]
    return int(over[0]) if len(over) else None


def rollout_parity(model, onnx_path, motion_scaler, audio_scaler, frames: int = 500, seed_frames: int = 10,
                   tolerance: float = 1e-3, temperature: float = 1.0, rng_seed: int = 0, audio=None) -> dict:
    import torch

    from transflower.realtime.engine import DanceEngine

    from transflower.realtime.onnx_model import OnnxDanceModel

    onnx_model = OnnxDanceModel(onnx_path, provider="cpu", threads=1)
    seed = np.asarray(onnx_model.meta["seed_motion"], dtype=np.float32)[-seed_frames:]
    ms, a_s = motion_scaler, audio_scaler
    rng = np.random.default_rng(rng_seed)
    D, Da = model.cfg.motion_dim, a_s.mean.shape[0]
    if audio is None:  # standardised Gaussian audio rows, in raw units
        audio = a_s.inverse(rng.standard_normal((frames, Da)).astype(np.float32))
    noise = (rng.standard_normal((frames, D)) * temperature).astype(np.float32)

    result = {"frames": frames, "tolerance": tolerance}
    model64 = copy.deepcopy(model).double()
    for mode in ("stepwise", "free_running"):
        # the graph against torch: without the host-side grounding (the torch rollout here has none)
        engine = DanceEngine(onnx_model, temperature=temperature, seed_motion=seed, ground=False, energy=False)
        runner, t = _torch_rollout_setup(model, seed, ms, a_s, engine.prime_row)
        runner64, t64 = _torch_rollout_setup(model64, seed, ms, a_s, engine.prime_row) if mode == "free_running" else (None, None)
        prev = t(ms.transform(seed[-1]))
        prev64 = t64(ms.transform(seed[-1])) if runner64 else None
        errors, control, ref_z = np.empty(frames), np.empty(frames), np.empty(frames)
        for i in range(frames):
            with torch.no_grad():
                p_torch = runner.step(prev, t(a_s.transform(audio[i])), t(noise[i]))
                if runner64:
                    prev64 = runner64.step(prev64, t64(a_s.transform(audio[i])), t64(noise[i]))
                    control[i] = np.abs(p_torch[0].double().numpy() - prev64[0].numpy()).max()
            p_onnx = engine.step(audio[i], noise=noise[i])
            errors[i] = np.abs(p_torch[0].numpy() - ms.transform(p_onnx)).max()
            if mode == "stepwise":
                ref_z[i] = np.abs(p_torch[0].numpy()).max()  # the same reference rollout in both modes: once
                engine.pose[:] = ms.inverse(p_torch[0].numpy())  # both continue from the same history
            prev = p_torch
        entry = {"max_abs_error": float(errors.max()), "mean_abs_error": float(errors.mean()),
                 "engine_resets": engine.stats.resets}
        if mode == "stepwise":
            # the torch reference is the model's own rollout (no redraws): where it runs away (a pose beyond
            # the engine's explode threshold, in standardised units) the two runtimes part for the model's
            # sake, not the export's; the report says where, and how close they were before it
            away = _first_over(ref_z, engine.explode_threshold)
            entry.update(reference_ran_away_at=away, reference_max_abs_z=float(ref_z.max()),
                         max_abs_error_before_runaway=(float(errors.max()) if away is None
                                                       else float(errors[:away].max()) if away else None))
        if mode == "free_running":
            entry.update(first_frame_over_tolerance=_first_over(errors, tolerance),
                         control_fp32_vs_fp64_first_frame_over_tolerance=_first_over(control, tolerance),
                         control_max_abs_error=float(control.max()))
        result[mode] = entry
    sw = result["stepwise"]
    result.update(max_abs_error=sw["max_abs_error"], ok=bool(sw["max_abs_error"] < tolerance),
                  engine_resets=sw["engine_resets"] + result["free_running"]["engine_resets"])
    return result
