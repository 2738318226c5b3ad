"""Does the time base's tempo following show in `s` only because one seed gives one dance? The stretch test of
`bench music` (each test song in its labelled style, x0.8 and x1.25, the time base with its count-in), once with
the same seeds for both versions (as the bench) and once with other seeds for x1.25.

    python experiments/2026-12-07-time-base/count_in_seeds.py DATA [SAMPLES] [SECONDS] [COUNT_IN_S]
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from transflower.audio_features import load_audio_mono
from transflower.benchmarks import music as bm
from transflower.dataset import read_ids
from transflower.generate import generate
from transflower.benchmarks.metrics import positions_from_features
from transflower.realtime.time_base import TimeBaseConfig

DATA = Path(sys.argv[1])
SAMPLES = int(sys.argv[2]) if len(sys.argv) > 2 else 5
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
COUNT_IN = float(sys.argv[4]) if len(sys.argv) > 4 else TimeBaseConfig.count_in_s
MODEL = Path("transflower/default_model/transflower_live.onnx")
feats = json.loads((DATA / "features.json").read_text())
fps, styles = float(feats["fps"]), feats.get("clip_styles", {})
ids = [i for i in read_ids(DATA, "test") if "~" not in i]
tmp = Path(tempfile.mkdtemp())
tb = TimeBaseConfig(count_in_s=COUNT_IN)


def speed(wav, seed, style):
    res = generate(MODEL, wav, seed=seed, max_seconds=SECONDS, progress=False, features_json=str(DATA / "features.json"),
                   style=style, time_base=tb)
    return bm.mean_joint_speed(positions_from_features(res["motion"], res["skeleton"]), fps)


rows = {"same seeds": [], "other seeds": []}
for i, sid in enumerate(ids):
    y, sr = load_audio_mono(DATA / f"{sid}.wav")
    wav = {f: bm.write_wav(tmp / f"{sid}_{f}.wav", bm.stretch(y, f), sr) for f in (bm.SLOW, bm.FAST)}
    slow = [speed(wav[bm.SLOW], 1000 * k + i, styles.get(sid)) for k in range(SAMPLES)]
    fast = {"same seeds": [speed(wav[bm.FAST], 1000 * k + i, styles.get(sid)) for k in range(SAMPLES)],
            "other seeds": [speed(wav[bm.FAST], 1000 * k + i + 500, styles.get(sid)) for k in range(SAMPLES)]}
    a_slow = np.mean([bm.rhythm_acf(sp, fps) for sp in slow], 0)
    for name, sps in fast.items():
        s = bm.time_scale(a_slow, np.mean([bm.rhythm_acf(sp, fps) for sp in sps], 0), fps)
        pace = np.mean([sp.mean() for sp in sps]) / np.mean([sp.mean() for sp in slow])
        rows[name].append((sid, s, pace))
        print(f"{sid} {name}: s {s:.2f} pace {pace:.2f}", flush=True)
for name, r in rows.items():
    s = [x[1] for x in r]
    print(f"{name}: median s {np.median(s):.2f} (max {max(s):.2f}), median pace {np.median([x[2] for x in r]):.2f}")
