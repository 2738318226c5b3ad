"""Conditional normalizing flow over one pose (Glow-style), as in nflows / zuko.

Every transform has `forward(x, cond) -> (z, logdet)` (data -> latent) and `inverse(z, cond) -> x`
(latent -> data, the sampling direction). Shapes: x, z (B, D); cond (B, C); logdet (B,).

A flow step is ActNorm -> invertible linear (LU-parameterised 1x1) -> affine coupling whose network
sees the conditioning (the transformer's output for this frame). The prior is a standard Gaussian;
sampling draws z ~ N(0, T^2 I) with temperature T (noise is drawn outside, so export keeps it an input).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ActNorm(nn.Module):
    """Per-dimension affine map, initialised from the first batch to zero mean, unit variance."""

    def __init__(self, dim: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        mean, sq = x.mean(0), (x * x).mean(0)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # under DDP every rank must start from the same statistics (of all ranks' first batches)
            stats = torch.stack([mean, sq])
            torch.distributed.all_reduce(stats)
            mean, sq = stats / torch.distributed.get_world_size()
        std = torch.sqrt(torch.clamp(sq - mean * mean, min=0.0))
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x, cond=None):
        if self.training and not bool(self.initialized):
            self._init(x)
        z = (x + self.bias) * torch.exp(self.log_scale)
        return z, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, z, cond=None):
        return z * torch.exp(-self.log_scale) - self.bias


class InvertibleLinear(nn.Module):
    """W = P L (U + diag(s)): log|det W| = sum log|s|, O(D) instead of O(D^3) (Glow's LU 1x1 conv)."""

    def __init__(self, dim: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), -1))
        self.register_buffer("eye", torch.eye(dim))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self) -> torch.Tensor:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def forward(self, x, cond=None):
        return x @ self.weight().T, self.log_s.sum().expand(x.shape[0])

    def inverse(self, z, cond=None):
        # torch.linalg.inv has no ONNX op: export replaces this with a precomputed inverse (export/)
        return z @ torch.linalg.inv(self.weight()).T


class AffineCoupling(nn.Module):
    """x = [xa, xb]; xb -> (xb + shift(xa, c)) * sigmoid(raw(xa, c) + 2); xa passes through."""

    def __init__(self, dim: int, cond_dim: int, hidden: int = 256):
        super().__init__()
        self.d_a = dim // 2
        self.d_b = dim - self.d_a
        self.net = nn.Sequential(
            nn.Linear(self.d_a + cond_dim, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, 2 * self.d_b),
        )
        nn.init.zeros_(self.net[-1].weight)  # start as the identity map
        nn.init.zeros_(self.net[-1].bias)

    def _shift_scale(self, xa, cond):
        h = self.net(torch.cat([xa, cond], dim=-1))
        shift, raw = h[:, : self.d_b], h[:, self.d_b :]
        log_scale = F.logsigmoid(raw + 2.0)  # the paper's sigmoid(a + 2): scale in (0, 1), starts near 0.88
        return shift, log_scale

    def forward(self, x, cond):
        xa, xb = x[:, : self.d_a], x[:, self.d_a :]
        shift, log_scale = self._shift_scale(xa, cond)
        zb = (xb + shift) * torch.exp(log_scale)
        return torch.cat([xa, zb], dim=-1), log_scale.sum(-1)

    def inverse(self, z, cond):
        za, zb = z[:, : self.d_a], z[:, self.d_a :]
        shift, log_scale = self._shift_scale(za, cond)
        xb = zb * torch.exp(-log_scale) - shift
        return torch.cat([za, xb], dim=-1)


class FlowStep(nn.Module):
    def __init__(self, dim: int, cond_dim: int, hidden: int, seed: int):
        super().__init__()
        self.norm = ActNorm(dim)
        self.mix = InvertibleLinear(dim, seed=seed)
        self.coupling = AffineCoupling(dim, cond_dim, hidden)

    def forward(self, x, cond):
        x, ld1 = self.norm(x)
        x, ld2 = self.mix(x)
        x, ld3 = self.coupling(x, cond)
        return x, ld1 + ld2 + ld3

    def inverse(self, z, cond):
        z = self.coupling.inverse(z, cond)
        z = self.mix.inverse(z)
        return self.norm.inverse(z)


class ConditionalFlow(nn.Module):
    """A stack of FlowSteps with a standard Gaussian prior."""

    def __init__(self, dim: int, cond_dim: int, n_steps: int = 8, hidden: int = 256):
        super().__init__()
        self.dim = dim
        self.steps = nn.ModuleList([FlowStep(dim, cond_dim, hidden, seed=i) for i in range(n_steps)])

    def forward(self, x, cond):
        logdet = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for step in self.steps:
            x, ld = step(x, cond)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z, cond):
        for step in reversed(self.steps):
            z = step.inverse(z, cond)
        return z

    def log_prob(self, x, cond):
        z, logdet = self.forward(x, cond)
        log_pz = -0.5 * (z**2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_pz + logdet

    def sample(self, cond, temperature: float = 1.0, noise: torch.Tensor | None = None):
        if noise is None:
            noise = torch.randn(cond.shape[0], self.dim, device=cond.device, dtype=cond.dtype)
        return self.inverse(noise * temperature, cond)


def sample_with_redraws(sample, draw_noise, bound: float = 25.0, max_redraws: int = 3):
    """`sample(noise)` -> a pose in standardised units; redraw the noise (at most `max_redraws` times)
    while the pose is non-finite or beyond `bound` std in some dimension: the flow's inverse can amplify a
    far-tail draw into an exploding pose. The live engine applies the same rule (realtime/engine.py), so
    offline generation and benchmarks see what the live dancer does."""
    x = sample(draw_noise())
    for _ in range(max_redraws):
        if torch.isfinite(x).all() and x.abs().max() <= bound:
            break
        x = sample(draw_noise())
    return x
