"""`transflower bench style --data DIR --model CKPT`: does the dancer dance the style it is asked for?

1. A style classifier learns the data's styles from real dances: per `--segment-seconds` window, the
   kinetic (FID_k's 78) and geometric (FID_g's 32) features plus the root's mean speed and turn rate,
   standardised; multinomial logistic regression (numpy, class-balanced, L2). Trained on the training
   split's real dances (mirrored copies included: a mirrored waltz is a waltz), scored on the test split's.
2. The model dances every test song once per requested style (and `--samples` times), twice over:
   - *started* in the style, as `live --style` / `generate --style` do: warm-started on the model's seed
     clip of that style (its most typical stretch of training dance), with the model's style preset (a
     multiplier of strength and temperature; `--presets`) applied;
   - *steered* from the song's own dance: the first `--seed-seconds` of the real dance to that song (of
     whatever style), then the label: can the label turn a dance into another style?
   The share of generated windows the classifier assigns to the requested style is reported per style and
   start, and so are the dance-quality kinetics of the started dances (speed, jerk, spike rate, foot
   sliding; `transflower.benchmarks.metrics.kinematics`) as ratios to the real dances of that style (train and test
   clips), against issue 11's targets. `--split train` dances the training songs instead: the presets are
   chosen there, so the test songs stay unseen by that choice.
3. A switch: on every test song the dancer starts in one style and, at `--switch-seconds`, blends to the
   next style linearly over `--blend-seconds` (what `engine.set_style(name, blend_s)` does live). Each
   frame's fastest joint around the switch (1 s before to 2 s after) is compared with the real test
   dances' 99.9th percentile of that speed: a pop would exceed it. Two references say how often a crossing
   happens anyway: the share of the real dances' own 3-s windows that cross the line, and the same dance
   without the switch (same seed, the first style throughout). `--switch-repeats` dances each switch again
   with other noise.
The classifier's held-out accuracy says how far its verdict on generated dances can be trusted.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from transflower.errors import UserError
from transflower.styles import (check_noise_correlation, check_presets, check_strength, load_presets, preset_correlation,
                               preset_of, preset_traction)

log = logging.getLogger("transflower.bench.style")


def window_features(pos: np.ndarray, names: list[str], fps: float, seg: int) -> np.ndarray:
    """(T, J, 3) cm -> (windows, 112) style features."""
    from transflower.benchmarks import metrics as M

    out = []
    for s in M.segments(len(pos), seg):
        p = pos[s]
        hips = p[:, names.index("Hips")] / 100.0
        travel = np.linalg.norm(np.diff(hips[:, [0, 2]], axis=0), axis=-1).mean() * fps
        heading = np.diff(np.unwrap(np.arctan2(*(p[:, names.index("LeftUpLeg")] - p[:, names.index("RightUpLeg")])[:, [2, 0]].T)))
        out.append(np.concatenate([M.kinetic_features(p, fps), M.geometric_features(p, names, fps),
                                   [travel, np.abs(heading).mean() * fps]]))
    return np.array(out)


class StyleClassifier:
    """Multinomial logistic regression on standardised features, class-balanced, L2-regularised.

    A window is classified with each feature clipped to the range the real training windows span: a linear
    model extrapolates, so a feature beyond anything real (a rumba travelling at twice the real pace) would
    otherwise vote with its full weight for whichever style that feature leans to (the shipped model's rumba
    was recognised 81% as danced, 18% with its travel slowed to the real pace: benchmarks/README.md)."""

    def __init__(self, n_classes: int, l2: float = 1e-2, steps: int = 2000, lr: float = 0.5):
        self.n, self.l2, self.steps, self.lr = n_classes, l2, steps, lr

    def fit(self, X: np.ndarray, y: np.ndarray) -> "StyleClassifier":
        self.mean, self.std = X.mean(0), X.std(0) + 1e-6
        Z = (X - self.mean) / self.std
        self.lo, self.hi = Z.min(0), Z.max(0)
        counts = np.bincount(y, minlength=self.n).astype(np.float64)
        w_sample = (1.0 / np.maximum(counts, 1))[y]
        w_sample /= w_sample.sum()
        Y = np.eye(self.n)[y]
        self.W, self.b = np.zeros((Z.shape[1], self.n)), np.zeros(self.n)
        for _ in range(self.steps):  # full-batch gradient descent: a convex problem, small data
            P = self._softmax(Z @ self.W + self.b)
            G = (P - Y) * w_sample[:, None]
            self.W -= self.lr * (Z.T @ G + self.l2 * self.W)
            self.b -= self.lr * G.sum(0)
        return self

    @staticmethod
    def _softmax(a):
        a = a - a.max(1, keepdims=True)
        e = np.exp(a)
        return e / e.sum(1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self._clip(X) @ self.W + self.b).argmax(1)

    def _clip(self, X: np.ndarray) -> np.ndarray:
        return np.clip((X - self.mean) / self.std, self.lo, self.hi)

    def outside(self, X: np.ndarray) -> np.ndarray:
        """(windows,) bool: some feature lies beyond the real training windows' range."""
        Z = (X - self.mean) / self.std
        return ((Z < self.lo) | (Z > self.hi)).any(1)


