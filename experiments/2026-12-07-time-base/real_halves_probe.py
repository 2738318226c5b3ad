"""Is `s` a sound measure for two different dances? The real dances of every song: the whole dance at x0.8
against itself at x1.25 (`same`: the bench's real row) and its first half at x0.8 against its second half at
x1.25 (`halves`: two stretches of one dancer's dance, as two generated dances are).

    python experiments/2026-12-07-time-base/real_halves_probe.py DATA
"""
import json, sys
from pathlib import Path
import numpy as np
from transflower.benchmarks.music import mean_joint_speed, rhythm_acf, time_scale, SLOW, FAST
from transflower.benchmarks.metrics import positions_from_features
from transflower.features import StandardScaler, stretch_motion
from transflower.motion_features import MotionFeatures
from transflower.skeleton import Skeleton
from transflower.dataset import read_ids

data = Path(sys.argv[1]); feats = json.loads((data / "features.json").read_text())
fps = float(feats["fps"]); skel = Skeleton.from_dict(feats["skeleton"]); ms = StandardScaler.from_dict(feats["motion_scaler"])
enc = MotionFeatures(skel)
ids = [i for i in read_ids(data, "test") + read_ids(data, "train") if "~" not in i]
res = []
for sid in ids:
    m = ms.inverse(np.load(data / f"{sid}.motion.npy"))
    root, rots = enc.decode(np.asarray(m, np.float64))
    n = len(root) // 2
    out = {}
    for name, (a, b) in {"same": ((0, None), (0, None)), "halves": ((0, n), (n, None))}.items():
        sp = {}
        for f, (lo, hi) in ((SLOW, a), (FAST, b)):
            r2, q2 = stretch_motion(root[lo:hi], rots[lo:hi], fps, f)
            pos = positions_from_features(enc.encode(r2, q2)[: int(60 * fps)], skel)
            sp[f] = mean_joint_speed(pos, fps)
        out[name] = time_scale(rhythm_acf(sp[SLOW], fps), rhythm_acf(sp[FAST], fps), fps)
        out[name + "_pace"] = sp[FAST].mean() / sp[SLOW].mean()
    acf = rhythm_acf(mean_joint_speed(positions_from_features(enc.encode(root, rots)[: int(60 * fps)], skel), fps), fps)
    out["acf_peak"] = float(acf[int(0.3 * fps):int(2 * fps)].max())
    print(sid, {k: round(float(v), 2) for k, v in out.items()}, flush=True)
    res.append(out)
for k in ("same", "halves", "halves_pace", "acf_peak"):
    v = np.array([r[k] for r in res]); print(k, "median", np.median(v).round(2), "range", v.min().round(2), v.max().round(2),
        "share within 0.64+-0.06" if k != "acf_peak" else "", np.mean(np.abs(v - 0.64) <= 0.06).round(2) if k in ("same", "halves") else "")
