"""Ablation: a training term that scores the pace of the model's own rollout, not only its next step.

Why (the motion-memory ablation, README): the pace is a one-step quantity. Each frame's change is close to
the previous frame's, which the encoder is given, so the next-step likelihood is met by carrying the current
speed on, whatever the music; the music's tempo would only explain the slow drift of the speed, a tiny share
of the likelihood. That holds with 6 s of past poses in view and with 0.45 s alike, and no fine-tune of the
likelihood moved the pace. This term asks for it directly: from a teacher-forced prefix of `prefix` frames,
the model dances `frames` frames on its own (the cached live step, its samples fed back, differentiable
through the flow's inverse), and the loss is the squared log-ratio of its mean change per frame to the real
dance's, per block of `block` frames. With tempo copies and splices, a block after a tempo switch is danced
faster or slower in the data, and only the music says so.

Registered at import as the training term `rollout_pace` (not a product option):
    python rollout_pace.py train rollout_pace_finetune.yaml --data DATA --out RUN    # = transflower train ...
"""
from __future__ import annotations

import sys

import torch

from transflower.models import training_terms as tt
from transflower.models.transflower import rope_angles


class RolloutPace(tt.TrainingTerm):
    name = "rollout_pace"
    defaults = {"weight": 0.0, "prefix": 40, "frames": 60, "block": 20, "temperature": 0.6, "windows": 8}

    def check(self):
        self._at_least("weight", 0.0, "a weight")
        for key in ("prefix", "frames", "block", "windows"):
            self._at_least(key, 1, "an integer", integer=True)
        self._at_least("temperature", 0.0, "a temperature")
        if self.frames % self.block:
            raise tt.UserError(f"{self.field('frames')}: expected a multiple of block ({self.block}), got {self.frames}")

    def check_model(self, model):
        if self.prefix + self.frames >= model.cfg.context:
            raise tt.UserError(f"{self.field('frames')}: prefix + frames must stay under the model's context ({model.cfg.context})")

    def added_loss(self, model, window, seen):
        if not (model.training and self.weight > 0):
            return None
        B, T, D = window.target.shape
        if self.prefix + self.frames > T:
            raise tt.UserError(f"{self.field('frames')}: prefix + frames ({self.prefix + self.frames}) exceed the window ({T})")
        rows = torch.arange(min(B, self.windows), device=window.target.device)
        motion, audio, target = window.motion[rows], window.audio[rows], window.target[rows]
        style = window.style[rows] if window.style is not None else None
        rolled = self.rollout(model, motion, audio, style)  # (b, frames, D): poses prefix .. prefix+frames-1
        v0 = model.cfg.velocity_dims
        prev = torch.cat([motion[:, self.prefix: self.prefix + 1], rolled[:, :-1]], 1)
        own = (rolled - prev)[..., v0:].abs()
        real = (target - motion)[:, self.prefix: self.prefix + self.frames, v0:].abs()
        nb = self.frames // self.block
        own = own.reshape(len(rows), nb, -1).mean(-1)
        real = real.reshape(len(rows), nb, -1).mean(-1)
        return ((own.clamp_min(1e-4).log() - real.clamp_min(1e-4).log()) ** 2).mean()

    def rollout(self, model, motion, audio, style):
        """Teacher-forced through the prefix (no gradient), then `frames` steps on the model's own samples."""
        cfg = model.cfg
        b = motion.shape[0]
        ks, vs = [], []
        poses = []

        def step(t, frame, grad):
            cos, sin = rope_angles(torch.tensor([t]), cfg.head_dim, cfg.rope_base)
            if ks:
                ck, cv = torch.stack(ks, 2), torch.stack(vs, 2)  # (L, b, t, H, hd)
            else:
                ck = cv = motion.new_zeros(cfg.n_layers, b, 0, cfg.n_heads, cfg.head_dim)
            bias = motion.new_zeros(b, ck.shape[2])
            st = style[:, t] if style is not None else None
            with torch.set_grad_enabled(grad):
                h, k, v = model.backbone.step(frame, audio[:, t], cos[0], sin[0], ck, cv, bias, st)
            ks.append(k); vs.append(v)
            return h

        for t in range(self.prefix):
            step(t, motion[:, t], False)
        prev = motion[:, self.prefix]  # the data's pose x_{prefix-1}
        for t in range(self.prefix, self.prefix + self.frames):
            h = step(t, prev, True)
            noise = torch.randn(b, cfg.motion_dim, device=motion.device) * self.temperature
            prev = model.residual_mask * prev + model.flow.inverse(noise, h)
            poses.append(prev)
        return torch.stack(poses, 1)


tt.TERMS[RolloutPace.name] = RolloutPace  # after the others: TrainingTerms orders its stages by this mapping

if __name__ == "__main__":
    from transflower.cli import main

    sys.exit(main(sys.argv[1:]))