def _real_windows(data_dir: Path, ids, clip_styles, styles, scaler, skeleton, names, fps, seg, kinetics=None):
    """Classifier windows of the real dances of `ids`; with `kinetics` (a dict), also each style's
    kinematics per clip (mirrored copies left out: they move the same)."""
    from transflower.benchmarks import metrics as M
    from transflower.dataset import load_modality

    X, y = [], []
    for sid in ids:
        style = clip_styles.get(sid.split("~")[0])
        if style not in styles:
            continue
        pos = M.positions_from_features(scaler.inverse(load_modality(data_dir, sid, "motion")), skeleton)
        f = window_features(pos, names, fps, seg)
        X.append(f)
        y += [styles.index(style)] * len(f)
        if kinetics is not None and "~" not in sid:
            kinetics.setdefault(style, []).append(M.kinematics(pos, names, fps))
    return np.concatenate(X), np.array(y)


def style_kinetics(real: list[dict], generated: list[dict]) -> dict:
    """Issue 11's kinetic targets for one style: generated dances against the real dances of that style."""
    def pooled(kin):
        w = np.array([len(k["frame_max_speed"]) for k in kin], np.float64)
        keys = ("speed", "jerk", "slide") + tuple(key for key in ("travel", "body", "hips") if all(key in k for k in real + generated))
        return {key: float(np.average([k[key] for k in kin], weights=w)) for key in keys}

    r, g = pooled(real), pooled(generated)
    threshold = float(np.percentile(np.concatenate([k["frame_max_speed"] for k in real]), 99.9))
    over = lambda kin: int((np.concatenate([k["frame_max_speed"] for k in kin]) > threshold).sum())  # noqa: E731
    frames = lambda kin: int(sum(len(k["frame_max_speed"]) for k in kin))  # noqa: E731
    real_rate = over(real) / frames(real)
    ratios = {key: g[key] / r[key] if r[key] > 0 else None for key in r}
    ratios["spike"] = over(generated) / frames(generated) / max(real_rate, 1e-9)
    # the ratio rests on a few frames in a thousand: the counts say how near the line it is
    spikes = {"frames": over(generated), "of": frames(generated), "at_2x": 2.0 * real_rate * frames(generated)}
    # travel and body speed are not targets: they say where a speed ratio's excess comes from (and the hips'
    # height whether the dancer stays on the floor)
    ok = (ratios["speed"] is not None and 0.85 <= ratios["speed"] <= 1.15 and ratios["jerk"] <= 1.5
          and ratios["spike"] <= 2.0 and (ratios["slide"] is None or ratios["slide"] <= 1.3))
    return {"real": r, "generated": g, "ratios": ratios, "spikes": spikes, "real_clips": len(real), "ok": bool(ok)}


