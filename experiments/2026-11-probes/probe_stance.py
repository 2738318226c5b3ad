"""How fast does a planted foot move about the root in the real dances? The basis of traction's swing gate
(transflower.floor.Grounding `swing`: a foot point moving about the root faster than a real stance foot
does is a swing skimming the floor, and is not held).

For every real clip of a split (mirrored copies left out), on the frames where the lowest foot point is
within `--near` cm of the clip's floor (its 2nd percentile), as the slide measure and traction count them:
that point's horizontal motion about the root (its displacement less the root's, cm a frame), for the
planted frames (the point moving under `--planted` cm a frame over the floor) and for all near-floor
frames, per style.

    python experiments/2026-11-probes/probe_stance.py FEATURE_DIR [--split train] [--near 5] [--planted 1.5] [--json OUT]
"""
import argparse
import json
from pathlib import Path

import numpy as np

from transflower.benchmarks import metrics as M
from transflower.atomic import write_text_atomic
from transflower.dataset import load_modality, read_ids
from transflower.errors import UserError
from transflower.features import StandardScaler

FEET = ("RightToe", "RightHeel", "LeftToe", "LeftHeel")
PERCENTILES = (50, 90, 99, 99.9)


def about_root(pos: np.ndarray, names: list[str], near_cm: float, planted_cm: float):
    """(T, J, 3) cm -> (motion about the root on planted near-floor frames, on all near-floor frames), cm."""
    feet = np.array([names.index(n) for n in FEET])
    low = pos[:, feet, 1].argmin(1)
    lowest = pos[np.arange(len(pos)), feet[low]]  # (T, 3)
    floor = np.percentile(lowest[:, 1], 2)
    t = np.arange(1, len(pos))
    k = feet[low[t]]  # the point lowest in this frame, and where it was in the last
    step = (pos[t, k] - pos[t - 1, k])[:, [0, 2]]
    root = (pos[t, 0] - pos[t - 1, 0])[:, [0, 2]]
    about = np.linalg.norm(step - root, axis=1)
    near = lowest[t, 1] - floor < near_cm
    return about[near & (np.linalg.norm(step, axis=1) < planted_cm)], about[near]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="a feature folder (transflower features)")
    ap.add_argument("--split", choices=("train", "test"), default="train")
    ap.add_argument("--near", type=float, default=5.0, help="cm above the floor that count as on it (default 5)")
    ap.add_argument("--planted", type=float, default=1.5, help="cm a frame over the floor under which a point is planted")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    fj = args.data / "features.json"
    if not fj.exists():
        raise SystemExit(f"{fj}: missing; run `transflower features {args.data}` first")
    feats = json.loads(fj.read_text())
    sk, scaler = feats["skeleton"], StandardScaler.from_dict(feats["motion_scaler"])
    missing = [n for n in FEET if n not in sk["names"]]
    if missing:
        raise SystemExit(f"{fj}: skeleton lacks {missing}")
    styles = feats.get("clip_styles") or {}
    by_style: dict[str, tuple[list, list]] = {}
    for sid in read_ids(args.data, args.split):
        if "~" in sid:
            continue
        try:
            pos = M.positions_from_features(scaler.inverse(load_modality(args.data, sid, "motion")), sk)
        except UserError as e:
            raise SystemExit(str(e))
        planted, near = about_root(pos, sk["names"], args.near, args.planted)
        lists = by_style.setdefault(styles.get(sid, "unlabelled"), ([], []))
        lists[0].append(planted)
        lists[1].append(near)
    out = {}
    print(f"| style | planted frames | about the root, cm a frame: p{' / p'.join(map(str, PERCENTILES))} "
          f"| all near-floor frames: p99 |\n|---|---|---|---|")
    for style, (planted, near) in sorted(by_style.items()):
        p, n = np.concatenate(planted), np.concatenate(near)
        q = np.percentile(p, PERCENTILES) if len(p) else np.full(len(PERCENTILES), np.nan)
        out[style] = {"planted_frames": int(len(p)), "near_frames": int(len(n)),
                      "planted_percentiles": dict(zip(map(str, PERCENTILES), map(float, q))),
                      "near_p99": float(np.percentile(n, 99)) if len(n) else None}
        print(f"| {style} | {len(p)} | {' / '.join(f'{v:.1f}' for v in q)} | "
              f"{out[style]['near_p99'] if out[style]['near_p99'] is None else format(out[style]['near_p99'], '.1f')} |")
    if args.json:
        write_text_atomic(args.json, json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
