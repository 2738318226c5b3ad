"""`transflower bench music --data DIR --models name=MODEL ...`: does the dancer follow the music?

On every test song (base_filenames_test.txt; the song's own audio from `<id>.wav`), each model dances as
`transflower generate` does (its own seed clip, default temperature, style auto, grounded, the energy
gate on unless `--no-energy`), `--samples` times per condition:

- **tempo following**: the song time-stretched (pitch kept, librosa's phase vocoder) to x0.8 and x1.25.
  A dance's rhythm is the autocorrelation of the rise of its mean joint speed (lags up to 4 s); the time
  scale `s` that best maps the slow version's rhythm onto the fast one's (A_fast(tau) = A_slow(tau / s),
  tau in 0.2-2 s, correlation over a log grid of s in 0.4-1.6) is the answer. A dancer that follows
  the tempo gives 0.8 / 1.25 = 0.64 (the real dance resampled in time the same way: the `real` row);
  one that ignores it gives 1. The same on the project's demo track made at 100 and 140 BPM (0.71 follows).
  Beside it, the pace: the mean joint speed at x1.25 over that at x0.8 (the real dance: 1.56).
- **breaks**: seconds 20-32 of each song silenced. Mean joint speed during the silence (from 2 s after it
  starts) over the 10 s of music before it; the time from the silence's start until the 1-s mean speed
  falls to 0.35x that (settle), and from the music's return until it is back at 0.8x (resume).
- **beat alignment** (the model's own lookahead; the shipped model hears 100 ms ahead): the beat alignment
  score of each x1 dance against its song's beats, and against the next test song's beats (the
  music-shuffled control: a dance that ignores the beat scores the same on both).

`--extra AUDIO...` dances other music (other genres: no real dance to compare) in the same conditions,
reported beside the test songs; the targets read the test songs only.

Writes `music.json`, `music.md` (the tables) and `music_speed.png` (mean joint speed of one song's dance at
x0.8 and x1.25 over time, the music's beats marked) to `--out`.
"""
from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from transflower.atomic import write_json_atomic
from transflower.errors import UserError

log = logging.getLogger("transflower.bench.music")

SLOW, FAST = 0.8, 1.25
DEMO_BPMS = (100.0, 124.0, 140.0)
BREAK_START_S, BREAK_END_S = 20.0, 32.0
TARGETS = {"tempo_s": (0.58, 0.70), "tempo_s_max": 0.80, "demo_s": (0.61, 0.81), "break_ratio": 0.35,
           "settle_s": 2.0, "resume_s": 2.0}


# ---------------------------------------------------------------------------------------------
# Measures (numpy only)


def mean_joint_speed(pos: np.ndarray, fps: float) -> np.ndarray:
    """(T, J, 3) cm -> (T-1,) mean joint speed, m/s."""
    p = np.asarray(pos, np.float64) / 100.0
    return np.linalg.norm(np.diff(p, axis=0), axis=-1).mean(1) * fps


def rhythm_acf(speed: np.ndarray, fps: float, max_lag_s: float = 4.0) -> np.ndarray:
    """Normalised autocorrelation of the speed's rise (its positive change), lags 0..max_lag_s."""
    rise = np.maximum(np.diff(np.asarray(speed, np.float64)), 0.0)
    x = rise - rise.mean()
    n = min(len(x) - 1, int(round(max_lag_s * fps)))
    if n < int(2 * fps):
        raise ValueError(f"rhythm_acf: {len(x)} frames are too few for lags up to 2 s")
    denom = float(np.dot(x, x)) or 1.0
    return np.array([np.dot(x[k:], x[: len(x) - k]) / denom for k in range(n + 1)])


def time_scale(acf_slow: np.ndarray, acf_fast: np.ndarray, fps: float) -> float:
    """The s in 0.4..1.6 that best maps the slow dance's rhythm onto the fast one's: A_fast(tau) ~ A_slow(tau / s)."""
    taus = np.arange(int(round(0.2 * fps)), int(round(2.0 * fps)) + 1) / fps
    lags = np.arange(len(acf_slow)) / fps
    a = np.interp(taus, np.arange(len(acf_fast)) / fps, acf_fast)
    a = a - a.mean()
    best, best_s = -np.inf, 1.0
    for s in np.exp(np.linspace(np.log(0.4), np.log(1.6), 241)):
        b = np.interp(taus / s, lags, acf_slow)
        b = b - b.mean()
        c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        if c > best:
            best, best_s = c, float(s)
    return best_s


