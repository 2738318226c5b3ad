"""DATA=... CACHE=... python make_stretch_copies.py 0.7,0.85,...: audio features of the training songs' first 90 s
time-stretched by each factor (librosa), cached as CACHE/<id>_<f>.npy."""
import os, sys, json
from pathlib import Path
import numpy as np
from transflower.audio_features import AudioFeatureConfig, compute_audio_features, load_audio_mono
import librosa
D = Path(os.environ["DATA"]); C = Path(os.environ["CACHE"]) / "train"; C.mkdir(parents=True, exist_ok=True)
feats = json.loads((D / "features.json").read_text())
cfg = AudioFeatureConfig(**feats["audio_config"])
train = [i for i in (D / "base_filenames_train.txt").read_text().split() if "~" not in i]
factors = [float(x) for x in sys.argv[1].split(",")]
for sid in train:
    y, sr = load_audio_mono(D / f"{sid}.wav"); y = np.asarray(y[: sr * 90], np.float32)
    for f in factors:
        p = C / f"{sid}_{f}.npy"
        if p.exists(): continue
        ys = librosa.effects.time_stretch(y, rate=f)
        np.save(p, compute_audio_features(ys, sr, cfg).astype(np.float32)); print(sid, f, flush=True)
