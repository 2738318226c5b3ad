"""Does the music's tempo tell the style in the training data? (2026-12-07, model v2 groundwork)

For every real clip of a feature folder (augmented copies left out): its style, librosa's beat-tracker
tempo of its song, and the median of our causal `tempo` feature (after its first 6 s). Prints a table per
style, and the tempi each style is trained on once the tempo-augmented copies (`~t<f>`) are added.

    python experiments/2026-12-07-music-following/tempo_by_style.py DATA_DIR
"""
import json
import sys
from pathlib import Path

import numpy as np


def main(data_dir: Path) -> None:
    import librosa

    from transflower.audio_features import load_audio_mono

    meta = json.loads((data_dir / "features.json").read_text())
    styles, names = meta["clip_styles"], meta["audio_names"]
    k = names.index("tempo")
    rows = []
    for sid in sorted(styles):
        wav = data_dir / f"{sid}.wav"
        if not wav.exists():
            continue
        y, sr = load_audio_mono(wav)
        bpm = float(np.atleast_1d(librosa.beat.beat_track(y=y[: 60 * sr], sr=sr)[0])[0])
        ours = 120 * 2 ** float(np.median(np.load(data_dir / f"{sid}.audio_raw.npy")[120:, k]))
        rows.append((sid, styles[sid], bpm, ours))
    print("| style | clips | librosa BPM (median, range) | our tempo feature BPM (median, range) |")
    print("|---|---|---|---|")
    for st in sorted(set(r[1] for r in rows)):
        b = [r[2] for r in rows if r[1] == st]
        o = [r[3] for r in rows if r[1] == st]
        print(f"| {st} | {len(b)} | {np.median(b):.0f} ({min(b):.0f}-{max(b):.0f}) | {np.median(o):.0f} ({min(o):.0f}-{max(o):.0f}) |")

    factors = meta.get("tempo_factors") or []
    if factors:
        print(f"\nwith the tempo copies {factors}: the range of tempi each style is trained on (librosa BPM x factor)")
        for st in sorted(set(r[1] for r in rows)):
            b = [r[2] * f for r in rows if r[1] == st for f in [1.0] + list(factors)]
            print(f"- {st}: {np.percentile(b, 10):.0f}-{np.percentile(b, 90):.0f} BPM (10th-90th percentile)")

if __name__ == "__main__":
    main(Path(sys.argv[1]))