def smoothed(speed: np.ndarray, fps: float, seconds: float = 1.0) -> np.ndarray:
    """Trailing mean over `seconds` (causal: what a viewer has just seen)."""
    k = max(1, int(round(seconds * fps)))
    c = np.concatenate([[0.0], np.cumsum(speed)])
    hi = np.arange(1, len(speed) + 1)
    lo = np.maximum(0, hi - k)
    return (c[hi] - c[lo]) / (hi - lo)


def break_measures(speed: np.ndarray, fps: float, start_s: float = BREAK_START_S, end_s: float = BREAK_END_S) -> dict:
    """Speed during / before a silence, time to settle (1-s mean <= 0.35x before) and to resume (>= 0.8x)."""
    f = lambda s: int(round(s * fps))  # noqa: E731
    before = float(speed[f(start_s - 10): f(start_s)].mean())
    during = float(speed[f(start_s + 2): f(end_s)].mean())
    sm = smoothed(speed, fps)
    quiet = np.flatnonzero(sm[f(start_s): f(end_s)] <= TARGETS["break_ratio"] * before)
    back = np.flatnonzero(sm[f(end_s):] >= 0.8 * before)
    return {"before": before, "during": during, "ratio": during / max(before, 1e-9),
            "settle_s": float(quiet[0] / fps) if len(quiet) else float("inf"),
            "resume_s": float(back[0] / fps) if len(back) else float("inf")}


# ---------------------------------------------------------------------------------------------
# Conditions


def stretch(y: np.ndarray, factor: float) -> np.ndarray:
    import librosa

    return y if factor == 1.0 else librosa.effects.time_stretch(np.asarray(y, np.float32), rate=factor)


def with_break(y: np.ndarray, sr: int) -> np.ndarray:
    y = np.array(y, np.float32)
    y[int(BREAK_START_S * sr): int(BREAK_END_S * sr)] = 0.0
    return y


def write_wav(path: Path, y: np.ndarray, sr: int) -> Path:
    import soundfile as sf

    sf.write(str(path), np.asarray(y, np.float32), sr)
    return path


def demo_track(bpm: float, seconds: float, sr: int = 24000) -> np.ndarray:
    from transflower.realtime.demo_track import synthesize_demo_track

    y = synthesize_demo_track(seconds, sr, bpm=bpm)
    return (y.mean(1) if y.ndim == 2 else y).astype(np.float32)


def dance(model: Path, wav: Path, seconds: float, seed: int, energy: bool, feats: dict, style: str | None = None,
          time_base: bool = False) -> np.ndarray:
    """One dance as `transflower generate` makes it -> (T, J, 3) joint positions (cm)."""
    from transflower.benchmarks.metrics import positions_from_features
    from transflower.generate import generate

    res = generate(model, wav, seed=seed, max_seconds=seconds, progress=False, energy=energy,
                   features_json=feats.get("_path"), style=style, time_base=time_base)
    return positions_from_features(res["motion"], res["skeleton"])


class BaselineDancer:
    """A baseline's checkpoint (transformer_mse, moglow: no live engine) dancing a file with its own torch
    `generate`, as `bench quality` samples it (temperature 1, as trained; no energy gate, no grounding: they
    are the engine's), warm-started on the first 2 s of the first test song's real dance."""

    def __init__(self, model, data_dir: Path, feats: dict, seed_id: str):
        from transflower.dataset import load_modality
        from transflower.features import StandardScaler

        import torch

        torch.set_num_threads(1)  # a step is small: a second thread only waits on a busy machine (as the live model's torch step)
        self.model = model
        self.feats, self.fps = feats, float(feats["fps"])
        self.ms, self.as_ = StandardScaler.from_dict(feats["motion_scaler"]), StandardScaler.from_dict(feats["audio_scaler"])
        self.seed = load_modality(data_dir, seed_id, "motion")[: int(2 * self.fps)]

    def __call__(self, wav: Path, seconds: float, seed: int, style: str | None = None) -> np.ndarray:
        import torch

        from transflower.benchmarks.metrics import positions_from_features
        from transflower.generate import song_audio_features

        audio = song_audio_features(wav, self.feats["audio_config"])
        n = min(len(audio), int(seconds * self.fps))
        a = torch.from_numpy(np.ascontiguousarray(self.as_.transform(audio[:n]), np.float32))
        with torch.no_grad():
            x = self.model.generate(torch.from_numpy(np.ascontiguousarray(self.seed, np.float32)), a, n, 1.0,
                                    torch.Generator().manual_seed(int(seed)))
        x = np.asarray(x.detach().cpu().numpy(), np.float64)
        return positions_from_features(self.ms.inverse(x), self.feats["skeleton"])


