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
- Robustness to its own outputs (exposure bias): in training the poses the encoder sees are noised
  (`pose_noise`) and whole previous poses dropped (`pose_dropout`, MoGlow's autoregressive dropout);
  the residual's base stays the clean previous pose. `scheduled_sampling` goes further: some past poses
  the encoder sees are the model's own samples (parallel scheduled sampling), so a rollout's drift is
  something training has shown it, with the data's next pose as the target.
- An optional style label (`styles` > 0: a learned embedding of a weight vector over style names,
  entry 0 = "auto") is added to every fused token; training drops the label (-> "auto") for a whole
  window with probability `style_dropout`, so "auto" lets the music decide. Weights, not an index,
  so a live switch can blend two styles. `music_swap` trains some labelled windows on another style's
  music (the label, not the music, must carry the style); `style_contrast` adds the cross-entropy of
  the model's own label posterior on self-fed windows, so the label must also say how a drifted dance
  goes on (`style_contrast_loss`).

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
    pose_noise: float = 0.0  # std (standardised units) of noise on the encoder's input poses, training only
    residual_leak: float = 0.0  # x_t = (1 - leak) x_{t-1} + sample: a pull towards the mean pose against drift
    pose_dropout: float = 0.0  # probability of zeroing a whole input pose, training only
    styles: int = 0  # number of style weights including "auto" (0: no style input)
    style_dropout: float = 0.3  # probability of training a window as "auto"
    music_swap: float = 0.0  # probability of training a labelled window on another window's music (see loss)
    scheduled_sampling: float = 0.0  # probability that the encoder sees the model's own sample of a past pose, training only
    scheduled_sampling_passes: int = 1  # passes of parallel sampling: pass k feeds on pass k-1's samples (k-step drift)
    scheduled_sampling_temperature: float = 0.6  # the temperature those samples are drawn at (about the live default, 0.5)
    scheduled_sampling_features: str = "all"  # "all", or "root_velocity": only the leading velocity_dims are fed back
    scheduled_sampling_styles: list = ()  # style indices whose labelled windows are self-fed (empty: every window)
    style_contrast: float = 0.0  # weight of the style-discriminative term (see style_contrast_loss), training only
    style_contrast_windows: int = 8  # labelled windows per batch it is computed on (each costs a pass per style)

    # options that no longer exist, with the value that keeps what they did: an older checkpoint saved with
    # them at that value loads (transflower.models.build_model drops them), any other value is refused
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
        for name in ("dropout", "pose_dropout", "style_dropout", "music_swap", "residual_leak", "scheduled_sampling"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise UserError(f"model_config.{name}: expected a value in [0, 1), got {getattr(self, name)!r}")
        if not isinstance(self.scheduled_sampling_passes, int) or self.scheduled_sampling_passes < 1:
            raise UserError(f"model_config.scheduled_sampling_passes: expected an integer >= 1, got {self.scheduled_sampling_passes!r}")
        if not float(self.scheduled_sampling_temperature) > 0.0:
            raise UserError(f"model_config.scheduled_sampling_temperature: expected a value > 0, got {self.scheduled_sampling_temperature!r}")
        if self.scheduled_sampling_features not in ("all", "root_velocity"):
            raise UserError(f"model_config.scheduled_sampling_features: expected 'all' or 'root_velocity', got {self.scheduled_sampling_features!r}")
        for name in ("scheduled_sampling_styles",):
            ids = getattr(self, name) or ()
            if not isinstance(ids, (list, tuple)) or any(not isinstance(i, int) or not 1 <= i < max(self.styles, 1) for i in ids):
                raise UserError(f"model_config.{name}: expected style names of the data (indices 1..styles-1 once resolved), got {ids!r}")
        if not float(self.style_contrast) >= 0.0:
            raise UserError(f"model_config.style_contrast: expected a weight >= 0, got {self.style_contrast!r}")
        if not isinstance(self.style_contrast_windows, int) or self.style_contrast_windows < 1:
            raise UserError(f"model_config.style_contrast_windows: expected an integer >= 1, got {self.style_contrast_windows!r}")
        if float(self.style_contrast) > 0 and self.styles < 3:
            raise UserError(f"model_config.style_contrast: needs a model with at least two style labels (styles >= 3), got styles={self.styles!r}")
        if not float(self.pose_noise) >= 0.0:
            raise UserError(f"model_config.pose_noise: expected a value >= 0, got {self.pose_noise!r}")
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
        if not self.cfg.styles:
            return self.nll(inputs[0], inputs[1], outputs[0])
        idx = self.style_index(inputs[2])
        windows = None
        if self.cfg.scheduled_sampling_styles:
            windows = torch.isin(idx[:, 0], torch.tensor(list(self.cfg.scheduled_sampling_styles), device=idx.device))
        labels = inputs[2][..., 0].long()  # before dropout: whose music is whose
        audio = self.swap_music(inputs[1], idx, labels)
        style = self.style_one_hot(idx)
        if not (self.training and self.cfg.style_contrast > 0):
            return self.nll(inputs[0], audio, outputs[0], style, windows)
        fed = self.self_fed_input(inputs[0], audio, style, windows=windows)
        seen = self.encoder_input(fed)
        h = self.backbone(seen, audio, style)
        nll = -self.frame_log_prob(inputs[0], seen, audio, outputs[0], style, h=h).mean() / outputs[0].shape[-1]
        self.loss_terms = {"nll": nll.detach()}  # what training logs
        loss = nll
        if self.cfg.style_contrast > 0:
            contrast = self.style_contrast_loss(inputs[0], seen, audio, outputs[0], idx[:, 0])
            self.loss_terms["style_contrast"] = contrast.detach()
            loss = loss + self.cfg.style_contrast * contrast
        return loss

    def style_index(self, style_index):
        """(B, T, 1) style indices -> (B, T) long; in training a whole window becomes "auto" (index 0) with
        probability style_dropout."""
        idx = style_index[..., 0].long()
        if self.training and self.cfg.style_dropout > 0:
            drop = torch.rand(idx.shape[0], 1, device=idx.device) < self.cfg.style_dropout
            idx = torch.where(drop, torch.zeros_like(idx), idx)
        return idx

    def style_one_hot(self, idx):
        return F.one_hot(idx.clamp(0, self.cfg.styles - 1), self.cfg.styles).float()

    def swap_music(self, audio_in, idx, labels=None, swap=None):
        """In training, a labelled window hears another style's music with probability music_swap.

        In the data each style comes with its own music, so the music alone predicts the style and the
        label is redundant: the model learns to ignore it, and asking for a cha-cha on a waltz does little.
        Windows whose motion keeps its label but whose music is another's teach that the label, not the
        music, sets the style. Windows trained as "auto" keep their own music (auto = follow the music).
        The partner is drawn among the batch's windows of another style (labels: (B, T) before dropout,
        default idx); only where the batch has none is it the previous window. (Up to 2026-11-27 it was
        always the previous window: under balanced styles a third of the "swaps" kept music of the
        window's own style, so the shipped model's swap 0.3 was about 0.2 in effect.)
        swap (B,) bool fixes which windows swap (tests); auto windows never do."""
        B = audio_in.shape[0]
        if not (self.training and self.cfg.music_swap > 0) or B < 2:
            return audio_in
        own = (idx if labels is None else labels)[:, 0]
        other = own[None, :] != own[:, None]  # (B, B): window c's music is of another style than window b's
        pick = torch.rand(B, B, device=audio_in.device).masked_fill(~other, -1.0).argmax(1)
        previous = torch.arange(B, device=audio_in.device).roll(1)
        partner = torch.where(other.any(1), pick, previous)
        if swap is None:
            swap = torch.rand(B, device=audio_in.device) < self.cfg.music_swap
        swap = swap & (idx[:, 0] != 0)
        return torch.where(swap[:, None, None], audio_in[partner], audio_in)

    def encoder_input(self, motion_in):
        """What the encoder sees of the past poses: in training noised and partly dropped (exposure bias)."""
        if not self.training:
            return motion_in
        x = motion_in
        if self.cfg.pose_noise > 0:
            x = x + self.cfg.pose_noise * torch.randn_like(x)
        if self.cfg.pose_dropout > 0:
            keep = torch.rand(x.shape[:-1] + (1,), device=x.device) >= self.cfg.pose_dropout
            x = x * keep
        return x

    @torch.no_grad()
    def self_fed_input(self, motion_in, audio_in, style=None, noise=None, choose=None, windows=None):
        """Scheduled sampling, in parallel (Bengio et al. 2015; Duckworth et al. 2019, arXiv 1906.04331).

        A free rollout hears its own samples, never the data, and in some styles it drifts into a regime
        no clip has (the shipped rumba travelled at 2x the real pace while its one-step samples were right:
        benchmarks/README.md). Here each past pose (after the window's first) is, with probability
        `scheduled_sampling`, replaced by the model's own sample of it given the teacher-forced past; with
        several passes a pass samples from the previous pass's mix, so errors compound as in a rollout.
        With `scheduled_sampling_features: root_velocity` only the root's velocity and turn rate are fed
        back (the travel), and the body's poses stay the data's. With `scheduled_sampling_styles` only the
        windows labelled with those styles are self-fed, and "auto" and the other styles stay teacher-forced;
        `windows` (B,) bool says which (`loss` computes it from the labels).
        The targets stay the data's poses, so the model learns to come back from its own drift. No gradient
        flows through the samples. noise (passes, B, T, D) / choose (passes, B, T, 1) bool fix the draws (tests).
        motion_in (B, T, D) -> (B, T, D)."""
        p, c = self.cfg.scheduled_sampling, self.cfg
        if not (self.training and p > 0):
            return motion_in
        B, T, D = motion_in.shape
        x = motion_in
        for k in range(c.scheduled_sampling_passes):
            seen = self.encoder_input(x)
            h = self.backbone(seen, audio_in, style).reshape(B * T, -1)
            z = (torch.randn(B * T, D, device=x.device) if noise is None else noise[k].reshape(B * T, D))
            pred = self.residual_mask * x + self.flow.inverse(z * c.scheduled_sampling_temperature, h).reshape(B, T, D)
            # pred[t] is a sample of x_t, the encoder's input at t + 1; a far-tail draw must not poison the batch
            fed = torch.nan_to_num(pred[:, :-1], nan=0.0, posinf=0.0, neginf=0.0).clamp(-25.0, 25.0)
            if c.scheduled_sampling_features == "root_velocity":
                fed = torch.cat([fed[..., :c.velocity_dims], motion_in[:, 1:, c.velocity_dims:]], dim=-1)
            use = (torch.rand(B, T - 1, 1, device=x.device) < p) if choose is None else choose[k][:, 1:]
            if windows is not None:
                use = use & windows[:, None, None]
            x = torch.cat([motion_in[:, :1], torch.where(use, fed, motion_in[:, 1:])], dim=1)
        return x

    def nll(self, motion_in, audio_in, target, style=None, self_fed_windows=None):
        """Mean negative log-likelihood per dimension (nats) of the poses, over all frames: the training
        loss. With `residual` the flow scores x_t - x_{t-1}; the shift has unit Jacobian, so the number is
        the same pose likelihood either way."""
        seen = self.encoder_input(self.self_fed_input(motion_in, audio_in, style, windows=self_fed_windows))
        return -self.frame_log_prob(motion_in, seen, audio_in, target, style).mean() / target.shape[-1]

    def frame_log_prob(self, motion_in, seen, audio_in, target, style=None, h=None):
        """(B, T) log-likelihood (nats) of each target pose given what the encoder saw (`seen`: the past
        poses as encoder_input made them; motion_in: the data's, the residual's base). h: the backbone's
        output for `seen`, if already computed."""
        B, T, D = target.shape
        if h is None:
            h = self.backbone(seen, audio_in, style)
        x = target - self.residual_mask * motion_in
        return self.flow.log_prob(x.reshape(B * T, D), h.reshape(B * T, -1)).reshape(B, T)

    def style_contrast_loss(self, motion_in, seen, audio_in, target, label):
        """The style-discriminative term: the label must say how the dance goes on, even from a drifted past.

        Read as a classifier, the model is Bayes' rule over its labels: p(style | window) is the softmax of the
        window's log-likelihood under each label. On real dance it already picks the right label; but from a
        past it fed itself (scheduled sampling) the real continuation of a rumba was likelier under the cha-cha
        label than under rumba's, and a waltz's under any label but waltz (0% and 1% of test windows: a probe
        in experiments/2026-11-to-12-model-history.md, 2026-11-27), so in a rollout the label does not pull a drifting dance back to
        its style. This is the cross-entropy of that classifier, on up to `style_contrast_windows` labelled
        windows (label (B,), 0 = auto, skipped): logits are each label's mean log-likelihood per frame (nats),
        so it saturates once the right label wins by a few nats a frame, and it is divided by the pose's
        dimensions as the NLL is. One backbone pass per style label: the cost."""
        rows = (label > 0).nonzero().flatten()[: self.cfg.style_contrast_windows]
        if rows.numel() == 0:
            return target.new_zeros(())
        S, T, D = self.cfg.styles, target.shape[1], target.shape[-1]
        logits = []
        for k in range(1, S):
            style = self.style_one_hot(torch.full((rows.numel(), T), k, dtype=torch.long, device=target.device))
            logits.append(self.frame_log_prob(motion_in[rows], seen[rows], audio_in[rows], target[rows], style).mean(1))
        return F.cross_entropy(torch.stack(logits, 1), label[rows] - 1) / D

    def sample(self, motion_in, audio_in, temperature: float = 1.0, noise=None, style=None):
        """Sample every frame's pose given teacher-forced inputs (B, T, D_m); for tests and eval."""
        B, T, _ = motion_in.shape
        h = self.backbone(motion_in, audio_in, style).reshape(B * T, -1)
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

