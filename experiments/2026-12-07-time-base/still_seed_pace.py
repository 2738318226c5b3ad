"""Does v1 take its pace from the music when its own past says nothing? python still_seed_pace.py CACHE (the test
songs' features at x0.8 / x1.25, as pace_regressor_first.py caches them), from the project root."""
import sys, json, numpy as np
from pathlib import Path
from transflower.realtime.onnx_model import OnnxDanceModel
from transflower.realtime.engine import DanceEngine
from transflower.generate import song_audio_features
from transflower.benchmarks import music as M
from transflower.benchmarks.metrics import positions_from_features
model = OnnxDanceModel("transflower/default_model/transflower_live.onnx", provider="cpu", threads=1)
meta = model.meta
mean = np.asarray(meta["motion_scaler"]["mean"], np.float32); mean[:3] = 0
seeds = {"clip": None, "static": np.repeat(mean[None], meta["context"] - 1, 0)}
C = Path(sys.argv[1])
L = meta["lookahead"]
for sid in ["DANCE_C_6", "DANCE_R_3", "DANCE_W_11", "DANCE_W_20", "DANCE_W_26", "DANCE_W_33"]:
    line = [sid]
    for name, seed in seeds.items():
        sp = {}
        for f in (0.8, 1.25):
            a = np.load(C / f"{sid}_{f}.npy")[: 600 + L]
            speeds = []
            for k in range(2):
                e = DanceEngine(model, temperature=0.5, seed=k, seed_motion=seed, prime_audio=a[0])
                out = np.stack([e.step(a[i + L]).copy() for i in range(600)])
                speeds.append(M.mean_joint_speed(positions_from_features(out, meta["skeleton"]), 20.0).mean())
            sp[f] = np.mean(speeds)
        line.append(f"{name}: pace {sp[1.25] / sp[0.8]:.2f}")
    print("  ".join(line), flush=True)