def dancer_for(path, data_dir: Path, feats: dict, ids: list[str], energy: bool, time_base: bool = False):
    """-> dance(wav, seconds, seed, style=None) -> (T, J, 3): our live model through `generate` (an .onnx, or a
    transflower_live checkpoint), a baseline's checkpoint through its own sampler (no styles, no time base)."""
    if Path(path).suffix != ".onnx":
        from transflower.checkpoint import load_checkpoint

        model, cfg = load_checkpoint(path)
        if cfg.get("model") != "transflower_live":
            return BaselineDancer(model, data_dir, feats, ids[0])
    return lambda wav, seconds, seed, style=None: dance(path, wav, seconds, seed, energy, feats, style, time_base)


# ---------------------------------------------------------------------------------------------
# The bench


def run_music(data_dir, models: dict, samples: int = 3, seconds: float = 30.0, energy: bool = True,
              out_dir=None, songs: int | None = None, extra: list | None = None, time_base: bool = False,
              style: str | None = None) -> dict:
    """extra: audio files outside the data (other genres) danced in the same conditions, reported apart.
    time_base: every dance on the beat-matched clock (transflower.realtime.time_base). style: every dance started
    in it; "labelled": each test song in its own labelled style (the extra songs and the demo track: auto)."""
    from transflower.benchmarks.metrics import music_beats
    from transflower.dataset import read_ids

    data_dir = Path(data_dir)
    feats_path = data_dir / "features.json"
    if not feats_path.exists():
        raise UserError(f"{feats_path}: missing; run `transflower features {data_dir}` first")
    feats = json.loads(feats_path.read_text())
    feats["_path"] = str(feats_path)
    fps = float(feats["fps"])
    ids = [i for i in read_ids(data_dir, "test") if "~" not in i][: songs or None]
    extra_paths = {}
    for p in extra or []:
        if not Path(p).is_file():
            raise UserError(f"--extra {p}: not an audio file")
        extra_paths[Path(p).stem] = Path(p)
    tmp = Path(tempfile.mkdtemp(prefix="bench_music_"))
    break_s = BREAK_END_S + 12.0
    cond = _condition_audio(data_dir, ids, extra_paths, tmp, break_s)
    demo = {bpm: write_wav(tmp / f"demo_{int(bpm)}.wav", demo_track(bpm, seconds + 4), 24000) for bpm in DEMO_BPMS}

    res = {"songs": ids, "extra": list(extra_paths), "samples": samples, "seconds": seconds, "fps": fps, "energy": energy,
           "time_base": bool(time_base), "style": style, "models": {}}
    clip_styles = feats.get("clip_styles") or {}
    if style == "labelled":
        missing = [i for i in ids if i not in clip_styles]
        if missing:
            raise UserError(f"--style labelled: {feats_path} labels no style for test songs {missing}")
    styles = {sid: (clip_styles.get(sid) if style == "labelled" else style) for sid in ids + list(extra_paths) + ["demo"]}
    res["real"] = _real_following(data_dir, ids, feats, seconds)
    beats = {sid: music_beats(cond[sid][1.0], fps, int(seconds * fps)) for sid in ids}
    strip = None
    for name, path in models.items():
        plot = name == next(iter(models))  # the plot: the first model's first dance
        row, model_strip = _model_row(name, dancer_for(path, data_dir, feats, ids, energy, time_base), ids, list(extra_paths),
                                      cond, beats, demo, break_s, samples, seconds, feats, plot, styles)
        if plot:
            strip = model_strip
        res["models"][name] = summarise(row, ids)
    if out_dir is not None and strip:
        plot_speed(strip, fps, Path(out_dir) / "music_speed.png", ids[0])
    return res


