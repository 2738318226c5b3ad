import numpy as np, glob
from pathlib import Path
from tempo_tracker import TempoTracker, TempoConfig
from transflower.audio_features import AudioFeatureConfig, compute_audio_features
from transflower.realtime.demo_track import synthesize_demo_track
cfg = AudioFeatureConfig()
def run(on, **kw):
    t = TempoTracker(20.0, TempoConfig(**kw)); return np.array([t.update(x) or np.nan for x in on])
for bpm in (100, 124, 128, 140):
    y = synthesize_demo_track(40, 24000, bpm=bpm); y = y.mean(1) if y.ndim == 2 else y
    on = compute_audio_features(y, 24000, cfg)[:, cfg.n_mels+1]
    b = run(on); print("demo", bpm, np.nanmedian(b[200:]).round(1), np.nanmin(b[200:]).round(1), np.nanmax(b[200:]).round(1))
songs = sorted({Path(p).name.rsplit("_",1)[0] for p in glob.glob("/tmp/tracker_probe/*.npy")})
for kw in [dict(), dict(prior_octaves=2.0), dict(prior_bpm=100.0, prior_octaves=1.5)]:
    rs = []
    for s in songs:
        m = {f: np.nanmedian(run(np.load(f"/tmp/tracker_probe/{s}_{f}.npy"), **kw)[200:]) for f in (0.8, 1.0, 1.25)}
        rs.append(m[1.25]/m[0.8])
    rs = np.array(rs); print(kw, f"right {np.mean(np.abs(np.log(rs/1.5625))<0.08):.0%}", np.round(np.sort(rs), 2))
