"""Could the time base take its reference from the dance itself instead of a style's tempo? Two probes on
model v1's own dances (2 per song and tempo; the 6 test songs and the funk track at x0.8 / x1 / x1.25, the demo
track at 100 / 124 / 140 BPM):

  python dance_reference_probe.py dance DATA OUT     # the dances and the music's onset envelopes -> OUT/*.npz
  python dance_reference_probe.py period OUT         # the dance's rhythm period vs the music's beat period
  python dance_reference_probe.py style DATA OUT     # which style each 5-s window of each dance reads as

`period`: the strongest peak (0.3-2 s) of the autocorrelation of the rise of the dance's mean joint speed,
and of the music's onset envelope; rate = the first over the second, folded to within half an octave.
`style`: bench style's classifier of real dances (held-out accuracy 1.00) on each dance.
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from transflower.audio_features import AudioFeatureConfig, compute_audio_features, load_audio_mono
from transflower.benchmarks import music as bm

FPS = 20.0
SONGS = ["DANCE_C_6", "DANCE_R_3", "DANCE_W_11", "DANCE_W_20", "DANCE_W_26", "DANCE_W_33", "funk"]
FUNK = "../shared/data/music/Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"
MODEL = Path("transflower/default_model/transflower_live.onnx")


def conditions():
    return [(s, f) for s in SONGS for f in (0.8, 1.0, 1.25)] + [("demo", b) for b in (100, 124, 140)]


def dance(data, out):
    feats = json.loads((data / "features.json").read_text())
    feats["_path"] = str(data / "features.json")
    acfg = AudioFeatureConfig.from_dict(feats["audio_config"])
    tmp = Path(tempfile.mkdtemp())
    for sid, f in conditions():
        if sid == "demo":
            p = bm.write_wav(tmp / f"demo_{f}.wav", bm.demo_track(float(f), 34.0), 24000)
        else:
            y, sr = load_audio_mono(FUNK if sid == "funk" else data / f"{sid}.wav")
            p = bm.write_wav(tmp / f"{sid}_{f}.wav", bm.stretch(y[: int(50 * sr)], f), sr)
        onset = compute_audio_features(*load_audio_mono(p), acfg)[:, acfg.names.index("onset")]
        for k in range(2):
            np.savez(out / f"{sid}_{f}_{k}.npz", onset=onset, pos=bm.dance(MODEL, p, 30.0, 11 + k, True, feats))


def acf(x, n=80):
    x = np.asarray(x, float) - np.mean(x)
    d = float(x @ x) or 1.0
    return np.array([x[k:] @ x[: len(x) - k] / d for k in range(n + 1)])


def peak(a, lo=0.3, hi=2.0):
    i0, seg = int(lo * FPS), a[int(lo * FPS): int(hi * FPS) + 1]
    pk = [i for i in range(1, len(seg) - 1) if seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1]]
    return (max(pk, key=lambda i: seg[i]) + i0) / FPS if pk else float("nan")


def period(out):
    for sid, f in conditions():
        z = [np.load(out / f"{sid}_{f}_{k}.npz") for k in range(2)]
        pm = peak(acf(z[0]["onset"][:600]))
        pds = [peak(bm.rhythm_acf(bm.mean_joint_speed(q["pos"], FPS), FPS)) for q in z]
        rates = [2.0 ** (np.log2(pd / pm) - np.round(np.log2(pd / pm))) for pd in pds]
        print(f"{sid:10s} {f}: music {pm:.2f} s, dance {pds[0]:.2f} / {pds[1]:.2f} s -> rate {rates[0]:.2f} / {rates[1]:.2f}")


def style(data, out):
    from transflower.benchmarks import style as S

    d = S._style_data(data, 5.0)
    clf, _, _ = S._style_classifier(d, print)
    for sid, f in conditions():
        reads = ["".join(d["styles"][i][0] for i in clf.predict(S.window_features(
            np.load(out / f"{sid}_{f}_{k}.npz")["pos"], d["names"], d["fps"], d["seg"]))) for k in range(2)]
        print(f"{sid:10s} {f}: {' '.join(reads)}  (c cha-cha, r rumba, w waltz; one letter per 5 s)")


if __name__ == "__main__":
    cmd, args = sys.argv[1], [Path(a) for a in sys.argv[2:]]
    {"dance": dance, "period": period, "style": style}[cmd](*args)
