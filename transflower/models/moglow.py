"""MoGlow-style baseline (Henter, Alexanderson & Beskow 2020, arXiv 1905.06598), issue 3.

A recurrent autoregressive flow: an LSTM runs over frames; at frame t its input is the previous pose
x_{t-1} and the control, here the music of frames t..t+lookahead (MoGlow's control window, future part);
its output h_t conditions the same ConditionalFlow as TransflowerLive (flows.py) over the pose x_t.
Trained by NLL on the same windows and data as the other models; generation steps the LSTM state one
frame at a time (O(1) per frame, causal up to the lookahead).

What differs from MoGlow as published, and why:
- MoGlow puts an LSTM inside every coupling network; here one shared 2-layer LSTM conditions all
  coupling nets (the flow is the one every model here uses, so only the sequence model differs).
- MoGlow conditions on a window of several past poses and applies dropout to them; here the LSTM state
  carries the past and only x_{t-1} is fed (plus ordinary dropout between LSTM layers).

Shapes: B batch, T frames, D_m motion dims, D_a audio dims, L lookahead, Hd LSTM width.
Teacher forcing: motion_in[t] = x_{t-1}; audio_in is (B, T + L, D_a) starting at frame t=0's audio
(a_t .. a_{t+L} is audio_in[t : t+L+1]); target[t] = x_t.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from transflower.models.flows import ConditionalFlow, sample_with_redraws


@dataclass
class MoGlowConfig:
    motion_dim: int = 46
    audio_dim: int = 68
    hidden: int = 256  # LSTM width
    lstm_layers: int = 2
    lookahead: int = 2  # frames of future music in the control window (latency = lookahead / fps)
    dropout: float = 0.1
    flow_steps: int = 8
    flow_hidden: int = 256

    def __post_init__(self):
        from transflower.errors import UserError

        for name in ("motion_dim", "audio_dim", "hidden", "lstm_layers", "lookahead", "flow_steps", "flow_hidden"):
            v, lo = getattr(self, name), 0 if name == "lookahead" else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise UserError(f"model_config.{name}: expected an integer >= {lo}, got {v!r}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise UserError(f"model_config.dropout: expected a number in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class MoGlow(nn.Module):
    """LSTM over [previous pose, music window] -> conditional normalizing flow over the current pose."""

    def __init__(self, cfg: MoGlowConfig):
        super().__init__()
        self.cfg = cfg
        in_dim = cfg.motion_dim + (cfg.lookahead + 1) * cfg.audio_dim
        self.lstm = nn.LSTM(in_dim, cfg.hidden, num_layers=cfg.lstm_layers, batch_first=True,
                            dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0)
        self.flow = ConditionalFlow(cfg.motion_dim, cfg.hidden, cfg.flow_steps, cfg.flow_hidden)

    # training interface (transflower.train)
    def window_spec(self, seq_len: int):
        from transflower.dataset import WindowSpec

        L = self.cfg.lookahead
        return WindowSpec(["motion", "audio"], ["motion"], [seq_len, seq_len + L], [seq_len], [0, 1], [1])

    def loss(self, inputs, outputs):
        motion_in, audio_in = inputs
        return self.nll(motion_in, audio_in, outputs[0])

    def control(self, audio_in):
        """(B, T + L, D_a) -> per-frame music windows (B, T, (L+1) * D_a), frame-major."""
        L = self.cfg.lookahead
        w = audio_in.unfold(1, L + 1, 1)  # (B, T, D_a, L+1)
        return w.transpose(-1, -2).reshape(w.shape[0], w.shape[1], -1)

    def forward(self, motion_in, audio_in, state=None):
        """motion_in (B, T, D_m), audio_in (B, T + L, D_a) -> h (B, T, Hd), LSTM state (h, c)."""
        x = torch.cat([motion_in, self.control(audio_in)], dim=-1)
        return self.lstm(x, state)

    def nll(self, motion_in, audio_in, target):
        """Mean negative log-likelihood per dimension (nats) over all frames."""
        B, T, D = target.shape
        h, _ = self(motion_in, audio_in)
        return -self.flow.log_prob(target.reshape(B * T, D), h.reshape(B * T, -1)).mean() / D

    @torch.no_grad()
    def generate(self, seed_motion, audio, num_frames: int, temperature: float = 1.0, generator=None):
        """seed_motion (S >= 1, D_m): frames -S..-1; audio (N, D_a): frames 0..N-1 -> poses (num_frames, D_m).

        Step j feeds x_j and music a_{j+1} .. a_{j+1+L} (indices clamped to [0, N-1]) and samples x_{j+1}."""
        S, N, L, D = seed_motion.shape[0], audio.shape[0], self.cfg.lookahead, self.cfg.motion_dim
        if S < 1:
            raise ValueError("generate needs at least one seed frame")
        dev = next(self.parameters()).device
        seed_motion, audio = seed_motion.float().to(dev), audio.float().to(dev)
        was_training = self.training
        self.eval()
        try:
            def music(j):  # (1, 1 + L, D_a): the audio rows seen when predicting x_{j+1}
                idx = torch.arange(j + 1, j + 2 + L, device=dev).clamp(0, N - 1)
                return audio[idx][None]

            state = None
            for j in range(-S, -1):  # run the LSTM over the seed (predictions of known poses discarded)
                _, state = self(seed_motion[j + S][None, None], music(j), state)
            prev, out = seed_motion[-1], []
            for i in range(num_frames):
                h, state = self(prev[None, None], music(i - 1), state)  # h (1, 1, Hd)
                prev = sample_with_redraws(lambda noise: self.flow.inverse(noise, h[:, 0])[0],
                                           lambda: (torch.randn(1, D, generator=generator) * temperature).to(dev))
                out.append(prev)
            return torch.stack(out)
        finally:
            self.train(was_training)
