"""Which causal tempo reading keeps its metrical level when a song is stretched x0.8 vs x1.25?

python experiments/2026-12-07-time-base/tracker_probe.py DATA [N_SONGS]
For each song: the audio features of the x0.8 and x1.25 versions, candidate trackers run over the onset
column (20 fps), the ratio of their median tempi (after 8 s) against the true 1.5625."""
import sys
from pathlib import Path

import numpy as np

from transflower.audio_features import AudioFeatureConfig, compute_audio_features, load_audio_mono
from transflower.dataset import read_ids

sys.path.insert(0, str(Path(__file__).parent))
from candidates import CANDIDATES  # noqa: E402

data = Path(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 14
ids = [i for i in read_ids(data, "test") if "~" not in i] + [i for i in read_ids(data, "train") if "~" not in i]
ids = ids[:n]
cfg = AudioFeatureConfig()
import librosa  # noqa: E402

cache = Path("/tmp/tracker_probe"); cache.mkdir(exist_ok=True)
res = {k: [] for k in CANDIDATES}
for sid in ids:
    y, sr = load_audio_mono(data / f"{sid}.wav")
    y = y[: sr * 45]
    on = {}
    for f in (0.8, 1.0, 1.25):
        p = cache / f"{sid}_{f}.npy"
        if not p.exists():
            ys = y if f == 1.0 else librosa.effects.time_stretch(np.asarray(y, np.float32), rate=f)
            np.save(p, compute_audio_features(ys, sr, cfg)[:, cfg.n_mels + 1])
        on[f] = np.load(p)
    line = [sid[:14].ljust(14)]
    for k, fn in CANDIDATES.items():
        t = {f: np.median(fn(on[f], cfg.fps)[160:]) for f in on}
        r = t[1.25] / t[0.8]
        res[k].append(r)
        line.append(f"{k}:{t[1.0]:5.0f} {r:4.2f}")
    print("  ".join(line), flush=True)
for k, v in res.items():
    v = np.array(v)
    ok = np.mean(np.abs(np.log(v / 1.5625)) < 0.08)
    print(f"{k:10s} right {ok:.0%}  ratios {np.round(np.sort(v), 2)}")
