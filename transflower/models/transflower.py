"""Transflower-live: a causal, cacheable Transflower (Valle-Perez et al. 2021, arXiv 2106.13871).

Read top to bottom: rotary positions -> causal band attention (with a one-frame cached step) ->
transformer block -> the model (motion encoder + audio encoder -> fused per frame -> cross-modal
encoder -> a normalizing flow over the next pose, conditioned on the encoder's output).

What differs from the paper, and why:
- Causal band attention: frame t attends to itself and the `context - 1` frames before it, in every
  layer. Then a live step computes one new frame and reuses cached keys/values (a ring of
  `context - 1` slots per layer equals exactly this band mask; recomputing a sliding window would not).
- Rotary positions (RoPE) applied to keys *before* they are cached, indexed by the absolute frame:
  attention depends only on frame differences, so the cache never needs re-encoding as it slides.
- Music lookahead is explicit: the audio token fused at frame t is the audio feature of frame
  t + lookahead (0 = none; the paper effectively used 20 frames = 1 s).
- The modalities are fused per frame (concatenate, project) rather than as separate tokens, so one
  frame = one token per layer in the cross-modal encoder: half the cache and step cost.
- The flow models the change from the previous pose (`residual`): x_t = x_{t-1} + flow sample. Its
  noise then lives at the scale of one frame's motion, not of the whole pose distribution, which is
  what made pose-space samples twitch (issue 11's ablation in experiments/2026-11-benchmark-history.md). The leading
  `velocity_dims` features (the root's velocity and turn rate: already changes) are sampled as they
  are; a residual on them would make the root's speed a random walk.
- An optional style label (`styles` > 0: a learned embedding of a weight vector over style names,
  entry 0 = "auto") is added to every fused token. Weights, not an index, so a live switch can blend two
  styles.
- What training adds to the likelihood (pose noise against exposure bias, style label dropout, music swap,
  scheduled sampling, the style-contrast term) is not the model's: those are plug-ins the YAML lists under
  `training_terms` (transflower/models/training_terms.py), inert at inference. Here: the backbone, the
  flow, `nll` / `frame_log_prob`, `sample`, the live `step` and its cache.

Shapes: B batch, T frames, D_m motion dims, D_a audio dims, d model width, H heads, hd head width.
Teacher forcing: motion_in[t] = pose x_{t-1}, audio_in[t] = audio a_{t+lookahead}, target[t] = x_t;
style_in[t] = the clip's style index (0 = auto).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from transflower.models.flows import ConditionalFlow


@dataclass
class TransflowerConfig:
    motion_dim: int = 46
    audio_dim: int = 68
    d_model: int = 256
    n_heads: int = 4
    motion_layers: int = 2
    audio_layers: int = 2
    cross_layers: int = 4
    ff_mult: int = 4
    context: int = 120  # frames each layer sees (itself + context-1 before)
    lookahead: int = 2  # frames of future music (latency = lookahead / fps)
    dropout: float = 0.1
    flow_steps: int = 8
    flow_hidden: int = 256
    rope_base: float = 10000.0
    residual: bool = False  # the flow samples x_t - x_{t-1} (the shipped model: True)
    velocity_dims: int = 3  # leading features that are velocities, never residual (MotionFeatures: dx, dz, dyaw)
    residual_leak: float = 0.0  # x_t = (1 - leak) x_{t-1} + sample: a pull towards the mean pose against drift
    styles: int = 0  # number of style weights including "auto" (0: no style input)

    # options that no longer exist, with the value that keeps what they did: an older checkpoint saved with
    # them at that value loads (transflower.models.build_model drops them), any other value is refused
    # (the training terms an older model_config held are not retired but moved: training_terms.py)
    retired: ClassVar[dict] = {"noisy_base": False, "flow_skip": False, "velocity_leak": 1.0, "contact": 0.0,
                               "contact_margin": 0.1, "contact_cm": 5.0, "contact_planted": 0.0, "contact_pace": 0.0,
                               "contact_pace_cap": 0.0, "contact_styles": []}

    def __post_init__(self):
        from transflower.errors import UserError

        if self.styles == "auto":  # `transflower train` resolves it against the data; a model built without data has none
            self.styles = 0
        positive = ["motion_dim", "audio_dim", "d_model", "n_heads", "motion_layers", "audio_layers", "cross_layers",
                    "ff_mult", "flow_steps", "flow_hidden"]
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise UserError(f"model_config.{name}: expected a positive integer, got {v!r}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise UserError(f"model_config.d_model ({self.d_model}) must be n_heads ({self.n_heads}) x an even head width (rotary positions rotate pairs)")
        if not isinstance(self.context, int) or self.context < 2:
            raise UserError(f"model_config.context: expected an integer >= 2 frames, got {self.context!r}")
        if not isinstance(self.lookahead, int) or not 0 <= self.lookahead <= 100:
            raise UserError(f"model_config.lookahead: expected an integer number of frames in 0..100, got {self.lookahead!r}")
        for name in ("dropout", "residual_leak"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise UserError(f"model_config.{name}: expected a value in [0, 1), got {getattr(self, name)!r}")
        if not isinstance(self.styles, int) or self.styles < 0 or self.styles == 1:
            raise UserError(f"model_config.styles: expected 0 (no style input) or >= 2 (auto + styles), got {self.styles!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_layers(self) -> int:
        return self.motion_layers + self.audio_layers + self.cross_layers

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Rotary positions


def rope_angles(positions: torch.Tensor, head_dim: int, base: float = 10000.0):
    """cos, sin of shape (*positions.shape, head_dim/2), computed in float64 for long runs."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = positions.to(torch.float64)[..., None] * inv_freq
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., T, hd) rotated pairwise (first half, second half); cos/sin broadcast (T, hd/2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def band_mask(T: int, context: int, device=None) -> torch.Tensor:
    """(T, T) bool, True where query i may attend key j: i - context < j <= i."""
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    return (j <= i) & (j > i - context)


# ---------------------------------------------------------------------------------------------
# Attention and block


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: TransflowerConfig):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x, cos, sin, mask):
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, d))

    def step(self, x, cos, sin, cache_k, cache_v, cache_bias):
        """One new frame. x (B, d); cos/sin (hd/2,); cache_k/v (B, C, H, hd) with rotated keys;
        cache_bias (B, C): 0 for filled slots, -inf (large negative) for empty ones.
        Returns y (B, d) and this frame's rotated key and value (B, H, hd) for the host to cache."""
        B, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (t.view(B, self.n_heads, self.head_dim) for t in (q, k, v))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        keys = torch.cat([cache_k, k[:, None]], dim=1)  # (B, C+1, H, hd)
        values = torch.cat([cache_v, v[:, None]], dim=1)
        scores = torch.einsum("bhd,bchd->bhc", q, keys) / math.sqrt(self.head_dim)
        bias = torch.cat([cache_bias, torch.zeros_like(cache_bias[:, :1])], dim=1)  # the new frame is always visible
        att = torch.softmax(scores + bias[:, None, :], dim=-1)
        y = torch.einsum("bhc,bchd->bhd", att, values).reshape(B, d)
        return self.proj(y), k, v


