"""The approaches `transflower bench latency` times side by side: each has `.name` and `.step()` (one live
frame, host work included). See `transflower.benchmarks.latency` for what each row means."""
from __future__ import annotations

from pathlib import Path

import numpy as np

PAPER_FUTURE_FRAMES = 20  # the paper's audio window reaches 1 s (20 frames) beyond the motion window


class TorchRecompute:
    """The causal model recomputed over the whole window each frame (the seed's way of generating)."""

    def __init__(self, model, context: int, device="cpu", name="causal-recompute"):
        import torch

        self.torch, self.model, self.name, self.device = torch, model.to(device), name, device
        c = model.cfg
        self.motion = torch.randn(1, context, c.motion_dim, device=device)
        self.audio = torch.randn(1, context, c.audio_dim, device=device)
        self.D = c.motion_dim

    def step(self):
        torch = self.torch
        with torch.no_grad():
            new_audio = torch.randn(1, 1, self.audio.shape[-1], device=self.device)
            self.audio = torch.cat([self.audio[:, 1:], new_audio], dim=1)
            h = self.model.backbone(self.motion, self.audio)[:, -1]
            noise = torch.randn(1, self.D, device=self.device)
            pose = self.model.flow.inverse(noise, h)
            self.motion = torch.cat([self.motion[:, 1:], pose[:, None]], dim=1)
            if self.device != "cpu":
                torch.cuda.synchronize()
        return pose


class PaperRecompute:
    """The paper-layout Transflower: `step_full_window(motion_window, audio_window, noise)` every frame."""

    def __init__(self, tp_module, cls, live_cfg, context: int, name="original-recompute", model=None):
        import dataclasses

        import torch

        self.torch, self.name = torch, name
        if model is None:
            cfg_cls = getattr(tp_module, "TransflowerPaperConfig", None) or next(
                o for o in vars(tp_module).values() if dataclasses.is_dataclass(o) and isinstance(o, type))
            known = {f.name for f in dataclasses.fields(cfg_cls)}
            # the paper's windows: `context` past poses, audio reaching 20 frames (1 s) past them
            want = dict(live_cfg.to_dict(), motion_window=context, audio_window=context + PAPER_FUTURE_FRAMES, dropout=0.0)
            model = cls(cfg_cls(**{k: v for k, v in want.items() if k in known}))
        self.model = model.eval()
        c = self.model.cfg
        m_len = getattr(c, "motion_window", context)
        a_len = getattr(c, "audio_window", m_len + PAPER_FUTURE_FRAMES)
        self.motion = torch.randn(1, m_len, c.motion_dim)
        self.audio = torch.randn(1, a_len, c.audio_dim)
        self.D = c.motion_dim

    def step(self):
        torch = self.torch
        with torch.no_grad():
            self.audio = torch.cat([self.audio[:, 1:], torch.randn(1, 1, self.audio.shape[-1])], dim=1)
            pose = self.model.step_full_window(self.motion, self.audio, torch.randn(1, self.D))
            pose = pose.reshape(1, -1)[:, : self.D]
            self.motion = torch.cat([self.motion[:, 1:], pose[:, None]], dim=1)
        return pose


class TorchKV:
    def __init__(self, model, device="cpu", name="torch-kv-cache"):
        import torch

        from transflower.models.transflower import KVCacheRunner, rope_angles

        self.torch, self.name, self.device, self.rope = torch, name, device, rope_angles
        self.model = model.to(device)
        self.runner = KVCacheRunner(self.model)
        c = model.cfg
        if device != "cpu":
            r = self.runner
            r.cache_k, r.cache_v, r.cache_bias = r.cache_k.to(device), r.cache_v.to(device), r.cache_bias.to(device)
        self.D, self.A = c.motion_dim, c.audio_dim
        self.prev = torch.zeros(1, self.D, device=device)
        for _ in range(c.context - 1):  # fill the ring
            self._step(torch.zeros(1, self.D, device=device))

    def _step(self, noise):
        torch = self.torch
        if self.device == "cpu":
            return self.runner.step(self.prev, torch.randn(1, self.A), noise)
        r, c = self.runner, self.runner.cfg  # GPU: angles moved to the device
        with torch.no_grad():
            cos, sin = self.rope(torch.tensor([r.frame]), c.head_dim, c.rope_base)
            pose, k, v = r.model.step(self.prev, torch.randn(1, self.A, device=self.device), cos[0].to(self.device),
                                      sin[0].to(self.device), r.cache_k, r.cache_v, r.cache_bias, noise)
            slot = r.frame % (c.context - 1)
            r.cache_k[:, :, slot] = k
            r.cache_v[:, :, slot] = v
            r.cache_bias[:, slot] = 0.0
            r.frame += 1
            torch.cuda.synchronize()
        return pose

    def step(self):
        self.prev = self._step(self.torch.randn(1, self.D, device=self.device))
        return self.prev


class OnnxKV:
    def __init__(self, path: Path, threads: int, spinning: bool = True, provider: str = "cpu", name="onnx-kv-cache"):
        from transflower.realtime.engine import DanceEngine
        from transflower.realtime.onnx_model import OnnxDanceModel

        self.name = name
        self.model = OnnxDanceModel(path, provider=provider, threads=threads, spinning=spinning)
        m = self.model.meta
        seed = np.repeat(np.asarray(m["seed_motion"], np.float32)[-1:], m["context"] - 1, axis=0)
        self.engine = DanceEngine(self.model, temperature=1.0, seed=0, seed_motion=seed, explode_threshold=1e9)
        self.rng = np.random.default_rng(1)
        self.audio = self.rng.standard_normal((256, m["audio_dim"])).astype(np.float32)
        self.i = 0

    def step(self):
        self.i += 1
        return self.engine.step(self.audio[self.i % 256])


# ---------------------------------------------------------------------------------------------
# Timing


class OnnxCrowd(OnnxKV):
    """N dancers through one batched DanceEngine step (the live crowd)."""

    def __init__(self, path: Path, dancers: int, threads: int, provider: str = "cpu"):
        from transflower.realtime.engine import DanceEngine
        from transflower.realtime.onnx_model import OnnxDanceModel

        self.name, self.dancers = f"onnx-crowd-{dancers}", dancers
        self.model = OnnxDanceModel(path, provider=provider, threads=threads)
        m = self.model.meta
        seed = np.repeat(np.asarray(m["seed_motion"], np.float32)[-1:], m["context"] - 1, axis=0)
        self.engine = DanceEngine(self.model, seed=0, seed_motion=seed, explode_threshold=1e9, dancers=dancers)
        self.rng = np.random.default_rng(1)
        self.audio = self.rng.standard_normal((256, m["audio_dim"])).astype(np.float32)
        self.i = 0
