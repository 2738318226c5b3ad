"""Does the style classifier recognise a generated rumba by its (too fast) travel?

For each model: dance rumba as `bench style` does (started on the rumba seed clip, the test songs, 2 samples,
30 s after a 2 s seed, temperature 0.6 x the model's preset), then classify the 5-s windows (a) as danced,
(b) with the hips' floor path scaled about its start so that it travels at the real rumba's pace
(REAL_TRAVEL m/s, `bench style`'s real rumba travel). Prints the share recognised and what the rest are called.

    python experiments/2026-11-probes/probe_rumba_travel.py FEATURE_DIR MODEL.pt [MODEL.pt ...]
    (a .pt as shipped: it carries its seed clips and presets)
"""
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from transflower.benchmarks import metrics as M
from transflower.benchmarks.style import StyleClassifier, _real_windows, window_features, spread_songs
from transflower.benchmarks.quality import load_songs
from transflower.checkpoint import load_checkpoint, load_style_seeds
from transflower.dataset import read_ids
from transflower.features import StandardScaler
from transflower.styles import check_presets, preset_of, preset_style

D = Path(sys.argv[1]); feats = json.loads((D / "features.json").read_text())
styles_all = feats["styles"]; styles = styles_all[1:]
fps, skel, names = float(feats["fps"]), feats["skeleton"], feats["skeleton"]["names"]
scaler = StandardScaler.from_dict(feats["motion_scaler"]); seg = 100; cs = feats["clip_styles"]
real_kin = {}
Xtr, ytr = _real_windows(D, read_ids(D, "train"), cs, styles, scaler, skel, names, fps, seg, real_kin)
clf = StyleClassifier(len(styles)).fit(Xtr, ytr)
REAL_TRAVEL = 0.535  # m/s: the real rumba clips' travel (`bench style`, 2026-11-27)
torch.set_num_threads(1)
songs = spread_songs([s for s in load_songs(D, "test", 40, 600, fps) if "~" not in s["id"]], cs, None)
hips = names.index("Hips")
for ck in sys.argv[2:]:
    model, cfg = load_checkpoint(ck); own = cfg.get("_features") or {}
    presets = check_presets(own.get("style_presets"), styles_all, where=ck)
    seeds = load_style_seeds(own, model.cfg.context, ck, data_dir=D)
    seed = scaler.transform(np.asarray(seeds["rumba"], np.float32)).astype(np.float32)
    _, p_t = preset_of(presets, "rumba"); w = torch.from_numpy(preset_style("rumba", styles_all, 1.0, presets)[0])
    k = styles.index("rumba"); raw, slowed, trav = [], [], []
    for i, s in enumerate(songs):
        audio = torch.from_numpy(np.ascontiguousarray(s["audio"][40: 40 + s["n"]]))
        for j in range(2):
            with torch.no_grad():
                x = model.generate(torch.from_numpy(seed), audio, s["n"], 0.6 * p_t, torch.Generator().manual_seed(100 * j + i), style=w)
            pos = M.positions_from_features(scaler.inverse(x.numpy()), skel)
            raw += list(clf.predict(window_features(pos, names, fps, seg)))
            h = pos[:, hips, :][:, [0, 2]]
            t = np.linalg.norm(np.diff(h, axis=0), axis=-1).mean() * fps / 100.0; trav.append(t)
            f = REAL_TRAVEL / t
            p2 = pos.copy(); shift = (h - h[0]) * (f - 1.0); p2[:, :, 0] += shift[:, None, 0]; p2[:, :, 2] += shift[:, None, 1]
            slowed += list(clf.predict(window_features(p2, names, fps, seg)))
    c = lambda v: {styles[a]: round(b / len(v), 2) for a, b in Counter(v).items()}
    print(f"{ck}: hips travel {np.mean(trav):.2f} m/s; recognised as danced {np.mean(np.array(raw) == k):.0%} {c(raw)}; "
          f"travel slowed to {REAL_TRAVEL} m/s {np.mean(np.array(slowed) == k):.0%} {c(slowed)}", flush=True)
