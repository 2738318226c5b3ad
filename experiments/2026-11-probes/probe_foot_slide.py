"""Where does a generated style's foot sliding come from: the body travelling over planted feet, or feet
that skate on their own?

For each style: the real clips of that style (training split), and the model's dance as `bench style` dances
it (started on the style's seed clip, its preset, the test songs, 2 samples x 30 s, `--temperature` x the
preset). On the frames where the lowest foot point is near the floor (`bench style`'s slide measure:
within 5 cm), it reports the share of frames near the floor, the share sliding (over 0.5 m/s, the slide
measure itself), and the mean horizontal speed of that foot point split into the hips' speed and the
foot's speed about the hips. Planted feet under a travelling body have a foot-about-hips speed that
cancels the hips' (world speed near 0); skating feet do not.

    python experiments/2026-11-probes/probe_foot_slide.py FEATURE_DIR MODEL.pt [--temperature 0.5] [--styles cha-cha,rumba] [--no-ground]

The dances are grounded as live and `bench style` ground them (transflower.floor.Grounding) unless
`--no-ground`.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from transflower.benchmarks import metrics as M
from transflower.benchmarks.quality import load_songs
from transflower.benchmarks.style import spread_songs
from transflower.checkpoint import load_checkpoint, load_style_seeds
from transflower.dataset import load_modality, read_ids
from transflower.features import StandardScaler
from transflower.floor import grounding_hook
from transflower.styles import check_presets, preset_of, preset_style


def summary(rows: list, shares: list) -> str:
    c = np.concatenate(rows)
    return (f"near floor {np.mean(shares):.0%} of frames; of those sliding (> 0.5 m/s) {np.mean(c[:, 0] > 0.5):.0%}; "
            f"foot world {c[:, 0].mean():.2f} m/s = hips {c[:, 1].mean():.2f} with foot about hips {c[:, 2].mean():.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("model")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--styles", default="cha-cha,rumba,waltz")
    ap.add_argument("--no-ground", action="store_true", help="the dances as sampled, without live's grounding")
    args = ap.parse_args()
    D = args.data
    feats = json.loads((D / "features.json").read_text())
    styles_all = feats["styles"]
    fps, skel, names = float(feats["fps"]), feats["skeleton"], feats["skeleton"]["names"]
    scaler = StandardScaler.from_dict(feats["motion_scaler"])
    cs = feats["clip_styles"]
    torch.set_num_threads(1)
    model, cfg = load_checkpoint(args.model)
    own = cfg.get("_features") or {}
    presets = check_presets(own.get("style_presets"), styles_all, where=args.model)
    seeds = load_style_seeds(own, model.cfg.context, args.model, data_dir=D)
    songs = spread_songs([s for s in load_songs(D, "test", 40, 600, fps) if "~" not in s["id"]], cs, None)
    for style in args.styles.split(","):
        real, rs = [], []
        for sid in read_ids(D, "train"):
            if "~" not in sid and cs.get(sid) == style:
                r, s = M.contact_speeds(M.positions_from_features(scaler.inverse(load_modality(D, sid, "motion")), skel), names, fps)
                real.append(r); rs.append(s)
        seed = scaler.transform(np.asarray(seeds[style], np.float32)).astype(np.float32)
        _, p_t = preset_of(presets, style)
        w = torch.from_numpy(preset_style(style, styles_all, 1.0, presets)[0])
        gen, gs = [], []
        for i, s in enumerate(songs):
            audio = torch.from_numpy(np.ascontiguousarray(s["audio"][40: 40 + s["n"]]))
            for j in range(2):
                hook = None if args.no_ground else grounding_hook(skel, scaler, seed)
                with torch.no_grad():
                    x = model.generate(torch.from_numpy(seed), audio, s["n"], args.temperature * p_t,
                                       torch.Generator().manual_seed(100 * j + i), style=w, pose_hook=hook)
                r, sh = M.contact_speeds(M.positions_from_features(scaler.inverse(x.numpy()), skel), names, fps)
                gen.append(r); gs.append(sh)
        print(f"{style} real ({len(real)} clips): {summary(real, rs)}", flush=True)
        print(f"{style} generated ({len(gen)} dances): {summary(gen, gs)}", flush=True)


if __name__ == "__main__":
    main()
