"""Ablation: a training term that scores the pace of the model's own rollout, not only its next step.

Why (the motion-memory ablation, README): the pace is a one-step quantity. Each frame's change is close to
the previous frame's, which the encoder is given, so the next-step likelihood is met by carrying the current
speed on, whatever the music; the music's tempo would only explain the slow drift of the speed, a tiny share
of the likelihood. That holds with 6 s of past poses in view and with 0.45 s alike, and no fine-tune of the
likelihood moved the pace. This term asks for it directly: from a teacher-forced prefix of `prefix` frames,
the model dances `frames` frames on its own (the cached live step, its samples fed back, no gradient), each
rolled frame's change is computed again in one parallel pass over the history the rollout made (with the
gradient of that change given that history, through the flow's inverse; a gradient along the whole rollout
made the first try's loss NaN by step 13), and the loss is the squared log-ratio of its mean change per frame
to the real dance's, per block of `block` frames. With tempo copies and splices, a block after a tempo switch is danced
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
        P, K = self.prefix, self.frames
        if P + K > T:
            raise tt.UserError(f"{self.field('frames')}: prefix + frames ({P + K}) exceed the window ({T})")
        n = min(B, self.windows)
        motion, audio, target = window.motion[:n], window.audio[:n], window.target[:n]
        style = window.style[:n, : P + K] if window.style is not None else None
        with torch.no_grad():  # the rollout itself: no gradient runs along its 60 steps (it would explode)
            rolled, noise = self.rollout(model, motion, audio, style)  # (n, K, D) poses P .. P+K-1, their noise
        # a rollout gone off is left out before any gradient is taken (0 x inf in the backward pass is NaN)
        ok = torch.isfinite(rolled).all(-1).all(-1) & (rolled.abs().amax((1, 2)) < 20.0)
        if not ok.any():
            return target.new_zeros(())
        motion, audio, target, rolled, noise = motion[ok], audio[ok], target[ok], rolled[ok], noise[ok]
        style = style[ok] if style is not None else None
        n = motion.shape[0]
        # every rolled frame's change again, in one parallel pass over the history the rollout made: the
        # gradient of each frame's change given that history (as scheduled sampling does for the NLL)
        history = torch.cat([motion[:, : P + 1], rolled[:, :-1]], 1)  # (n, P+K, D): x_{t-1} for t < P+K
        h = model.backbone(history, audio[:, : P + K], style)[:, P:]  # (n, K, d)
        base = history[:, P:]
        change = model.flow.inverse(noise.reshape(n * K, D), h.reshape(n * K, -1)).reshape(n, K, D)
        v0, nb = model.cfg.velocity_dims, K // self.block
        own = (model.residual_mask * base + change - base)[..., v0:].abs().reshape(n, nb, -1).mean(-1)
        real = (target - motion)[:, P: P + K, v0:].abs().reshape(n, nb, -1).mean(-1)
        loss = ((own.clamp_min(1e-4).log() - real.clamp_min(1e-4).log()) ** 2).mean()
        return loss if torch.isfinite(loss) else target.new_zeros(())

    def rollout(self, model, motion, audio, style):
        """Teacher-forced through the prefix, then `frames` steps on the model's own samples (the cached live
        step) -> poses (b, frames, D) and the noise each was drawn with (truncated at 2.5 sd, times temperature)."""
        cfg = model.cfg
        b = motion.shape[0]
        ks, vs, poses, noises = [], [], [], []

        def step(t, frame):
            cos, sin = rope_angles(torch.tensor([t]), cfg.head_dim, cfg.rope_base)
            if ks:
                ck, cv = torch.stack(ks, 2), torch.stack(vs, 2)  # (L, b, t, H, hd)
            else:
                ck = cv = motion.new_zeros(cfg.n_layers, b, 0, cfg.n_heads, cfg.head_dim)
            st = style[:, t] if style is not None else None
            h, k, v = model.backbone.step(frame, audio[:, t], cos[0], sin[0], ck, cv, motion.new_zeros(b, ck.shape[2]), st)
            ks.append(k); vs.append(v)
            return h

        for t in range(self.prefix):
            step(t, motion[:, t])
        prev = motion[:, self.prefix]  # the data's pose x_{prefix-1}
        for t in range(self.prefix, self.prefix + self.frames):
            h = step(t, prev)
            noise = torch.randn(b, cfg.motion_dim, device=motion.device).clamp(-2.5, 2.5) * self.temperature
            prev = model.residual_mask * prev + model.flow.inverse(noise, h)
            poses.append(prev); noises.append(noise)
        return torch.stack(poses, 1), torch.stack(noises, 1)


tt.TERMS[RolloutPace.name] = RolloutPace  # after the others: TrainingTerms orders its stages by this mapping

if __name__ == "__main__":
    from transflower.cli import main

    sys.exit(main(sys.argv[1:]))
