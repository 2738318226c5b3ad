"""Does the style label say how a dance goes on, from the data's past and from a past the model fed itself?

For every 6-s window (hop 3 s) of the real dances of a split (mirrored copies left out), the window's mean
log-likelihood per pose dimension is computed under each label (auto and every style), in two ways:
  - teacher-forced: the encoder sees the data's past poses;
  - self-fed: the encoder sees a past the model sampled itself under the window's true label (parallel
    scheduled sampling as training does it: `--self-fed P` of the poses, `--passes` passes, temperature
    0.6, no pose noise), which is what a rollout hears once it has drifted.
Per true style it prints the mean NLL under each label and how often the true label is the likeliest of
the style labels ("label wins"). A model whose label wins teacher-forced but not self-fed has a label that
names a style but cannot pull a drifting rollout back to it (experiments/2026-11-to-12-model-history.md, 2026-11-27).

    python experiments/2026-11-probes/probe_label_recovery.py FEATURE_DIR CKPT [CKPT ...] [--split test] [--self-fed 0.8] [--passes 3]
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from transflower.checkpoint import load_checkpoint
from transflower.dataset import load_modality, read_ids
from transflower.models.training_terms import ScheduledSampling


def probe(ckpt, data: Path, split: str, self_fed: float, passes: int, T: int = 120, hop: int = 60):
    model, _ = load_checkpoint(ckpt)
    c = model.cfg
    if c.styles < 3:
        raise SystemExit(f"{ckpt}: the model has no style labels")
    sampler = ScheduledSampling(p=self_fed, passes=passes, temperature=0.6, features="all")  # no pose noise
    L, S = c.lookahead, c.styles
    eye = torch.eye(S)
    nll = {}  # true style index -> [(S,) per-label NLL per dim]
    for sid in read_ids(data, split):
        if "~" in sid:
            continue
        m = torch.from_numpy(load_modality(data, sid, "motion"))
        a = torch.from_numpy(load_modality(data, sid, "audio"))
        true = int(load_modality(data, sid, "style")[0, 0])
        for s in range(0, m.shape[0] - T - 1 - L, hop):
            past, audio, target = m[None, s:s + T], a[None, s + 1 + L:s + 1 + L + T], m[None, s + 1:s + 1 + T]
            with torch.no_grad():
                if self_fed > 0:  # train mode for the sampler only: dropout stays off
                    model.train()
                    for mod in model.modules():
                        if isinstance(mod, torch.nn.Dropout):
                            mod.eval()
                    torch.manual_seed(s)
                    past = sampler.self_fed(model, past, audio, eye[true].expand(1, T, S))
                    model.eval()
                nll.setdefault(true, []).append([float(model.nll(past, audio, target, eye[k].expand(1, T, S))) for k in range(S)])
    return nll


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--split", default="test")
    ap.add_argument("--self-fed", type=float, default=0.8, help="share of past poses self-fed (0: teacher-forced only)")
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    import json

    names = json.loads((args.data / "features.json").read_text())["styles"]
    torch.set_num_threads(1)
    for ck in args.ckpts:
        for p in sorted({0.0, args.self_fed}):
            res = probe(ck, args.data, args.split, p, args.passes)
            print(f"{ck}  {'teacher-forced' if p == 0 else f'self-fed {p} x {args.passes} passes'}")
            for true, rows in sorted(res.items()):
                v = np.array(rows)
                wins = (v[:, 1:].argmin(1) + 1 == true).mean()
                print(f"  {names[true]:8s} {len(v):3d} windows  NLL/dim under " +
                      "  ".join(f"{names[k]} {v[:, k].mean():+.3f}" for k in range(len(names))) +
                      f"   label wins {wins:.0%}", flush=True)


if __name__ == "__main__":
    main()
