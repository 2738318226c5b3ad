"""Does the relative time base follow a pitch ride? python ramp_rates.py DATA OUT_DIR [TempoConfig field=value ...]
Each test song (and the funk track) as one stream: x0.8 until 15 s, up to x1.25 over 8 s; the time base's rate
before the ride and after it (a follower gives 1.56 after / before)."""
import sys, json, numpy as np
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from transflower.generate import song_audio_features
from time_base_relative import TimeBase, TempoConfig
from transflower.audio_features import load_audio_mono
from transflower.benchmarks import music as M
from tempo_ramp import tempo_ramp
D = Path(sys.argv[1]); out = Path(sys.argv[2]); out.mkdir(exist_ok=True)
feats = json.load(open(D / "features.json"))
FUNK = Path("../shared/data/music/Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg")  # run from the project root
kw = dict(a.split("=") for a in sys.argv[3:])
cfg = TempoConfig(**{k: float(v) for k, v in kw.items()})
res = []
for sid in ["DANCE_C_6", "DANCE_R_3", "DANCE_W_11", "DANCE_W_20", "DANCE_W_26", "DANCE_W_33", "funk"]:
    wav = out / f"{sid}_ramp.wav"
    if not wav.exists():
        y, sr = load_audio_mono(D / f"{sid}.wav") if sid != "funk" else load_audio_mono(FUNK)
        if sid == "funk": y = y[sr * 20:]
        M.write_wav(wav, tempo_ramp(y, sr), sr)
    a = song_audio_features(str(wav), feats["audio_config"])
    tb = TimeBase(20.0, feats["audio_config"], 1, 46, cfg)
    rates = []
    for row in a:
        tb.due(row); rates.append(tb.rate)
    rates = np.array(rates)
    before, after = np.median(rates[200:300]), np.median(rates[600:800])
    res.append(after / before)
    print(f"{sid:11s} before {before:.2f} after {after:.2f}  trace " + " ".join(f"{rates[t*20]:.2f}" for t in range(8, 40, 2)))
print("ratios", np.round(res, 2), "target 1.56")