def spread_songs(songs: list[dict], clip_styles: dict, n: int | None) -> list[dict]:
    """Up to n songs, taken in turn from each style (the data is mostly waltz)."""
    if not n or n >= len(songs):
        return songs
    by_style: dict = {}
    for s in songs:
        by_style.setdefault(clip_styles.get(s["id"]), []).append(s)
    out, queues = [], list(by_style.values())
    while len(out) < n:
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def run_style(data_dir, ckpt, samples: int = 2, seconds: float = 30.0, seed_seconds: float = 2.0, temperature: float = 1.0,
              segment_seconds: float = 5.0, switch_seconds: float = 10.0, blend_seconds: float = 1.0, strength: float = 1.0,
              presets=None, split: str = "test", max_songs: int | None = None, steered: bool = True, only=None,
              switch_repeats: int = 1, progress=print, ground: bool = True, noise_correlation: float | None = None,
              energy: bool = True, time_base: bool = False) -> dict:
    """ground: each dance grounded as live does (transflower.floor.Grounding); False: as sampled.
    time_base: each dance on the beat-matched clock, against its style's tempo (`live --time-base`); the style and its
    kinetics are read from the end of the count-in on (the sway before it is the dancer listening).
    energy: each dance shown at the music's energy as live shows it (transflower.energy, on the finished
    rollout: the same as frame by frame); False: the model's own dance. (The switch test: without it.)
    noise_correlation: auto's (and a style's without a preset for it); None = the model's own default.
    presets: None = the model's own (a shipped .pt's), a YAML path, or a mapping ({} = none).
    steered False: only the dances started in the style (half the time; for choosing presets).
    only: ask for these styles only (default: every style of the data)."""
    import torch

    from transflower.benchmarks.quality import load_songs

    d = _style_data(data_dir, segment_seconds)
    clf, real_kin, classifier = _style_classifier(d, progress)
    model = _style_model(d, ckpt, ground, noise_correlation, energy, presets, time_base)
    strength = check_strength(strength, "--strength")
    if noise_correlation is not None:
        check_noise_correlation(noise_correlation, "--noise-correlation")
    if int(switch_repeats) < 1:
        raise UserError(f"--switch-repeats {switch_repeats}: expected 1 or more")
    unknown = [s for s in (only or []) if s not in d["styles"]]
    if unknown:
        raise UserError(f"--styles {','.join(unknown)}: expected styles of the data, {d['styles']}")
    base_corr = model.model.meta.get("default_noise_correlation", 0.0) if noise_correlation is None else noise_correlation
    torch.set_num_threads(1)
    fps = d["fps"]
    seed_frames = max(1, int(round(seed_seconds * fps)))
    songs = [s for s in load_songs(d["dir"], split, seed_frames, int(round(seconds * fps)), fps) if "~" not in s["id"]]
    songs = spread_songs(songs, d["clip_styles"], max_songs)  # mirrored copies left out: the same songs
    recognised, kinetics = {}, {}
    for k, style in enumerate(d["styles"]):
        if not only or style in only:
            recognised[style], kin = _recognise(d, model, clf, k, style, songs, seed_frames, samples, temperature, strength,
                                                steered, base_corr)
            kinetics[style] = style_kinetics(real_kin[style], kin)
            r = recognised[style]
            progress(f"asked for {style}: recognised in {r['share']:.0%} of {r['windows']} windows started in it"
                     f" ({r['outside_real_range']:.0%} had a feature beyond the real range, clipped)"
                     + (f", {r['steered_share']:.0%} steered from the song's dance" if steered else ""))
    switch = style_switch(model, songs, d["styles_all"], seed_frames, fps, temperature, d["scaler"], d["skeleton"],
                          d["names"], switch_seconds, blend_seconds, strength, repeats=switch_repeats)
    progress(f"switch: max joint speed around the switch {switch['max_speed_at_switch']:.2f} m/s "
             f"(real 99.9th percentile {switch['real_p999']:.2f} m/s; over it: {switch['switches_over']} of "
             f"{switch['switches']} switches, {switch['without_switch_over']} of the same dances without the switch)")
    return {"benchmark": "style", "data": str(d["dir"]), "model": str(ckpt), "styles": d["styles"], "fps": fps,
            "ground": ground, "energy": energy, "time_base": time_base, "segment_seconds": segment_seconds, "seconds": seconds, "samples": samples,
            "temperature": temperature, "strength": strength, "presets": model.model.style_presets, "split": split,
            "songs": [s["id"] for s in songs], "classifier": classifier, "recognised": recognised, "kinetics": kinetics,
            "switch": switch, "targets": _style_targets(recognised, kinetics, switch)}


