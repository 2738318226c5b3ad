"""Ablation: does a short motion memory make the model take its pace from the music?

Every run so far (README) points one way: with 6 s of its own past poses in view, the model reads its pace
from its past (a window's pace is visible in its first second) and the likelihood never asks it to read the
pace from the music. Here the same small Transflower is trained twice from scratch on the same data (tempo
copies, splices), differing in one thing: how far back the poses reach.

- `motion_context` = 120 (long): every layer sees 120 frames, as v1 (6 s of poses).
- `motion_context` = 3 (short): the motion encoder and the cross-modal layers see 3 frames each, so what any
  frame's output knows of past poses spans (motion_layers + cross_layers) * 2 + 1 frames (9 frames = 0.45 s
  with 2 + 2 layers: less than one beat of any song here); the audio encoder keeps 120 frames (6 s), so the
  music's pace is in view and the poses' is not.

The model lives here, not in the product: its live step (a second, shorter ring per layer) and its export are
not written; `generate` recomputes the window for each frame (torch), which is what `bench music` needs of a
checkpoint that is not `transflower_live` (its BaselineDancer). Run through this file so the model is known:

    python motion_memory.py train motion_memory_short.yaml --data DATA --out RUN   # = transflower train ...
    python motion_memory.py bench music --data DATA --models short=RUN/checkpoints/last.ckpt ...  # = transflower bench ...
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.nn as nn

import transflower.models as models
from transflower.models import transflower as tf


@dataclass
class ShortMemoryConfig(tf.TransflowerConfig):
    motion_context: int = 120  # frames the motion encoder and the cross-modal layers see (the audio encoder: context)


class ShortBandBlock(tf.Block):
    """A block whose attention sees `band` frames (itself + band - 1 before), whatever mask it is handed."""

    def __init__(self, cfg, band: int):
        super().__init__(cfg)
        self.band = band

    def forward(self, x, cos, sin, mask):
        return super().forward(x, cos, sin, tf.band_mask(x.shape[1], self.band, x.device))


class ShortMemoryBackbone(tf.CausalBackbone):
    """The product's backbone (its forward unchanged), its motion-encoder and cross-modal blocks short-banded."""

    def __init__(self, cfg: ShortMemoryConfig):
        super().__init__(cfg)
        self.motion_enc = nn.ModuleList([ShortBandBlock(cfg, cfg.motion_context) for _ in range(cfg.motion_layers)])
        self.cross_enc = nn.ModuleList([ShortBandBlock(cfg, cfg.motion_context) for _ in range(cfg.cross_layers)])

    def step(self, *args, **kwargs):
        raise NotImplementedError("the short-memory ablation has no cached step; generate() recomputes the window")


class ShortMemoryTransflower(tf.TransflowerLive):
    temperature_scale = 0.6  # bench music's BaselineDancer asks for temperature 1; this model samples at 0.6 (v1's scheduled-sampling temperature)

    def __init__(self, cfg: ShortMemoryConfig):
        super().__init__(cfg)
        self.backbone = ShortMemoryBackbone(cfg)

    @torch.no_grad()
    def generate(self, seed_motion, audio, num_frames: int, temperature: float = 1.0, generator=None):
        """seed_motion (S, D_m): frames -S..-1; audio (N, D_a): frames 0..N-1 -> poses (num_frames, D_m).
        Frame t's token is (pose t-1, audio t + lookahead), as in training; the last `context` frames are
        recomputed for each new one (positions are relative, so the window's start does not matter)."""
        cfg, D = self.cfg, self.cfg.motion_dim
        W, L, N, S = cfg.context, cfg.lookahead, audio.shape[0], seed_motion.shape[0]
        was_training = self.training
        self.eval()
        try:
            poses = [p for p in seed_motion.float()]  # poses[k] = frame k - S
            for i in range(num_frames):  # predicts frame i
                lo = max(0, S + i - W)
                motion_in = torch.stack(poses[lo: S + i])[None]  # frames lo-S .. i-1
                idx = (torch.arange(lo - S, i) + 1 + L).clamp(0, N - 1)  # token of frame t hears audio t + L
                h = self.backbone(motion_in, audio[idx].float()[None])[:, -1]  # (1, d)
                noise = torch.randn(1, D, generator=generator) * (temperature * self.temperature_scale)
                poses.append(self.residual_mask * poses[-1] + self.flow.inverse(noise, h)[0])
            return torch.stack(poses[S:])
        finally:
            self.train(was_training)


_product_registry = models.registry


def registry():
    reg = _product_registry()
    reg["transflower_shortmem"] = (ShortMemoryConfig, ShortMemoryTransflower)
    return reg


models.registry = registry  # build_model looks the registry up at call time: train, load_checkpoint and bench all see it

if __name__ == "__main__":
    from transflower.cli import main

    sys.exit(main(sys.argv[1:]))
