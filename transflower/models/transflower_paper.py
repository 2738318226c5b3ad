"""The paper's Transflower layout (Valle-Perez et al. 2021, arXiv 2106.13871), issue 3's comparison model.

Same structure as the public `transflower_expmap` config, sized to train on CPU here (it had 122M
parameters; see /work/shared/FIELD_NOTES.md):
- Inputs: a window of `motion_window` (120) past poses x_{t-120}..x_{t-1} and `audio_window` (140) audio
  frames a_{t-120}..a_{t+19}: the music reaches 20 frames (1 s) beyond the motion window, i.e.
  the predicted frame t's own audio and 19 after it.
- Per-modality encoders (stock post-LN nn.TransformerEncoderLayer, no mask: bidirectional within the
  window), learned absolute positional embeddings per modality, then a cross-modal encoder over the
  concatenated motion + audio tokens (learned positions again, bidirectional).
- The first output token conditions a normalizing flow over the next pose (output length 1; the paper
  trained on 3 and kept the first at generation).
- Generation recomputes the whole window for every frame (`step_full_window`): no cache is possible,
  since the positions are absolute within the window and every token attends to the future of the
  window. This is the "original approach" the latency benchmark compares the cached live step against.

What differs, and why: the flow is flows.py's ConditionalFlow (MLP coupling nets, ActNorm) rather than
the paper's transformer coupling nets and batch-norm, so that all flow models here share one flow;
learned absolute embeddings instead of the learned additive attention bias (the brief allows either).

Shapes: B batch, Wm motion window, Wa audio window, D_m motion dims, D_a audio dims, d model width.
Dataset window starting at s: motion_in = x[s : s+Wm], audio_in = a[s : s+Wa], target = x[s+Wm].
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from transflower.models.flows import ConditionalFlow, sample_with_redraws


@dataclass
class TransflowerPaperConfig:
    motion_dim: int = 46
    audio_dim: int = 68
    d_model: int = 256
    n_heads: int = 4
    motion_layers: int = 2
    audio_layers: int = 2
    cross_layers: int = 4
    ff_mult: int = 4
    motion_window: int = 120  # past poses seen (6 s at 20 fps)
    audio_window: int = 140  # audio frames seen, from the motion window's first frame: 20 past the target
    dropout: float = 0.1
    flow_steps: int = 8
    flow_hidden: int = 256

    def __post_init__(self):
        from transflower.errors import UserError

        for name in ("motion_dim", "audio_dim", "d_model", "n_heads", "motion_layers", "audio_layers", "cross_layers",
                     "ff_mult", "motion_window", "audio_window", "flow_steps", "flow_hidden"):
            v, lo = getattr(self, name), 0 if name.endswith("layers") else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise UserError(f"model_config.{name}: expected an integer >= {lo}, got {v!r}")
        if self.d_model % self.n_heads:
            raise UserError(f"model_config.d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise UserError(f"model_config.dropout: expected a number in [0, 1), got {self.dropout!r}")

    @property
    def future_frames(self) -> int:
        """Audio frames from the predicted frame t on that the model hears: a_t..a_{t+19}, the paper's 20 (1 s)."""
        return self.audio_window - self.motion_window

    def to_dict(self) -> dict:
        return asdict(self)


def _encoder(cfg: TransflowerPaperConfig, n_layers: int) -> nn.ModuleList:
    """Stock post-LN encoder layers (the paper's `nn.TransformerEncoderLayer`, ReLU, norm after residual)."""
    return nn.ModuleList([
        nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, cfg.ff_mult * cfg.d_model, cfg.dropout,
                                   batch_first=True, norm_first=False)
        for _ in range(n_layers)
    ])