def _style_data(data_dir, segment_seconds: float) -> dict:
    """The data's features.json and what the bench reads from it (styles, skeleton, scaler, window length)."""
    from transflower.features import StandardScaler

    data_dir = Path(data_dir)
    fj = data_dir / "features.json"
    if not fj.exists():
        raise UserError(f"{fj}: missing; run `transflower features {data_dir}` first")
    feats = json.loads(fj.read_text())
    styles_all = list(feats.get("styles") or [])
    if len(styles_all) < 3:
        raise UserError(f"{fj}: lists styles {styles_all}; a style benchmark needs at least two labelled styles")
    fps = float(feats["fps"])
    return {"dir": data_dir, "fj": fj, "feats": feats, "styles_all": styles_all, "styles": styles_all[1:],  # without "auto"
            "fps": fps, "skeleton": feats["skeleton"], "names": feats["skeleton"]["names"],
            "scaler": StandardScaler.from_dict(feats["motion_scaler"]), "seg": max(3, int(round(segment_seconds * fps))),
            "clip_styles": feats.get("clip_styles") or {}}


def _style_classifier(d: dict, progress):
    """The classifier of real dances (trained on the training split, scored on the test split) -> (classifier,
    each style's real kinematics (train and test: the test split has one cha-cha), its held-out scores)."""
    from transflower.dataset import read_ids

    real_kin: dict[str, list] = {}
    args = (d["clip_styles"], d["styles"], d["scaler"], d["skeleton"], d["names"], d["fps"], d["seg"], real_kin)
    Xtr, ytr = _real_windows(d["dir"], read_ids(d["dir"], "train"), *args)
    Xte, yte = _real_windows(d["dir"], read_ids(d["dir"], "test"), *args)
    clf = StyleClassifier(len(d["styles"])).fit(Xtr, ytr)
    pred = clf.predict(Xte)
    held_out = {s: float((pred[yte == k] == k).mean()) if (yte == k).any() else None for k, s in enumerate(d["styles"])}
    progress(f"classifier: {len(Xtr)} training windows, held-out accuracy {float((pred == yte).mean()):.2f} "
             f"({', '.join(f'{s} {v:.2f}' if v is not None else f'{s} -' for s, v in held_out.items())})")
    return clf, real_kin, {"train_windows": int(len(Xtr)), "test_windows": int(len(Xte)),
                           "held_out_accuracy": float((pred == yte).mean()), "held_out_per_style": held_out}


def _style_model(d: dict, ckpt, ground: bool, noise_correlation, energy: bool, presets, time_base: bool = False):
    """The model in the live engine (EngineGenerator), with the presets to measure (None: its own) and seed clips."""
    from transflower.benchmarks.quality import EngineGenerator
    from transflower.dataset import read_ids

    model = EngineGenerator(ckpt, d["feats"], ground=ground, noise_correlation=noise_correlation, energy=energy,
                            features_json=d["fj"], time_base=time_base)
    if list(model.model.styles) != d["styles_all"]:
        raise UserError(f"{ckpt}: the model's styles {list(model.model.styles)} are not the data's {d['styles_all']}")
    if isinstance(presets, (str, Path)):
        presets = {} if str(presets) == "none" else load_presets(presets, d["styles_all"])
    if presets is not None:  # the presets to measure, in place of the model's own
        model.model.style_presets = check_presets(presets, d["styles_all"], where="--presets")
    if not model.model.style_seeds:  # a checkpoint without its seed clips: the data's training clips give them, as export does
        from transflower.checkpoint import load_style_seeds

        seeds = load_style_seeds({**d["feats"], "train_ids": read_ids(d["dir"], "train")}, model.context, ckpt, data_dir=d["dir"])
        model.model.style_seeds = {k: np.asarray(v, np.float32) for k, v in seeds.items()}
    return model


