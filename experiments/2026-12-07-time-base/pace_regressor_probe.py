"""Can a small regressor read how stretched the music is against what its style is danced at?
DATA=... CACHE=... python pace_regressor_probe.py [WINDOW_FRAMES] [native] [flux]
Trains sklearn MLPs on the training clips (stretched copies 0.7-1.43x: make_stretch_copies.py writes the ones
`transflower features` does not) and reads the test songs at x0.8 / x1 / x1.25 (their features cached in
CACHE/<id>_<f>.npy, and the demo track at 100/124/140 BPM as CACHE/demo<bpm>_1.0.npy)."""
import os, sys, json
from pathlib import Path
import numpy as np
from transflower.audio_features import load_audio_mono
D = Path(os.environ["DATA"]); TC = Path(os.environ["CACHE"]) / "train"; C = Path(os.environ["CACHE"])
feats = json.loads((D / "features.json").read_text()); styles = feats["clip_styles"]
W, STRIDE, MAXLAG = int(sys.argv[1]) if len(sys.argv) > 1 else 160, 10, 80
NATIVE = "native" in sys.argv; FLUX = "flux" in sys.argv

def acf(x):
    x = x - x.mean(); v = np.dot(x, x) + 1e-9
    return np.array([np.dot(x[l:], x[:-l]) / v for l in range(1, MAXLAG + 1)])

def windows(a):
    out = []
    lo = a[:, :16].mean(1); hi = a[:, 40:64].mean(1)
    flo = np.maximum(np.diff(lo, prepend=lo[0]), 0); fhi = np.maximum(np.diff(hi, prepend=hi[0]), 0)
    for e in range(W, len(a) + 1, STRIDE):
        parts = [acf(a[e - W:e, 65].astype(np.float64))]
        if FLUX:
            parts += [acf(flo[e - W:e]), acf(fhi[e - W:e])]
        parts += [a[e - W:e, :64].mean(0).reshape(8, 8).mean(1), [a[e - W:e, 64].mean()]]
        out.append(np.concatenate(parts))
    return np.array(out)

train = [i for i in (D / "base_filenames_train.txt").read_text().split() if "~" not in i]
native = {}
if NATIVE:
    import librosa
    npath = C / "native.json"
    native = json.loads(npath.read_text()) if npath.exists() else {}
    for sid in train:
        if sid not in native:
            y, sr = load_audio_mono(D / f"{sid}.wav")
            native[sid] = float(np.atleast_1d(librosa.feature.tempo(y=np.asarray(y, np.float32), sr=sr))[0])
    npath.write_text(json.dumps(native))
    ref = {}
    for st in set(styles.values()):
        t = np.array([native[s] for s in train if styles[s] == st]); med = np.median(t)
        ref[st] = med
    fold = {}
    for s in train:
        r = np.log2(native[s] / ref[styles[s]]); r -= np.round(r)  # octave-folded offset from the style's median
        fold[s] = r
    print("native offsets (octaves)", {s[6:]: round(v, 2) for s, v in fold.items()}, "refs", ref)
X, y, st = [], [], []
for sid in train:
    for f in (0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.06, 1.12, 1.18, 1.25, 1.33, 1.43):
        p = D / f"{sid}{'' if f == 1.0 else f'~t{f:.2f}'}.audio_raw.npy"
        a = np.load(p) if f in (1.0, 0.8, 0.9, 1.12, 1.25) else (np.load(TC / f"{sid}_{f}.npy") if (TC / f"{sid}_{f}.npy").exists() else None)
        if a is None: continue
        w = windows(a); X.append(w); y.append(np.full(len(w), np.log2(f) + (fold[sid] if NATIVE else 0))); st += [styles[sid]] * len(w)
X, y, st = np.concatenate(X), np.concatenate(y), np.array(st)
# balance styles by repetition
reps = {s: int(round(max(np.sum(st == t) for t in set(st)) / np.sum(st == s))) for s in set(st)}
idx = np.concatenate([np.repeat(np.where(st == s)[0], reps[s]) for s in reps])
X, y = X[idx], y[idx]
print("train windows", X.shape, reps)
tests = {}
for s in ["DANCE_C_6", "DANCE_R_3", "DANCE_W_11", "DANCE_W_20", "DANCE_W_26", "DANCE_W_33", "funk"]:
    tests[s] = {f: windows(np.load(C / f"{s}_{f}.npy")) for f in (0.8, 1.0, 1.25)}
demo = {b: windows(np.load(C / f"demo{b}_1.0.npy")) for b in (100, 124, 140)}
from sklearn.preprocessing import StandardScaler
from sklearn.neural_network import MLPRegressor
sc = StandardScaler().fit(X)
for name, m in {"mlp64": MLPRegressor(hidden_layer_sizes=(64,), alpha=0.1, max_iter=200, random_state=0),
                "mlp128x2": MLPRegressor(hidden_layer_sizes=(128, 64), alpha=1.0, max_iter=200, random_state=0)}.items():
    m.fit(sc.transform(X), y)
    line, ss = [], []
    for s, d in tests.items():
        p = {f: np.median(m.predict(sc.transform(d[f]))) for f in d}
        if s != "funk": ss.append(2 ** (p[0.8] - p[1.25]))
        line.append(f"{s[6:] if s.startswith('DANCE') else s}: {2**p[0.8]:.2f}/{2**p[1.0]:.2f}/{2**p[1.25]:.2f} s={2**(p[0.8]-p[1.25]):.2f}")
    dp = {b: np.median(m.predict(sc.transform(demo[b]))) for b in demo}
    print(name, "median s", round(float(np.median(ss)), 2), "max", round(max(ss), 2), " | ".join(line))
    print("   demo rates", {b: round(2 ** v, 2) for b, v in dp.items()}, "s 100->140", round(2 ** (dp[100] - dp[140]), 2), flush=True)
