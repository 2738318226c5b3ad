"""`bench style`'s switch test alone, repeated with other noise seeds: how often does the fastest joint around
a 1 s style switch exceed the real dances' 99.9th percentile, with the shipped presets and without, and how
often does the same dance without the switch (and a real dance's own 3-s window) cross that line too?

    python experiments/2026-11-probes/probe_switch_repeats.py presets|none [REPEATS] [FEATURE_DIR] [MODEL]
    (defaults: 5 repeats, data/tang as written by `transflower features`, the shipped model)
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

import transflower.benchmarks.style as S
from transflower.benchmarks.quality import load_songs
from transflower.checkpoint import load_checkpoint
from transflower.features import StandardScaler

mode = sys.argv[1] if len(sys.argv) > 1 else "presets"
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
data = Path(sys.argv[3] if len(sys.argv) > 3 else "data/tang")
model_path = sys.argv[4] if len(sys.argv) > 4 else Path(__file__).resolve().parent.parent / "transflower/default_model/transflower_live.pt"
feats = json.loads((data / "features.json").read_text())
sa, fps, sk = feats["styles"], float(feats["fps"]), feats["skeleton"]
sc = StandardScaler.from_dict(feats["motion_scaler"])
model, cfg = load_checkpoint(model_path)
presets = (cfg.get("_features") or {}).get("style_presets") or {} if mode == "presets" else {}
songs = [s for s in load_songs(data, "test", 40, 600, fps) if "~" not in s["id"]]
torch.set_num_threads(1)
res = S.style_switch(model, songs, sa, 40, fps, 0.6, sc, sk, sk["names"], 10.0, 1.0, presets, 1.0, repeats=reps)
w = np.array([x["max_speed"] for x in res["songs"]])
c = np.array([x["max_speed_without_switch"] for x in res["songs"]])
print(json.dumps(res["songs"], indent=0))
print(f"{mode}: {len(w)} switches, real p99.9 {res['real_p999']:.2f} m/s; with the switch: max {w.max():.2f}, "
      f"median {np.median(w):.2f}, over in {res['switches_over']}; the same dances without it: max {c.max():.2f}, "
      f"median {np.median(c):.2f}, over in {res['without_switch_over']}; real 3-s windows over: {res['real_windows_over']:.1%}")
