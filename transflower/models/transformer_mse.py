"""The deterministic multimodal transformer baseline (the seed's `transformer` model), issue 3.

Exactly TransflowerLive's causal backbone (imported, not copied: motion + audio encoders -> per-frame
fusion -> cross-modal encoder, causal band attention, RoPE, KV-cacheable), but the head is a Linear map
to the next pose, trained by mean squared error. Without a flow there is nothing to sample: generation
is a deterministic regression rollout (temperature and generator are accepted and ignored), the
regression-to-the-mean behaviour the paper contrasts the flow against.

Same windows as TransflowerLive: motion_in[t] = x_{t-1}, audio_in[t] = a_{t+lookahead}, target[t] = x_t.
Shapes: B batch, T frames, D_m motion dims, D_a audio dims, d model width, H heads, hd head width.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from transflower.models.transflower import CausalBackbone, KVCacheRunner, TransflowerConfig


@dataclass
class TransformerMSEConfig:
    """TransflowerConfig without the flow: the backbone's fields, same meanings and defaults."""

    motion_dim: int = 46
    audio_dim: int = 68
    d_model: int = 256
    n_heads: int = 4
    motion_layers: int = 2
    audio_layers: int = 2
    cross_layers: int = 4
    ff_mult: int = 4
    context: int = 120  # frames each layer sees (itself + context-1 before)
    lookahead: int = 2  # frames of future music
    dropout: float = 0.1
    rope_base: float = 10000.0

    def __post_init__(self):
        from transflower.errors import UserError

        for name in ("motion_dim", "audio_dim", "d_model", "n_heads", "motion_layers", "audio_layers", "cross_layers",
                     "ff_mult", "context", "lookahead"):
            v, lo = getattr(self, name), 2 if name == "context" else 0 if name.endswith(("layers", "lookahead")) else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise UserError(f"model_config.{name}: expected an integer >= {lo}, got {v!r}")
        if self.d_model % self.n_heads or self.head_dim % 2:
            raise UserError(f"model_config.d_model ({self.d_model}) must be n_heads ({self.n_heads}) x an even head width (RoPE)")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise UserError(f"model_config.dropout: expected a number in [0, 1), got {self.dropout!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_layers(self) -> int:
        return self.motion_layers + self.audio_layers + self.cross_layers

    def backbone_config(self) -> TransflowerConfig:
        return TransflowerConfig(**asdict(self))

    def to_dict(self) -> dict:
        return asdict(self)


class TransformerMSE(nn.Module):
    """Causal backbone + Linear head to the next pose; MSE loss."""

    def __init__(self, cfg: TransformerMSEConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = CausalBackbone(cfg.backbone_config())
        self.head = nn.Linear(cfg.d_model, cfg.motion_dim)

    # training interface (transflower.train)
    def window_spec(self, seq_len: int):
        from transflower.dataset import WindowSpec

        L = self.cfg.lookahead
        return WindowSpec(["motion", "audio"], ["motion"], [seq_len, seq_len], [seq_len], [0, 1 + L], [1])

    def loss(self, inputs, outputs):
        motion_in, audio_in = inputs
        return F.mse_loss(self(motion_in, audio_in), outputs[0])

    def forward(self, motion_in, audio_in):
        """(B, T, D_m), (B, T, D_a) -> predicted poses (B, T, D_m)."""
        return self.head(self.backbone(motion_in, audio_in))

    # the cached step, same signature as TransflowerLive.step so KVCacheRunner drives it (noise ignored)
    def step(self, motion_frame, audio_frame, cos, sin, cache_k, cache_v, cache_bias, noise=None):
        h, new_k, new_v = self.backbone.step(motion_frame, audio_frame, cos, sin, cache_k, cache_v, cache_bias)
        return self.head(h), new_k, new_v

    def empty_cache(self, batch: int = 1):
        c = self.cfg
        shape = (c.n_layers, batch, c.context - 1, c.n_heads, c.head_dim)
        return torch.zeros(shape), torch.zeros(shape), torch.full((batch, c.context - 1), -1e9)

    @torch.no_grad()
    def generate(self, seed_motion, audio, num_frames: int, temperature: float = 1.0, generator=None):
        """seed_motion (S >= 1, D_m): frames -S..-1; audio (N, D_a): frames 0..N-1 -> poses (num_frames, D_m).

        Token j carries pose x_j and audio a_{j+1+lookahead} (clamped to [0, N-1]) and predicts x_{j+1}."""
        S, N, L = seed_motion.shape[0], audio.shape[0], self.cfg.lookahead
        if S < 1:
            raise ValueError("generate needs at least one seed frame")
        was_training = self.training
        self.eval()
        try:
            runner = KVCacheRunner(self)
            seed_motion, audio = seed_motion.float(), audio.float()
            for j in range(-S, -1):  # warm the cache on the seed (predictions of known poses discarded)
                runner.step(seed_motion[j + S][None], audio[min(max(j + 1 + L, 0), N - 1)][None], None)
            prev, out = seed_motion[-1][None], []
            for i in range(num_frames):
                prev = runner.step(prev, audio[min(max(i + L, 0), N - 1)][None], None)
                out.append(prev[0])
            return torch.stack(out)
        finally:
            self.train(was_training)
