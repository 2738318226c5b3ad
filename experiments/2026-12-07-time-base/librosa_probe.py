import sys, numpy as np, librosa
from pathlib import Path
from transflower.audio_features import load_audio_mono
from transflower.dataset import read_ids
data = Path(sys.argv[1] if len(sys.argv) > 1 else "data/tang")
ids = ([i for i in read_ids(data, "test") if "~" not in i] + [i for i in read_ids(data, "train") if "~" not in i])[:16]
rs = {"lib": [], "lib_sd2": [], "lib_8s_med": []}
for sid in ids:
    y, sr = load_audio_mono(data / f"{sid}.wav"); y = y[: sr * 45]
    t = {}
    for f in (0.8, 1.25):
        ys = librosa.effects.time_stretch(np.asarray(y, np.float32), rate=f)
        oe = librosa.onset.onset_strength(y=ys, sr=sr)
        t[("lib", f)] = librosa.feature.tempo(onset_envelope=oe, sr=sr)[0]
        t[("lib_sd2", f)] = librosa.feature.tempo(onset_envelope=oe, sr=sr, std_bpm=2.0)[0]
        tt = librosa.feature.tempo(onset_envelope=oe, sr=sr, aggregate=None, ac_size=8.0)
        t[("lib_8s_med", f)] = np.median(tt[350:])
    print(sid, " ".join(f"{k}:{t[(k,0.8)]:.0f}->{t[(k,1.25)]:.0f} {t[(k,1.25)]/t[(k,0.8)]:.2f}" for k in rs), flush=True)
    for k in rs: rs[k].append(t[(k,1.25)]/t[(k,0.8)])
for k, v in rs.items():
    v = np.array(v); print(k, f"{np.mean(np.abs(np.log(v/1.5625))<0.08):.0%}", np.round(np.sort(v),2))