def _condition_audio(data_dir: Path, ids: list[str], extra_paths: dict, tmp: Path, break_s: float) -> dict:
    """Each song's conditions' audio, written once and shared by every model: {sid: {0.8|1.0|1.25|"break": wav}}
    (the break only where the song is long enough)."""
    from tqdm import tqdm

    from transflower.audio_features import load_audio_mono

    cond = {}
    for sid in tqdm(ids + list(extra_paths), desc="stretching songs", unit="song"):
        wav = extra_paths.get(sid, data_dir / f"{sid}.wav")
        if not wav.exists():
            raise UserError(f"{wav}: the test song's audio is missing")
        y, sr = load_audio_mono(wav)
        c = {f: write_wav(tmp / f"{sid}_x{f}.wav", stretch(y, f), sr) for f in (SLOW, 1.0, FAST)}
        if len(y) / sr >= break_s:
            c["break"] = write_wav(tmp / f"{sid}_break.wav", with_break(y, sr), sr)
        cond[sid] = c
    return cond


def _real_following(data_dir: Path, ids: list[str], feats: dict, seconds: float) -> dict:
    """The real dances, resampled in time as the music was stretched: what following looks like."""
    from transflower.benchmarks.metrics import positions_from_features
    from transflower.features import StandardScaler, stretch_motion
    from transflower.motion_features import MotionFeatures
    from transflower.skeleton import Skeleton

    fps = float(feats["fps"])
    skel = Skeleton.from_dict(feats["skeleton"])
    ms = StandardScaler.from_dict(feats["motion_scaler"])
    enc = MotionFeatures(skel)
    real = {}
    for sid in ids:
        m = ms.inverse(np.load(data_dir / f"{sid}.motion.npy"))
        root, rots = enc.decode(np.asarray(m, np.float64))
        acfs, pace = {}, {}
        for f in (SLOW, FAST):
            r2, q2 = stretch_motion(root, rots, fps, f)
            pos = positions_from_features(enc.encode(r2, q2)[: int(seconds * fps)], skel)
            sp = mean_joint_speed(pos, fps)
            acfs[f], pace[f] = rhythm_acf(sp, fps), float(sp.mean())
        real[sid] = (time_scale(acfs[SLOW], acfs[FAST], fps), pace[FAST] / pace[SLOW])
    return {"tempo_s": {k: v[0] for k, v in real.items()}, "tempo_s_median": float(np.median([v[0] for v in real.values()])),
            "pace_ratio_median": float(np.median([v[1] for v in real.values()]))}


def _model_row(name: str, dancer, ids: list[str], extra_ids: list[str], cond: dict, beats: dict, demo: dict,
               break_s: float, samples: int, seconds: float, feats: dict, plot: bool, styles: dict | None = None):
    """One model's raw measures on every song and the demo track -> (row for `summarise`, the speed strip
    of its first dance at x0.8 and x1.25 when `plot`, else None)."""
    from tqdm import tqdm

    from transflower.benchmarks.metrics import beat_alignment_score, motion_beats, music_beats

    fps = float(feats["fps"])
    row = {"tempo_s": {}, "pace_ratio": {}, "breaks": {}, "bas": [], "bas_shuffled": [], "demo_s": {}, "demo_pace": {}}
    strip = None
    styles = styles or {}
    for i, sid in enumerate(tqdm(ids + extra_ids, desc=f"{name}", unit="song")):
        acfs, pace = {SLOW: [], FAST: []}, {SLOW: [], FAST: []}
        for k in range(samples):
            seed = 1000 * k + i
            for f in (SLOW, FAST):
                pos = dancer(cond[sid][f], seconds, seed, style=styles.get(sid))
                sp = mean_joint_speed(pos, fps)
                acfs[f].append(rhythm_acf(sp, fps))
                pace[f].append(float(sp.mean()))
                if i == 0 and k == 0 and plot:
                    strip = strip or {}
                    strip[f] = (sp, music_beats(cond[sid][f], fps, len(sp)))
            if sid in beats:  # beat alignment: the test songs, against the next one's beats as the control
                pos = dancer(cond[sid][1.0], seconds, seed, style=styles.get(sid))
                mb = motion_beats(pos, fps)
                row["bas"].append(beat_alignment_score(beats[sid], mb, fps))
                row["bas_shuffled"].append(beat_alignment_score(beats[ids[(i + 1) % len(ids)]], mb, fps))
            if "break" in cond[sid]:
                pos = dancer(cond[sid]["break"], break_s, seed, style=styles.get(sid))
                row["breaks"].setdefault(sid, []).append(break_measures(mean_joint_speed(pos, fps), fps))
        row["tempo_s"][sid] = time_scale(np.mean(acfs[SLOW], 0), np.mean(acfs[FAST], 0), fps)
        row["pace_ratio"][sid] = float(np.mean(pace[FAST]) / np.mean(pace[SLOW]))
    dspeed = {bpm: [mean_joint_speed(dancer(demo[bpm], seconds, 7 + k, style=styles.get("demo")), fps) for k in range(samples)]
              for bpm in DEMO_BPMS}
    dacf = {bpm: [rhythm_acf(sp, fps) for sp in sps] for bpm, sps in dspeed.items()}
    for bpm in DEMO_BPMS[1:]:
        key = f"{int(DEMO_BPMS[0])}->{int(bpm)}"
        row["demo_s"][key] = time_scale(np.mean(dacf[DEMO_BPMS[0]], 0), np.mean(dacf[bpm], 0), fps)
        # the pace beside it (following: bpm / 100), a measure the rhythm's octaves cannot confuse
        row["demo_pace"][key] = float(np.mean([sp.mean() for sp in dspeed[bpm]]) / np.mean([sp.mean() for sp in dspeed[DEMO_BPMS[0]]]))
    return row, strip