def _recognise(d: dict, model, clf, k: int, style: str, songs, seed_frames: int, samples: int, temperature: float,
               strength: float, steered: bool, base_corr: float):
    """Every song danced in `style`, started in it (as `live --style`: the model's seed clip of the style) and,
    with `steered`, from the song's own dance -> (its recognition record, the started dances' kinematics)."""
    import torch

    from transflower.benchmarks import metrics as M

    presets = model.model.style_presets
    p_strength, p_temp = preset_of(presets, style)  # recorded with the results
    votes, steered_votes, kin, outside = [], [], [], []
    for i, s in enumerate(songs):
        own_seed = np.ascontiguousarray(s["motion"][:seed_frames])
        audio = s["audio"][seed_frames: seed_frames + s["n"]]
        for start, seed in [("started", None)] + ([("steered", own_seed)] if steered else []):
            for j in range(samples):
                x = model.generate(seed, audio, s["n"], temperature, torch.Generator().manual_seed(100 * j + i),
                                   style=style, strength=strength)
                # with a time base: the dance from the end of its count-in (before it the dancer sways, listening)
                x = x[model.count_in_frames:]
                pos = M.positions_from_features(d["scaler"].inverse(x), d["skeleton"])
                wf = window_features(pos, d["names"], d["fps"], d["seg"])
                hits = list(clf.predict(wf) == k)
                if start == "started":
                    votes += hits
                    outside += list(clf.outside(wf))
                    kin.append(M.kinematics(pos, d["names"], d["fps"]))
                else:
                    steered_votes += hits
    record = {"share": float(np.mean(votes)), "windows": len(votes),
              "steered_share": float(np.mean(steered_votes)) if steered_votes else None,
              "seed_clip": style in model.model.style_seeds,
              "preset": {"strength": p_strength, "temperature": p_temp,
                         "correlation": preset_correlation(presets, style, base_corr),
                         "traction": preset_traction(presets, style)},
              "outside_real_range": float(np.mean(outside))}  # windows with a feature clipped
    return record, kin


def _style_targets(recognised: dict, kinetics: dict, switch: dict) -> dict:
    return {**{f"{s}_recognised_80pct": {"share": r["share"], "ok": r["share"] >= 0.8} for s, r in recognised.items()},
            **{f"{s}_steered_80pct": {"share": r["steered_share"], "ok": r["steered_share"] >= 0.8}
               for s, r in recognised.items() if r["steered_share"] is not None},
            **{f"{s}_kinetic_targets": {"ratios": k["ratios"], "ok": k["ok"]} for s, k in kinetics.items()},
            "switch_without_pop": {"max_speed": switch["max_speed_at_switch"], "real_p999": switch["real_p999"],
                                   "ok": switch["max_speed_at_switch"] <= switch["real_p999"]}}


