"""Ablation: a training term that scores the pace of the model's own rollout, not only its next step.

Why (the motion-memory ablation, README): the pace is a one-step quantity. Each frame's change is close to
the previous frame's, which the encoder is given, so the next-step likelihood is met by carrying the current
speed on, whatever the music; the music's tempo would only explain the slow drift of the speed, a tiny share
of the likelihood. That holds with 6 s of past poses in view and with 0.45 s alike, and no fine-tune of the
likelihood moved the pace. This term asks for it directly: teacher-forced up to a start (a fixed `prefix`,
or with `start: cut` the cut of a music-led window, data.music_leads), the model dances `frames` frames on its
own (the cached live step, its samples fed back, no gradient); each rolled frame's change is computed again in
one parallel pass over the history the rollout made (the gradient of that change given that history, through
the flow's inverse: a gradient along the whole rollout went NaN by step 13), and the loss is the squared
log-ratio of its mean change per frame to the real dance's, per block of `block` frames. With tempo copies and
splices, a block after a tempo switch is danced faster or slower in the data, and only the music says so.

Registered at import as the training term `rollout_pace` (not a product option):
    python rollout_pace.py train rollout_pace_finetune.yaml --data DATA --out RUN    # = transflower train ...
    python rollout_pace.py train rollout_pace_cut_finetune.yaml --data DATA --out RUN
"""
from __future__ import annotations

import sys

import torch

from transflower.models import training_terms as tt
from transflower.models.transflower import rope_angles