class Block(nn.Module):
    """Pre-LN transformer block (more stable to train than the paper's post-LN)."""

    def __init__(self, cfg: TransflowerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ff_mult * cfg.d_model), nn.GELU(),
            nn.Linear(cfg.ff_mult * cfg.d_model, cfg.d_model), nn.Dropout(cfg.dropout),
        )

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.ln1(x), cos, sin, mask)
        return x + self.mlp(self.ln2(x))

    def step(self, x, cos, sin, cache_k, cache_v, cache_bias):
        a, k, v = self.attn.step(self.ln1(x), cos, sin, cache_k, cache_v, cache_bias)
        x = x + a
        return x + self.mlp(self.ln2(x)), k, v


# ---------------------------------------------------------------------------------------------
# The model


class CausalBackbone(nn.Module):
    """Motion encoder + audio encoder -> per-frame fusion -> cross-modal encoder -> (B, T, d)."""

    def __init__(self, cfg: TransflowerConfig):
        super().__init__()
        self.cfg = cfg
        self.motion_in = nn.Linear(cfg.motion_dim, cfg.d_model)
        self.audio_in = nn.Linear(cfg.audio_dim, cfg.d_model)
        self.motion_enc = nn.ModuleList([Block(cfg) for _ in range(cfg.motion_layers)])
        self.audio_enc = nn.ModuleList([Block(cfg) for _ in range(cfg.audio_layers)])
        self.fuse = nn.Linear(2 * cfg.d_model, cfg.d_model)
        self.style_in = nn.Linear(cfg.styles, cfg.d_model, bias=False) if cfg.styles else None
        self.cross_enc = nn.ModuleList([Block(cfg) for _ in range(cfg.cross_layers)])
        self.ln_out = nn.LayerNorm(cfg.d_model)

    def layers(self):
        """All blocks in cache order: motion encoder, audio encoder, cross-modal encoder."""
        return [*self.motion_enc, *self.audio_enc, *self.cross_enc]

    def forward(self, motion_in, audio_in, style=None, start_frame: int = 0):
        """style: (B, T, S) weights or None (-> "auto" when the model has styles)."""
        B, T, _ = motion_in.shape
        cos, sin = rope_angles(torch.arange(start_frame, start_frame + T, device=motion_in.device), self.cfg.head_dim, self.cfg.rope_base)
        mask = band_mask(T, self.cfg.context, motion_in.device)
        m = self.motion_in(motion_in)
        for blk in self.motion_enc:
            m = blk(m, cos, sin, mask)
        a = self.audio_in(audio_in)
        for blk in self.audio_enc:
            a = blk(a, cos, sin, mask)
        h = self.fuse(torch.cat([m, a], dim=-1))
        if self.style_in is not None:
            h = h + self.style_in(style if style is not None else auto_style(B, T, self.cfg.styles, h.device))
        for blk in self.cross_enc:
            h = blk(h, cos, sin, mask)
        return self.ln_out(h)

    def step(self, motion_frame, audio_frame, cos, sin, cache_k, cache_v, cache_bias, style=None):
        """motion_frame (B, D_m), audio_frame (B, D_a); cache_k/v (n_layers, B, C, H, hd); style (B, S).
        Returns h (B, d), new_k/new_v (n_layers, B, H, hd)."""
        new_k, new_v = [], []
        m = self.motion_in(motion_frame)
        a = self.audio_in(audio_frame)
        i = 0
        for blk in self.motion_enc:
            m, k, v = blk.step(m, cos, sin, cache_k[i], cache_v[i], cache_bias)
            new_k.append(k); new_v.append(v); i += 1
        for blk in self.audio_enc:
            a, k, v = blk.step(a, cos, sin, cache_k[i], cache_v[i], cache_bias)
            new_k.append(k); new_v.append(v); i += 1
        h = self.fuse(torch.cat([m, a], dim=-1))
        if self.style_in is not None:
            h = h + self.style_in(style)
        for blk in self.cross_enc:
            h, k, v = blk.step(h, cos, sin, cache_k[i], cache_v[i], cache_bias)
            new_k.append(k); new_v.append(v); i += 1
        return self.ln_out(h), torch.stack(new_k), torch.stack(new_v)