def style_switch(model, songs, styles_all, seed_frames, fps, temperature, scaler, skeleton, names, switch_seconds,
                 blend_seconds, strength: float = 1.0, repeats: int = 1, control: bool = True) -> dict:
    """The live switch: a dance begun in one style (from the song's own poses) is switched to the next with
    DanceEngine.set_style over `blend_seconds` (weights, temperature, noise correlation and traction move
    with the styles' presets), by `model` (an EngineGenerator: its presets, grounding and noise) without the
    energy gate.

    The fastest joint in the window around the switch (1 s before to 2 s after) is compared with the real
    dances' 99.9th percentile of per-frame fastest joint speed. That line is crossed by real dance too: a
    3-s window holds 60 frames, so some real windows cross it (`real_windows_over`, measured on the same
    songs). With `control`, each switch is also danced without it (the first style throughout, the same
    noise): a crossing there as well is the model's own pace, not a pop made by the switch.
    `repeats`: dances per song, each with other noise (seed 7 + song + 1000 x repeat)."""
    import copy

    import torch

    from transflower.benchmarks import metrics as M

    model = copy.copy(model)  # the same loaded model, danced without the energy gate
    model.energy = False
    real = [M.kinematics(M.positions_from_features(scaler.inverse(s["motion"][seed_frames: seed_frames + s["n"]]),
                                                   skeleton), names, fps)["frame_max_speed"] for s in songs]
    p999 = float(np.percentile(np.concatenate(real), 99.9))
    before, after = int(fps), 2 * int(fps)
    win = [v[a: a + before + after].max() for v in real for a in range(0, len(v) - before - after + 1, int(fps))]
    real_over = float(np.mean(np.array(win) > p999)) if win else None
    k0 = int(round(switch_seconds * fps))
    worst, per_song = 0.0, []
    for r in range(int(repeats)):
        for i, s in enumerate(songs):
            n = min(s["n"], k0 + 3 * int(fps))
            if n <= k0 + 2 * int(fps):
                continue
            a, b = 1 + i % (len(styles_all) - 1), 1 + (i + 1) % (len(styles_all) - 1)  # a style and the next one
            seed = np.ascontiguousarray(s["motion"][:seed_frames])
            audio = s["audio"][seed_frames: seed_frames + n]
            row = {"song": s["id"], "repeat": r, "from": styles_all[a], "to": styles_all[b]}
            for key, to in (("max_speed", (k0, styles_all[b], blend_seconds)), ("max_speed_without_switch", None))[: 2 if control else 1]:
                x = model.generate(seed, audio, n, temperature, torch.Generator().manual_seed(7 + i + 1000 * r),
                                   style=styles_all[a], strength=strength, switch=to)
                v = M.kinematics(M.positions_from_features(scaler.inverse(x), skeleton), names, fps)["frame_max_speed"]
                row[key] = float(v[max(0, k0 - before): k0 + after].max())
            per_song.append(row)
            worst = max(worst, row["max_speed"])
    over = sum(x["max_speed"] > p999 for x in per_song)
    out = {"switch_seconds": switch_seconds, "blend_seconds": blend_seconds, "real_p999": p999,
           "max_speed_at_switch": worst, "switches": len(per_song), "switches_over": int(over),
           "real_windows_over": real_over, "songs": per_song}
    if control:
        out["without_switch_over"] = int(sum(x["max_speed_without_switch"] > p999 for x in per_song))
    return out


