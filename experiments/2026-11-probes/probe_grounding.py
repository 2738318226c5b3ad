"""Does the dancer stay on the floor? The hips' height and the lowest foot point over a rollout, real dance
against the model's dances as sampled and as grounded (transflower.floor.Grounding, what live does).

For each style: the model dances every test song once (started on the style's seed clip with its preset,
as `bench style` does, `--seconds` long), twice with the same noise: as sampled (`pose_hook` none) and
grounded. Printed per style: the hips' mean height over the first and last 5 s, the lowest foot point's
median (cm), and the same for the real dances of that style; `--plot` draws the hips' height over time
(mean over songs) for the three.

    python experiments/2026-11-probes/probe_grounding.py FEATURE_DIR MODEL.pt [--temperature 0.5] [--seconds 30] [--plot out.png]
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from transflower.benchmarks import metrics as M
from transflower.benchmarks.quality import load_songs
from transflower.checkpoint import load_checkpoint, load_style_seeds
from transflower.dataset import load_modality, read_ids
from transflower.features import StandardScaler
from transflower.floor import grounding_hook
from transflower.styles import check_presets, preset_of, preset_style

FEET = ("RightToe", "RightHeel", "LeftToe", "LeftHeel")


def heights(pos, names):
    """(T, J, 3) cm -> hips height (T,), lowest foot point (T,), cm."""
    return pos[:, names.index("Hips"), 1], pos[:, [names.index(n) for n in FEET], 1].min(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("model")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--plot", help="PNG: the hips' height over time per style, real / as sampled / grounded")
    args = ap.parse_args()
    D = args.data
    feats = json.loads((D / "features.json").read_text())
    styles_all, fps, skel = feats["styles"], float(feats["fps"]), feats["skeleton"]
    names = skel["names"]
    scaler = StandardScaler.from_dict(feats["motion_scaler"])
    torch.set_num_threads(1)
    model, cfg = load_checkpoint(args.model)
    own = cfg.get("_features") or {}
    presets = check_presets(own.get("style_presets"), styles_all, where=args.model)
    seeds = load_style_seeds(own, model.cfg.context, args.model, data_dir=D)
    n = int(round(args.seconds * fps))
    songs = [s for s in load_songs(D, "test", 40, n, fps) if "~" not in s["id"]]
    k = int(5 * fps)
    curves = {}
    for style in styles_all[1:]:
        real = []
        for sid in list(read_ids(D, "train")) + list(read_ids(D, "test")):
            if "~" not in sid and feats["clip_styles"].get(sid) == style:
                real.append(heights(M.positions_from_features(scaler.inverse(load_modality(D, sid, "motion")), skel), names))
        seed = scaler.transform(np.asarray(seeds[style], np.float32)).astype(np.float32)
        _, p_t = preset_of(presets, style)
        w = torch.from_numpy(preset_style(style, styles_all, 1.0, presets)[0])
        runs = {"as sampled": [], "grounded": []}
        for i, s in enumerate(songs):
            audio = torch.from_numpy(np.ascontiguousarray(s["audio"][40: 40 + s["n"]]))
            for key in runs:
                hook = grounding_hook(skel, scaler, seed) if key == "grounded" else None
                with torch.no_grad():
                    x = model.generate(torch.from_numpy(seed), audio, s["n"], args.temperature * p_t,
                                       torch.Generator().manual_seed(i), style=w, pose_hook=hook)
                runs[key].append(heights(M.positions_from_features(scaler.inverse(x.numpy()), skel), names))
        line = lambda h: (f"hips {np.mean([a[:k].mean() for a, _ in h]):.0f} -> {np.mean([a[-k:].mean() for a, _ in h]):.0f} cm, "  # noqa: E731
                          f"lowest foot median {np.mean([np.median(b) for _, b in h]):.0f} cm")
        print(f"{style}: real ({len(real)} clips, first / last 5 s) {line(real)}")
        for key, h in runs.items():
            print(f"{style}: {key} ({len(h)} dances) {line(h)}", flush=True)
        m = min(len(a) for a, _ in runs["grounded"])
        curves[style] = {key: np.mean([a[:m] for a, _ in h], axis=0) for key, h in runs.items()}
        curves[style]["real (mean height)"] = np.full(m, np.mean([a.mean() for a, _ in real]))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), sharey=True)
        for ax, (style, c) in zip(np.atleast_1d(axes), curves.items()):
            for key, y in c.items():
                ax.plot(np.arange(len(y)) / fps, y, label=key, ls="--" if key.startswith("real") else "-")
            ax.set_title(f"{style}: hips' height (mean of {len(songs)} songs)")
            ax.set_xlabel("seconds")
        np.atleast_1d(axes)[0].set_ylabel("cm")
        np.atleast_1d(axes)[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