class TransflowerPaper(nn.Module):
    """Bidirectional window encoders -> cross-modal encoder -> first token -> conditional flow."""

    def __init__(self, cfg: TransflowerPaperConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.motion_in = nn.Linear(cfg.motion_dim, d)
        self.audio_in = nn.Linear(cfg.audio_dim, d)
        self.motion_pos = nn.Parameter(0.02 * torch.randn(1, cfg.motion_window, d))
        self.audio_pos = nn.Parameter(0.02 * torch.randn(1, cfg.audio_window, d))
        self.cross_pos = nn.Parameter(0.02 * torch.randn(1, cfg.motion_window + cfg.audio_window, d))
        self.motion_enc = _encoder(cfg, cfg.motion_layers)
        self.audio_enc = _encoder(cfg, cfg.audio_layers)
        self.cross_enc = _encoder(cfg, cfg.cross_layers)
        self.flow = ConditionalFlow(cfg.motion_dim, d, cfg.flow_steps, cfg.flow_hidden)

    # training interface (transflower.train): the windows are fixed by the config, seq_len is unused
    def window_spec(self, seq_len: int | None = None):
        from transflower.dataset import WindowSpec

        c = self.cfg
        return WindowSpec(["motion", "audio"], ["motion"], [c.motion_window, c.audio_window], [1], [0, 0], [c.motion_window])

    def loss(self, inputs, outputs):
        motion_in, audio_in = inputs
        return self.nll(motion_in, audio_in, outputs[0][:, 0])

    def forward(self, motion_window, audio_window):
        """(B, Wm, D_m), (B, Wa, D_a) -> the flow's conditioning for the next pose (B, d)."""
        m = self.motion_in(motion_window) + self.motion_pos
        for layer in self.motion_enc:
            m = layer(m)
        a = self.audio_in(audio_window) + self.audio_pos
        for layer in self.audio_enc:
            a = layer(a)
        h = torch.cat([m, a], dim=1) + self.cross_pos  # (B, Wm + Wa, d)
        for layer in self.cross_enc:
            h = layer(h)
        return h[:, 0]

    def nll(self, motion_window, audio_window, target):
        """target (B, D_m): the pose after the motion window. Mean NLL per dimension (nats)."""
        return -self.flow.log_prob(target, self(motion_window, audio_window)).mean() / target.shape[-1]

    def step_full_window(self, motion_window, audio_window, noise):
        """One generated frame by full-window recompute: (B, Wm, D_m), (B, Wa, D_a), noise (B, D_m)
        (already scaled by the temperature) -> pose (B, D_m). The latency benchmark times this."""
        return self.flow.inverse(noise, self(motion_window, audio_window))

    @torch.no_grad()
    def generate(self, seed_motion, audio, num_frames: int, temperature: float = 1.0, generator=None):
        """seed_motion (S >= 1, D_m): frames -S..-1 (front-padded with its first row up to Wm frames);
        audio (N, D_a): frames 0..N-1 -> poses (num_frames, D_m). Frame i sees poses i-Wm..i-1 and
        audio a_{i-Wm} .. a_{i-Wm+Wa-1} (indices clamped to [0, N-1]: edge rows repeat)."""
        c, N = self.cfg, audio.shape[0]
        if seed_motion.shape[0] < 1:
            raise ValueError("generate needs at least one seed frame")
        dev = next(self.parameters()).device
        seed_motion, audio = seed_motion.float().to(dev), audio.float().to(dev)
        pad = max(0, c.motion_window - seed_motion.shape[0])
        hist = torch.cat([seed_motion[:1].expand(pad, -1), seed_motion])[-c.motion_window :]  # (Wm, D_m)
        offsets = torch.arange(c.audio_window, device=dev) - c.motion_window
        was_training = self.training
        self.eval()
        try:
            out = []
            for i in range(num_frames):
                aw = audio[(offsets + i).clamp(0, N - 1)]
                cond = self(hist[None], aw[None])  # the window is encoded once; a redraw reruns the flow only
                pose = sample_with_redraws(lambda noise: self.flow.inverse(noise, cond)[0],
                                           lambda: (torch.randn(1, c.motion_dim, generator=generator) * temperature).to(dev))
                out.append(pose)
                hist = torch.cat([hist[1:], pose[None]])
            return torch.stack(out)
        finally:
            self.train(was_training)