def format_table(res: dict) -> str:
    c = res["classifier"]
    lines = [f"style classifier: held-out accuracy {c['held_out_accuracy']:.2f} on {c['test_windows']} real test windows "
             f"({c['train_windows']} training windows)",
             f"{res.get('split', 'test')} songs: {', '.join(res['songs'])}",
             "| requested style | preset (strength x, temperature x, noise correlation, traction) | classifier's held-out accuracy on real "
             "| recognised, started in the style | recognised, steered from the song's dance "
             "| speed / jerk / spike / slide vs that style's real dances (started) | speed taken apart: travel / body "
             "| hips' height |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
    for s in res["recognised"]:
        acc = c["held_out_per_style"].get(s)
        r = res.get("kinetics", {}).get(s, {}).get("ratios", {})
        rec = res["recognised"][s]
        pre = rec.get("preset") or {"strength": 1.0, "temperature": 1.0}
        lines.append(f"| {s} | {pre['strength']:g}, {pre['temperature']:g}, {pre.get('correlation', 0.0):g}, "
                     f"{pre.get('traction', 0.0):g} | {'-' if acc is None else f'{acc:.2f}'} "
                     f"| {rec['share']:.0%} of {rec['windows']}{'' if rec.get('seed_clip', True) else ' (no seed clip)'} "
                     f"| {'-' if rec.get('steered_share') is None else format(rec['steered_share'], '.0%')} "
                     f"| {' / '.join(fmt(r.get(k)) for k in ('speed', 'jerk', 'spike', 'slide'))} "
                     f"| {' / '.join(fmt(r.get(k)) for k in ('travel', 'body'))} | {fmt(r.get('hips'))} |")
    counts = [f"{s} {k['spikes']['frames']} of {k['spikes']['of']} (2x the real rate: {k['spikes']['at_2x']:.1f})"
              for s, k in res.get("kinetics", {}).items() if "spikes" in k]
    if counts:
        lines.append("spike frames (fastest joint past the style's real 99.9th percentile): " + "; ".join(counts))
    sw = res["switch"]
    lines.append(f"switch ({sw['blend_seconds']:g} s blend at {sw['switch_seconds']:g} s, {len(sw['songs'])} switches): fastest joint "
                 f"within 1 s before / 2 s after {sw['max_speed_at_switch']:.2f} m/s; real 99.9th percentile {sw['real_p999']:.2f} m/s")
    if "switches_over" in sw:
        real = sw.get("real_windows_over")
        lines.append(f"  over the line: {sw['switches_over']} of {sw['switches']} switches"
                     + (f", {sw['without_switch_over']} of the same dances without the switch" if "without_switch_over" in sw else "")
                     + ("" if real is None else f", {real:.1%} of the real dances' own 3-s windows"))
    for k, t in res["targets"].items():
        lines.append(f"target {k}: {'PASS' if t['ok'] else 'FAIL'}")
    return "\n".join(lines)


def configure_parser(p) -> None:
    p.add_argument("--data", required=True, help="a feature folder with style labels (features.json 'styles')")
    p.add_argument("--model", required=True, help="a style-conditioned checkpoint (.ckpt or the shipped .pt)")
    p.add_argument("--samples", type=int, default=2, help="dances per test song and style (default 2)")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds per dance (default 30)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    p.add_argument("--segment-seconds", type=float, default=5.0, help="classified window length (default 5)")
    p.add_argument("--switch-seconds", type=float, default=10.0, help="when the switch test changes style (default 10 s)")
    p.add_argument("--blend-seconds", type=float, default=1.0, help="how long the switch blends (default 1 s, as live)")
    p.add_argument("--strength", type=float, default=1.0,
                   help="style strength: weight on the asked style, 1 - it on auto (1 = as trained; > 1 exaggerates)")
    p.add_argument("--presets", help="per-style presets to use: a YAML file (`rumba: {strength: 1.5, temperature: 0.67}`) "
                   "or `none` (default: the model's own, as live uses them)")
    p.add_argument("--noise-correlation", type=float, default=None, metavar="RHO",
                   help="noise correlation for auto and for styles whose preset sets none (default: the model's own)")
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="dance the test songs (default) or the training songs (to choose presets without seeing the test songs)")
    p.add_argument("--styles", help="ask for these styles only, comma-separated (default: all)")
    p.add_argument("--started-only", action="store_true", help="skip the dances steered from the song's own dance")
    p.add_argument("--songs", type=int, default=None, help="at most this many songs, taken in turn from each style")
    p.add_argument("--switch-repeats", type=int, default=1,
                   help="dance each song's switch this many times with other noise (default 1; 5 gives 30 switches)")
    p.add_argument("--no-ground", action="store_true", help="measure the dances as sampled, without the grounding "
                   "live applies (each pose's root height corrected before it is fed back: transflower.floor.Grounding)")
    p.add_argument("--no-energy", action="store_true", help="measure the model's own dance, without the energy gate live "
                   "applies to what it shows (quieter music danced smaller: transflower.energy)")
    p.add_argument("--time-base", action="store_true", help="dance on the beat-matched clock, against each style's tempo "
                   "(`live --time-base`): what it costs the kinetics")
    p.add_argument("--json", help="write the results here")


def run(args) -> int:
    res = run_style(args.data, args.model, args.samples, args.seconds, temperature=args.temperature,
                    segment_seconds=args.segment_seconds, switch_seconds=args.switch_seconds, blend_seconds=args.blend_seconds,
                    strength=args.strength, presets=args.presets, split=args.split, max_songs=args.songs,
                    steered=not args.started_only, only=args.styles.split(",") if args.styles else None,
                    switch_repeats=args.switch_repeats, ground=not args.no_ground, noise_correlation=args.noise_correlation,
                    energy=not args.no_energy, time_base=args.time_base)
    print(format_table(res))
    if args.json:
        from transflower.atomic import write_text_atomic

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    return 0