class TransflowerLive(nn.Module):
    """Causal backbone + conditional normalizing flow over the next pose."""

    def __init__(self, cfg: TransflowerConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = CausalBackbone(cfg)
        self.flow = ConditionalFlow(cfg.motion_dim, cfg.d_model, cfg.flow_steps, cfg.flow_hidden)
        base = torch.zeros(cfg.motion_dim)  # > 0 where the flow samples a change from the previous pose
        if cfg.residual:
            # (1 - leak): the previous pose decays towards the data's mean (0 in standardised units) unless the
            # flow keeps it; the flow's output is a bounded function of the backbone's normalised state, so a
            # pose that has drifted far is pulled back instead of wandering on (a damped random walk)
            base[cfg.velocity_dims:] = 1.0 - float(cfg.residual_leak)
        self.register_buffer("residual_mask", base, persistent=False)

    # training interface (transflower.train): what the dataset cuts, what is minimised
    def window_spec(self, seq_len: int):
        from transflower.dataset import WindowSpec

        L = self.cfg.lookahead
        if self.cfg.styles:
            return WindowSpec(["motion", "audio", "style"], ["motion"], [seq_len] * 3, [seq_len], [0, 1 + L, 1], [1])
        return WindowSpec(["motion", "audio"], ["motion"], [seq_len, seq_len], [seq_len], [0, 1 + L], [1])

    def loss(self, inputs, outputs):
        """The teacher-forced NLL of the window's poses under its own style labels: what validation reports.
        Training adds the terms its YAML lists (transflower.models.training_terms.TrainingTerms.loss)."""
        style = self.style_one_hot(inputs[2][..., 0].long()) if self.cfg.styles else None
        return self.nll(inputs[0], inputs[1], outputs[0], style)

    def style_one_hot(self, idx):
        """(B, T) style indices (0 = auto) -> (B, T, S) weights."""
        return F.one_hot(idx.clamp(0, self.cfg.styles - 1), self.cfg.styles).float()

    def nll(self, motion_in, audio_in, target, style=None):
        """Mean negative log-likelihood per dimension (nats) of the poses, over all frames, the encoder seeing
        the data's past poses. With `residual` the flow scores x_t - x_{t-1}; the shift has unit Jacobian, so
        the number is the same pose likelihood either way."""
        return -self.frame_log_prob(motion_in, motion_in, audio_in, target, style).mean() / target.shape[-1]

    def frame_log_prob(self, motion_in, seen, audio_in, target, style=None):
        """(B, T) log-likelihood (nats) of each target pose given what the encoder saw (`seen`: the past
        poses, as training's terms may have changed them; motion_in: the data's, the residual's base)."""
        B, T, D = target.shape
        h = self.backbone(seen, audio_in, style)
        x = target - self.residual_mask * motion_in
        return self.flow.log_prob(x.reshape(B * T, D), h.reshape(B * T, -1)).reshape(B, T)

    def sample(self, motion_in, audio_in, temperature: float = 1.0, noise=None, style=None, seen=None):
        """Sample every frame's pose given teacher-forced inputs (B, T, D_m); for tests, eval and scheduled
        sampling. seen: what the encoder sees of the past poses when it is not motion_in itself (the
        residual's base stays motion_in). Without noise, it is drawn after the backbone's pass."""
        B, T, _ = motion_in.shape
        h = self.backbone(motion_in if seen is None else seen, audio_in, style).reshape(B * T, -1)
        if noise is not None:
            noise = noise.reshape(B * T, -1)
        return self.residual_mask * motion_in + self.flow.sample(h, temperature, noise).reshape(B, T, -1)

    def step(self, motion_frame, audio_frame, cos, sin, cache_k, cache_v, cache_bias, noise, style=None):
        """The live step: next pose (B, D_m) from the newest frame, the cache and (scaled) noise."""
        if self.cfg.styles and style is None:
            style = auto_style(motion_frame.shape[0], None, self.cfg.styles, motion_frame.device)
        h, new_k, new_v = self.backbone.step(motion_frame, audio_frame, cos, sin, cache_k, cache_v, cache_bias, style)
        pose = self.residual_mask * motion_frame + self.flow.inverse(noise, h)
        return pose, new_k, new_v

    def empty_cache(self, batch: int = 1):
        c = self.cfg
        shape = (c.n_layers, batch, c.context - 1, c.n_heads, c.head_dim)
        return torch.zeros(shape), torch.zeros(shape), torch.full((batch, c.context - 1), -1e9)


def auto_style(B: int, T: int | None, S: int, device=None) -> torch.Tensor:
    """Style weights meaning "no label": all weight on entry 0, shape (B, T, S) or (B, S) when T is None."""
    shape = (B, S) if T is None else (B, T, S)
    w = torch.zeros(shape, device=device)
    w[..., 0] = 1.0
    return w


class KVCacheRunner:
    """Host-side ring cache around `TransflowerLive.step` (torch); the ONNX engine mirrors it in numpy."""

    def __init__(self, model: TransflowerLive, batch: int = 1, style=None):
        self.model, self.cfg = model, model.cfg
        self.cache_k, self.cache_v, self.cache_bias = model.empty_cache(batch)
        self.frame = 0
        self.style = None  # (B, S) weights for a style-conditioned model; other models take none
        if getattr(self.cfg, "styles", 0):
            self.style = (auto_style(batch, None, self.cfg.styles) if style is None
                          else torch.as_tensor(style, dtype=torch.float32).reshape(1, -1).expand(batch, -1))

    @torch.no_grad()
    def step(self, motion_frame, audio_frame, noise):
        cfg = self.cfg
        cos, sin = rope_angles(torch.tensor([self.frame]), cfg.head_dim, cfg.rope_base)
        extra = () if self.style is None else (self.style,)
        pose, k, v = self.model.step(motion_frame, audio_frame, cos[0], sin[0], self.cache_k, self.cache_v, self.cache_bias,
                                     noise, *extra)
        slot = self.frame % (cfg.context - 1)
        self.cache_k[:, :, slot] = k
        self.cache_v[:, :, slot] = v
        self.cache_bias[:, slot] = 0.0
        self.frame += 1
        return pose