def summarise(row: dict, ids: list[str]) -> dict:
    """The targets read the test songs only; the extra songs' values are reported beside them."""
    s = [row["tempo_s"][i] for i in ids]
    br = [b for sid, bs in row["breaks"].items() if sid in ids for b in bs]
    med = lambda xs: float(np.median(xs)) if len(xs) else float("nan")  # noqa: E731
    out = {"tempo_s": row["tempo_s"], "tempo_s_median": med(s), "tempo_s_max": float(max(s)) if s else float("nan"),
           "pace_ratio": row["pace_ratio"], "pace_ratio_median": med([row["pace_ratio"][i] for i in ids]),
           "demo_s": row["demo_s"], "demo_pace": row.get("demo_pace", {}), "bas": med(row["bas"]), "bas_shuffled": med(row["bas_shuffled"]),
           "breaks": {sid: {k: med([b[k] for b in bs]) for k in bs[0]} for sid, bs in row["breaks"].items()},
           "break_ratio": med([b["ratio"] for b in br]), "settle_s": med([b["settle_s"] for b in br]),
           "resume_s": med([b["resume_s"] for b in br]), "break_dances": len(br)}
    t = TARGETS
    out["targets"] = {
        "tempo following (median s 0.58-0.70, none above 0.80)": bool(t["tempo_s"][0] <= out["tempo_s_median"] <= t["tempo_s"][1]
                                                                      and out["tempo_s_max"] <= t["tempo_s_max"]),
        "demo 100->140 BPM (s within 0.10 of 0.71)": bool(abs(row["demo_s"].get("100->140", np.nan) - 100 / 140) <= 0.10),
        "break: speed <= 0.35x": bool(out["break_ratio"] <= t["break_ratio"]),
        "break: settled within 2 s": bool(out["settle_s"] <= t["settle_s"]),
        "break: resumed within 2 s": bool(out["resume_s"] <= t["resume_s"]),
    }
    return out


