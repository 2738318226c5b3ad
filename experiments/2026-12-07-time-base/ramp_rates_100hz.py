"""The relative time base's follower on a 100-Hz (or FPS) onset envelope (librosa's onset strength) instead of the
20-fps feature rows: python ramp_rates_100hz.py RAMP_DIR [FPS] [TempoConfig field=value ...] (RAMP_DIR: ramp_rates.py's OUT)."""
import sys, numpy as np, librosa
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from time_base_relative import TempoTracker, TempoFollower, TempoConfig
from transflower.audio_features import load_audio_mono
out = Path(sys.argv[1])
FPS = float(sys.argv[2]) if len(sys.argv) > 2 else 100.0
kw = dict(a.split("=") for a in sys.argv[3:])
cfg = TempoConfig(**{k: float(v) for k, v in kw.items()})
cfg = TempoConfig(**{**cfg.__dict__, "update_every": int(FPS / 5)})
res = []
for sid in ["DANCE_C_6", "DANCE_R_3", "DANCE_W_11", "DANCE_W_20", "DANCE_W_26", "DANCE_W_33", "funk"]:
    y, sr = load_audio_mono(out / f"{sid}_ramp.wav")
    env = librosa.onset.onset_strength(y=np.asarray(y, np.float32), sr=sr, hop_length=int(sr / FPS), n_mels=64, fmax=11000)
    tr, fo = TempoTracker(FPS, cfg), TempoFollower(FPS, cfg)
    rates = []
    for x in env:
        raw = tr.update(x); rates.append(fo.update(tr, raw))
    rates = np.array(rates); f = int(FPS)
    before, after = np.median(rates[10*f:15*f]), np.median(rates[30*f:40*f])
    res.append(after / before)
    print(f"{sid:11s} {before:.2f} -> {after:.2f}  trace " + " ".join(f"{rates[t*f]:.2f}" for t in range(8, 40, 2)))
print("ratios", np.round(res, 2))
