"""The first regressor probe: DATA=... CACHE=... python pace_regressor_first.py (from the project root).
Trains on the training clips and the copies `transflower features` writes (0.8, 0.9, 1.12, 1.25x); writes the
test songs' (x0.8/1/1.25), the funk track's and the demo track's features to CACHE for pace_regressor_probe.py."""
import os, sys, json
from pathlib import Path
import numpy as np
from transflower.audio_features import AudioFeatureConfig, compute_audio_features, load_audio_mono

D = Path(os.environ["DATA"]); C = Path(os.environ["CACHE"]); C.mkdir(parents=True, exist_ok=True)
feats = json.loads((D / "features.json").read_text())
ONSET = 65
W, STRIDE, MAXLAG = 160, 10, 80

def windows(a):
    """a: (T, 68) raw audio rows -> (N, F) window features."""
    on = a[:, ONSET].astype(np.float64)
    out = []
    for e in range(W, len(a) + 1, STRIDE):
        x = on[e - W:e] - on[e - W:e].mean()
        v = np.dot(x, x) + 1e-9
        acf = np.array([np.dot(x[l:], x[:-l]) / v for l in range(1, MAXLAG + 1)])
        mel = a[e - W:e, :64].mean(0).reshape(8, 8).mean(1)
        out.append(np.concatenate([acf, mel, [a[e - W:e, 64].mean()]]))
    return np.array(out)

train = [i for i in (D / "base_filenames_train.txt").read_text().split() if "~" not in i]
test = (D / "base_filenames_test.txt").read_text().split()
X, y, g = [], [], []
for sid in train:
    for f, suf in ((1.0, ""), (0.8, "~t0.80"), (0.9, "~t0.90"), (1.12, "~t1.12"), (1.25, "~t1.25")):
        p = D / f"{sid}{suf}.audio_raw.npy"
        if not p.exists():
            continue
        w = windows(np.load(p)); X.append(w); y.append(np.full(len(w), np.log2(f))); g += [sid] * len(w)
X, y = np.concatenate(X), np.concatenate(y)
print("train windows", X.shape, "clips", len(train))

import librosa
cfg = AudioFeatureConfig(**{k: v for k, v in feats["audio_config"].items()})
def song_feats(name, y0, sr, f):
    p = C / f"{name}_{f}.npy"
    if not p.exists():
        ys = y0 if f == 1.0 else librosa.effects.time_stretch(np.asarray(y0, np.float32), rate=f)
        np.save(p, compute_audio_features(ys, sr, cfg))
    return np.load(p)

songs = {}
for sid in test:
    y0, sr = load_audio_mono(D / f"{sid}.wav"); songs[sid] = (y0[: sr * 40], sr)
y0, sr = load_audio_mono("../shared/data/music/Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"); songs["funk"] = (y0[sr * 20: sr * 60], sr)
tests = {s: {f: windows(song_feats(s, *songs[s], f)) for f in (0.8, 1.0, 1.25)} for s in songs}
from transflower.benchmarks.music import demo_track
demo = {b: windows(song_feats(f"demo{b}", demo_track(b, 40.0), 24000, 1.0)) for b in (100, 124, 140)}

from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor
sc = StandardScaler().fit(X)
models = {"mlp64": MLPRegressor(hidden_layer_sizes=(64,), alpha=1e-1, max_iter=300, random_state=0),
          "mlp128x2": MLPRegressor(hidden_layer_sizes=(128, 64), alpha=1.0, max_iter=300, random_state=0)}
for name, m in models.items():
    m.fit(sc.transform(X), y)
    line = []
    diffs = []
    for s, d in tests.items():
        p = {f: np.median(m.predict(sc.transform(d[f]))) for f in d}
        diffs.append(p[1.25] - p[0.8]) if s != "funk" else None
        line.append(f"{s[6:] if s.startswith('DANCE') else s}: {2**p[0.8]:.2f}/{2**p[1.0]:.2f}/{2**p[1.25]:.2f} s={2**(p[0.8]-p[1.25]):.2f}")
    dp = {b: np.median(m.predict(sc.transform(demo[b]))) for b in demo}
    print(name, " | ".join(line))
    print("   demo rates", {b: round(2 ** v, 2) for b, v in dp.items()}, "s 100->140", round(2 ** (dp[100] - dp[140]), 2))