class RolloutPace(tt.TrainingTerm):
    name = "rollout_pace"
    defaults = {"weight": 0.0, "prefix": 40, "frames": 60, "block": 20, "temperature": 0.6, "windows": 8, "start": "prefix"}
    mask = None  # the batch's loss mask (B, T), set by TrainingTerms.loss below: where a music-led window's cut is

    def check(self):
        self._at_least("weight", 0.0, "a weight")
        for key in ("prefix", "frames", "block", "windows"):
            self._at_least(key, 1, "an integer", integer=True)
        self._at_least("temperature", 0.0, "a temperature")
        if self.start not in ("prefix", "cut"):
            raise tt.UserError(f"{self.field('start')}: expected 'prefix' or 'cut', got {self.start!r}")
        if self.frames % self.block:
            raise tt.UserError(f"{self.field('frames')}: expected a multiple of block ({self.block}), got {self.frames}")

    def check_model(self, model):
        if self.prefix + self.frames + 1 > model.cfg.context:
            raise tt.UserError(f"{self.field('frames')}: prefix + frames must stay under the model's context ({model.cfg.context})")

    def added_loss(self, model, window, seen):
        """start: prefix -> every window is teacher-forced for `prefix` frames; start: cut -> music-led windows
        only (data.music_leads: the poses before the cut are the old tempo's, the music the new one's), each
        teacher-forced up to its cut. Then the model dances `frames` frames on its own, scored against the real
        dance from the frame after the start (at a cut, the splice frame itself is left out)."""
        if not (model.training and self.weight > 0):
            return None
        B, T, D = window.target.shape
        K = self.frames
        if self.start == "cut":
            if self.mask is None:
                raise tt.UserError(f"{self.field('start')}: 'cut' needs data.music_leads > 0 (a loss mask)")
            rows, cut = (self.mask[:, 0] == 0).nonzero().flatten(), torch.argmax(self.mask, 1)  # first scored frame
        else:
            if self.prefix + K + 1 > T:
                raise tt.UserError(f"{self.field('frames')}: prefix + frames + 1 ({self.prefix + K + 1}) exceed the window ({T})")
            rows, cut = torch.arange(B), torch.full((B,), self.prefix)
        rows = rows[cut[rows] + K + 1 <= T][: self.windows]
        if rows.numel() == 0:
            return window.target.new_zeros(())
        motion, audio, target, c = window.motion[rows], window.audio[rows], window.target[rows], cut[rows]
        style = window.style[rows] if window.style is not None else None
        end = int(c.max()) + K + 1
        with torch.no_grad():  # the rollout itself: a gradient along all its steps exploded (NaN by step 13)
            history, noise = self.rollout_from(model, motion[:, :end], audio[:, :end], style, c)
        # a rollout gone off is left out before any gradient is taken (0 x inf in the backward pass is NaN)
        ok = torch.isfinite(history).all(-1).all(-1) & (history.abs().amax((1, 2)) < 20.0)
        if not ok.any():
            return target.new_zeros(())
        history, noise, audio, target, c = history[ok], noise[ok], audio[ok, :end], target[ok], c[ok]
        style = style[ok, :end] if style is not None else None
        # every frame's change again, in one parallel pass over the history the rollout made: the gradient of
        # each frame's change given that history (as scheduled sampling does for the NLL)
        n = history.shape[0]
        h = model.backbone(history, audio, style)  # (n, end, d)
        change = model.flow.inverse(noise.reshape(n * end, D), h.reshape(n * end, -1)).reshape(n, end, D)
        own_all = model.residual_mask * history + change - history  # pose t - pose t-1, every frame
        t = c[:, None] + 1 + torch.arange(K, device=c.device)[None]  # (n, K): the frames scored
        r = torch.arange(n, device=c.device)[:, None]
        v0, nb = model.cfg.velocity_dims, K // self.block
        own = own_all[r, t][..., v0:].abs().reshape(n, nb, -1).mean(-1)
        real = (target[r, t] - target[r, t - 1])[..., v0:].abs().reshape(n, nb, -1).mean(-1)
        loss = ((own.clamp_min(1e-4).log() - real.clamp_min(1e-4).log()) ** 2).mean()
        return loss if torch.isfinite(loss) else target.new_zeros(())

    def rollout_from(self, model, motion, audio, style, cut):
        """The encoder's inputs (b, T, D) when each row is teacher-forced up to its cut and then fed its own
        samples, and the noise each sample was drawn with (0 before the cut)."""
        cfg = model.cfg
        b, T, D = motion.shape
        history, noise = motion.clone(), torch.zeros_like(motion)
        ks, vs = [], []
        for t in range(T):
            cos, sin = rope_angles(torch.tensor([t]), cfg.head_dim, cfg.rope_base)
            ck = torch.stack(ks, 2) if ks else motion.new_zeros(cfg.n_layers, b, 0, cfg.n_heads, cfg.head_dim)
            cv = torch.stack(vs, 2) if vs else ck
            st = style[:, t] if style is not None else None
            h, k, v = model.backbone.step(history[:, t], audio[:, t], cos[0], sin[0], ck, cv, motion.new_zeros(b, ck.shape[2]), st)
            ks.append(k); vs.append(v)
            if t + 1 < T:
                z = torch.randn(b, D, device=motion.device).clamp(-2.5, 2.5) * self.temperature
                pose = model.residual_mask * history[:, t] + model.flow.inverse(z, h)
                own = (t >= cut)[:, None]  # from the cut on, the next input is the model's own pose
                history[:, t + 1] = torch.where(own, pose, history[:, t + 1])
                noise[:, t] = torch.where(own, z, noise[:, t])
        return history, noise


_terms_loss = tt.TrainingTerms.loss


def _loss_with_mask(self, model, inputs, outputs):
    for t in self.terms:  # the cut is in the batch's loss mask, which the terms' hooks are not given
        if isinstance(t, RolloutPace):
            t.mask = outputs[-1][..., 0] if len(outputs) > 1 else None
    return _terms_loss(self, model, inputs, outputs)


tt.TrainingTerms.loss = _loss_with_mask
tt.TERMS[RolloutPace.name] = RolloutPace  # after the others: TrainingTerms orders its stages by this mapping

if __name__ == "__main__":
    from transflower.cli import main

    sys.exit(main(sys.argv[1:]))