def plot_speed(strip: dict, fps: float, path: Path, song: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(strip), 1, figsize=(11, 2.4 * len(strip)), sharex=True)
    for ax, (f, (sp, beats)) in zip(np.atleast_1d(axes), sorted(strip.items())):
        t = np.arange(len(sp)) / fps
        ax.plot(t, sp, lw=1.0)
        for b in beats:
            ax.axvline(b / fps, color="tab:red", lw=0.5, alpha=0.5)
        ax.set_ylabel(f"x{f}: m/s")
    np.atleast_1d(axes)[-1].set_xlabel("seconds (red: the music's beats)")
    fig.suptitle(f"{song}: mean joint speed of the dance, music at x{SLOW} and x{FAST}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def format_table(res: dict) -> str:
    songs = res["songs"] + res.get("extra", [])
    lines = [f"Tempo following: time scale s of the dance between the song at x{SLOW} and x{FAST} "
             f"(0.64 follows, 1.0 ignores); {res['samples']} samples, {res['seconds']:g} s; energy gate "
             f"{'on' if res['energy'] else 'off'}" + ("; time base on" if res.get("time_base") else "")
             + (f"; style {res['style']}" if res.get("style") else ""), "",
             "| model | " + " | ".join(s.replace("DANCE_", "") for s in songs) + " | median | max | demo 100->124 | demo 100->140 | pace x1.25 / x0.8 | demo pace 100->140 |",
             "|---|" + "---|" * (len(songs) + 6)]
    r = res["real"]["tempo_s"]
    lines.append("| real (resampled) | " + " | ".join(f"{r[s]:.2f}" if s in r else "-" for s in songs) +
                 f" | {res['real']['tempo_s_median']:.2f} | {max(r.values()):.2f} | 0.81 | 0.71 | {res['real']['pace_ratio_median']:.2f} | 1.40 |")
    for name, m in res["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m['tempo_s'][s]:.2f}" for s in songs) +
                     f" | {m['tempo_s_median']:.2f} | {m['tempo_s_max']:.2f} | {m['demo_s'].get('100->124', float('nan')):.2f}"
                     f" | {m['demo_s'].get('100->140', float('nan')):.2f} | {m['pace_ratio_median']:.2f}"
                     f" | {m.get('demo_pace', {}).get('100->140', float('nan')):.2f} |")
    if res.get("extra"):
        lines.append(f"(median and max over the test songs; {', '.join(res['extra'])}: outside the data, no real dance)")
    lines += ["", f"Breaks (seconds {BREAK_START_S:g}-{BREAK_END_S:g} silenced, test songs of {BREAK_END_S + 12:g} s or more) "
              "and beat alignment", "",
              "| model | speed during / before | settle s | resume s | dances | BAS | BAS shuffled music |", "|---|---|---|---|---|---|---|"]
    for name, m in res["models"].items():
        lines.append(f"| {name} | {m['break_ratio']:.2f} | {m['settle_s']:.1f} | {m['resume_s']:.1f} | {m['break_dances']} "
                     f"| {m['bas']:.3f} | {m['bas_shuffled']:.3f} |")
    lines += ["", "Targets: " + "; ".join(f"{name}: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in m["targets"].items())
                                        for name, m in res["models"].items())]
    return "\n".join(lines)


def configure_parser(p) -> None:
    p.add_argument("--data", required=True, help="feature folder (transflower features) whose test split is danced")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=MODEL",
                   help="models to judge: NAME=checkpoint.ckpt or NAME=model.onnx")
    p.add_argument("--samples", type=int, default=3, help="dances per song and condition (default 3)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each tempo / beat dance (default 30)")
    p.add_argument("--songs", type=int, default=None, help="only the first N test songs (quick checks)")
    p.add_argument("--extra", nargs="*", default=[], metavar="AUDIO",
                   help="audio files outside the data (other genres) danced in the same conditions, reported apart")
    p.add_argument("--no-energy", action="store_true", help="judge the models without the energy gate (an ablation)")
    p.add_argument("--time-base", action="store_true",
                   help="every dance on the beat-matched clock (`live --time-base`; reported apart from the model's own following)")
    p.add_argument("--style", default=None, metavar="STYLE|labelled",
                   help="start every dance in this style, or 'labelled': each test song in its own labelled style "
                        "(the extra songs and the demo track: auto); default auto, as `generate`")
    p.add_argument("--out", default="bench_out", help="folder for music.json, music.md and music_speed.png")


def run(args) -> int:
    from transflower.benchmarks.quality import parse_models

    if args.samples < 1 or args.seconds < 10:
        raise UserError("--samples must be >= 1 and --seconds >= 10 (the rhythm needs lags up to 4 s)")
    models = parse_models(args.models)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = run_music(args.data, models, args.samples, args.seconds, not args.no_energy, out, args.songs, args.extra,
                    time_base=args.time_base, style=args.style)
    write_json_atomic(out / "music.json", res)
    table = format_table(res)
    (out / "music.md").write_text(table + "\n")
    print(table)
    print(f"wrote {out / 'music.json'}, {out / 'music.md'}, {out / 'music_speed.png'}")
    return 0
