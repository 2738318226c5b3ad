"""`bench style`'s switch test repeated with other noise seeds: how often does the fastest joint around a
1 s style switch exceed the real dances' 99.9th percentile, with the shipped presets and without?

    python scripts/probe_switch_repeats.py presets|none [REPEATS] [FEATURE_DIR]   (default data/tang: `transflower features`)
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

import benchmarks.style as S
from benchmarks.quality import load_songs
from transflower.checkpoint import load_checkpoint
from transflower.features import StandardScaler
data = Path(sys.argv[3] if len(sys.argv) > 3 else "data/tang"); feats = json.loads((data / "features.json").read_text())
sa = feats["styles"]; fps = 20.0; sk = feats["skeleton"]; names = sk["names"]
sc = StandardScaler.from_dict(feats["motion_scaler"])
model, cfg = load_checkpoint(Path(__file__).resolve().parent.parent / "transflower/default_model/transflower_live.pt")
presets = cfg["_features"]["style_presets"] if sys.argv[1] == "presets" else {}
songs = load_songs(data, "test", 40, 600, fps); torch.set_num_threads(1)
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 4
worst = []
RealGen = torch.Generator
for r in range(reps):
    # shift every song's noise seed by 1000 r (style_switch draws torch.Generator().manual_seed(7 + i))
    class Shifted:
        def manual_seed(self, s, r=r):
            return RealGen().manual_seed(s + 1000 * r)
    torch.Generator = Shifted
    res = S.style_switch(model, songs, sa, 40, fps, 0.6, sc, sk, names, 10.0, 1.0, presets, 1.0)
    worst += [x["max_speed"] for x in res["songs"]]
    print(r, [round(x["max_speed"], 2) for x in res["songs"]], "p999", round(res["real_p999"], 2), flush=True)
w = np.array(worst)
print(sys.argv[1], f"{len(w)} switches: max {w.max():.2f}, over the real p99.9 in {(w > res['real_p999']).sum()}, median {np.median(w):.2f}")
