"""What keeps the time base's `s` off on model v1: the reading's first seconds, or the model's loose rhythm?
Each test song in its labelled style at x0.8 and x1.25 (bench music's seeds), the time base's rate replaced:

    python experiments/2026-12-07-time-base/count_in_probe.py DATA DELAY_S SAMPLES SECONDS MODE

MODE rate1: the oracle rate (the stretch factor) after DELAY_S s at rate 1 (0: from the first frame);
mean: the same, the model hearing the training music's mean row until then; aligned: the model frozen until
the same point of the song (DELAY_S / factor s), then the oracle rate; countin: the product's reading, the model
frozen until the rate is read and DELAY_S / rate s of music have played (what became the count-in).
Written before the count-in was in the product: the patch below switches the product's count-in off."""
import json, sys, tempfile
from pathlib import Path
import numpy as np
from transflower.benchmarks import music as bm
import transflower.realtime.time_base as tbm
from transflower.audio_features import load_audio_mono
from transflower.dataset import read_ids

DATA = Path(sys.argv[1]); delay_s = float(sys.argv[2]); samples = int(sys.argv[3]); seconds = float(sys.argv[4]); mode = sys.argv[5] if len(sys.argv) > 5 else "rate1"
feats = json.loads((DATA / "features.json").read_text()); feats["_path"] = str(DATA / "features.json")
fps = float(feats["fps"]); styles = feats.get("clip_styles", {})
MODEL = Path("transflower/default_model/transflower_live.onnx")
ORACLE = {"rate": 1.0}
RATES = []
MEAN = np.asarray(feats["audio_scaler"]["mean"], np.float32)
def due(self, row):
    self.counting_in = self.started_now = False  # the product's own count-in off: this probe replaces it
    self.listen(row)
    listening = self.reading.frames < delay_s * fps
    if mode == "countin":  # the real reading; frozen until delay_s / rate of music has been heard
        if not getattr(self, "_go", False):
            if self.tempo is not None and self.reading.frames >= delay_s / self.rate * fps:
                self._go = True; RATES.append((ORACLE["rate"], round(self.rate, 3), self.reading.frames))
            elif self.reading.frames >= 15 * fps:
                self._go = True
            else:
                self.row[:] = row
                return 0
        self.row[:] = row; self.row[self.tempo_index] -= np.log2(self.rate)
        return self.clock.due(self.rate)
    if mode == "aligned":  # the model starts at native music position delay_s: real time delay_s / f, frozen before
        if self.reading.frames < delay_s / ORACLE["rate"] * fps:
            self.row[:] = row
            return 0
        self.rate = ORACLE["rate"]; self.row[:] = row; self.row[self.tempo_index] -= np.log2(self.rate)
        return self.clock.due(self.rate)
    self.rate = 1.0 if listening else ORACLE["rate"]
    self.row[:] = MEAN if (listening and mode == "mean") else row
    self.row[self.tempo_index] -= np.log2(self.rate)
    return self.clock.due(self.rate)
tbm.TimeBase.due = due
ids = [i for i in read_ids(DATA, "test") if "~" not in i]
tmp = Path(tempfile.mkdtemp())
ss, paces = [], []
for i, sid in enumerate(ids):
    y, sr = load_audio_mono(DATA / f"{sid}.wav")
    acfs, pace = {}, {}
    for f in (bm.SLOW, bm.FAST):
        p = bm.write_wav(tmp / f"{sid}_{f}.wav", bm.stretch(y[: int((seconds / 0.8 + 4) * sr)], f), sr)
        ORACLE["rate"] = f
        sps = [bm.mean_joint_speed(bm.dance(MODEL, p, seconds, 1000 * k + i, True, feats, styles.get(sid), True), fps) for k in range(samples)]
        acfs[f] = np.mean([bm.rhythm_acf(sp, fps) for sp in sps], 0); pace[f] = np.mean([sp.mean() for sp in sps])
    s = bm.time_scale(acfs[bm.SLOW], acfs[bm.FAST], fps); ss.append(s); paces.append(pace[bm.FAST] / pace[bm.SLOW])
    print(sid, "s", round(s, 2), "pace", round(paces[-1], 2), flush=True)
print("rates", RATES); print("mode", mode, "delay", delay_s, "median s", np.median(ss).round(2), "max", max(ss), "median pace", np.median(paces).round(2))
