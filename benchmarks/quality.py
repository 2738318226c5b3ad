"""`transflower bench quality --data DIR --models name=CKPT ...`: dance quality on the held-out test split.

For every test song (base_filenames_test.txt), each model generates `--samples` dances of `--seconds`,
seeded with the song's first `--seed-seconds` of real motion and hearing the song's audio features
(`model.generate(seed_motion, audio, num_frames, temperature, generator)`, standardised features).
The real motion of the same frames is the `ground-truth` row; `shuffled-music` pairs each song's
real motion with the next test song's music (its distribution metrics equal the ground truth's by
construction: only beat alignment can tell it apart). `real-other` is real motion of the training
dances (mirrored copies excluded) against the test dances: the floor for every distance, since two sets
of real dances are not at distance 0. Joint positions come from forward kinematics of the decoded
features with the data's skeleton; benchmarks/metrics.py defines every metric. Kinetic columns (speed,
jerk, spike rate, foot sliding) are computed at the data's frame rate and also given as ratios to the
ground truth.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from transflower.errors import UserError

log = logging.getLogger("transflower.bench.quality")

COLUMNS = [("speed", "speed m/s", "{:.3f}"), ("speed_ratio", "x gt", "{:.2f}"), ("jerk", "jerk m/s^3", "{:.0f}"),
           ("jerk_ratio", "x gt", "{:.2f}"), ("spike", "spike %", "{:.2f}"), ("spike_ratio", "x gt", "{:.1f}"),
           ("slide", "slide", "{:.2f}"), ("slide_ratio", "x gt", "{:.2f}"),
           ("fid_k", "FID_k", "{:.2f}"), ("fid_g", "FID_g", "{:.2f}"), ("fpd", "FPD", "{:.1f}"), ("fmd", "FMD", "{:.1f}"),
           ("div_k_within", "Div_k within", "{:.2f}"), ("div_k_across", "Div_k across", "{:.2f}"),
           ("div_g_within", "Div_g within", "{:.2f}"), ("div_g_across", "Div_g across", "{:.2f}"),
           ("beat_align", "BAS", "{:.3f}"), ("foot_skate_cm_s", "skate cm/s", "{:.1f}"), ("foot_slide_frac", "slide frac", "{:.2f}")]


def parse_models(specs: list[str]) -> dict[str, Path]:
    out = {}
    for s in specs or []:
        if "=" not in s:
            raise UserError(f"--models {s!r}: expected NAME=CHECKPOINT")
        name, path = s.split("=", 1)
        if name in out or name in ("ground-truth", "shuffled-music", "real-other"):
            raise UserError(f"--models: duplicate or reserved name {name!r}")
        if not Path(path).exists():
            raise UserError(f"--models {name}: {path} not found")
        out[name] = Path(path)
    return out


def load_songs(data_dir: Path, split: str, seed_frames: int, max_frames: int, fps: float) -> list[dict]:
    from transflower.dataset import load_modality, read_ids

    songs = []
    for sid in read_ids(data_dir, split):
        m, a = load_modality(data_dir, sid, "motion"), load_modality(data_dir, sid, "audio")
        T = min(len(m), len(a))
        n = min(max_frames, T - seed_frames)
        if n < max(8, int(fps)):
            log.warning("%s: %d frames, too short for a %d-frame seed; skipped", sid, T, seed_frames)
            continue
        songs.append({"id": sid, "motion": m[:T], "audio": a[:T], "n": n, "wav": data_dir / f"{sid}.wav"})
    if not songs:
        raise UserError(f"{data_dir}: no {split} song is long enough (seed {seed_frames} frames)")
    return songs


def dance_metrics(dances: list[dict], gt: dict | None, names: list[str], fps: float, seg: int) -> dict:
    """dances: [{'song': i, 'pos': (T, J, 3), 'beats': music beat frames}]; gt: the ground truth's sets
    (None when these dances are the ground truth)."""
    from benchmarks import metrics as M  # scipy: imported lazily so `transflower --help` stays fast

    K, G, kin_whole, geo_whole, poses, moves, kin = [], [], [], [], [], [], []
    for d in dances:
        p = d["pos"]
        kin.append(M.kinematics(p, names, fps))
        for s in M.segments(len(p), seg):
            K.append(M.kinetic_features(p[s], fps))
            G.append(M.geometric_features(p[s], names, fps))
        kin_whole.append(M.kinetic_features(p, fps))
        geo_whole.append(M.geometric_features(p, names, fps))
        poses.append((p - p[:, :1]).reshape(len(p), -1))
        moves.append(np.diff(p, axis=0).reshape(len(p) - 1, -1))
    max_speed = np.concatenate([k["frame_max_speed"] for k in kin])
    sets = {"K": np.array(K), "G": np.array(G), "Kw": np.array(kin_whole), "Gw": np.array(geo_whole),
            "P": np.concatenate(poses), "V": np.concatenate(moves), "spike_threshold": float(np.percentile(max_speed, 99.9))}
    ref = sets if gt is None else gt
    kn_ref, kn = M.normalise_by(ref["K"], sets["K"])
    gn_ref, gn = M.normalise_by(ref["G"], sets["G"])
    _, kw = M.normalise_by(ref["K"], sets["Kw"])
    _, gw = M.normalise_by(ref["G"], sets["Gw"])
    songs = sorted({d["song"] for d in dances})
    by_song = lambda f: [f[[i for i, d in enumerate(dances) if d["song"] == s]] for s in songs]  # noqa: E731
    dk, dg = M.diversity(by_song(kw)), M.diversity(by_song(gw))
    ba = [M.beat_alignment_score(d["beats"], M.motion_beats(d["pos"], fps), fps) for d in dances]
    ba = [b for b in ba if np.isfinite(b)]
    sk = [M.foot_skating(d["pos"], names, fps) for d in dances]
    multi = any(len(f) > 1 for f in by_song(kw))
    frames = np.array([len(k["frame_max_speed"]) for k in kin], np.float64)
    row = {"speed": float(np.average([k["speed"] for k in kin], weights=frames)),
           "jerk": float(np.average([k["jerk"] for k in kin], weights=frames)),
           "spike": 100.0 * float((max_speed > ref["spike_threshold"]).mean()),
           "slide": float(np.average([k["slide"] for k in kin], weights=frames)),
           "fid_k": M.frechet_distance(kn_ref, kn), "fid_g": M.frechet_distance(gn_ref, gn),
           "fpd": M.frechet_distance(ref["P"], sets["P"]), "fmd": M.frechet_distance(ref["V"], sets["V"]),
           "div_k_within": dk["within"] if multi else None, "div_k_across": dk["across"],
           "div_g_within": dg["within"] if multi else None, "div_g_across": dg["across"],
           "beat_align": float(np.mean(ba)) if ba else None,
           "foot_skate_cm_s": float(np.mean([s["speed_cm_s"] for s in sk])),
           "foot_slide_frac": float(np.mean([s["sliding_fraction"] for s in sk])),
           "dances": len(dances), "frames": int(sum(len(d["pos"]) for d in dances)), "segments": len(K)}
    return row, sets


def add_ratios(rows: list[dict]) -> None:
    gt = next(r for r in rows if r["name"] == "ground-truth")
    for r in rows:
        for k in ("speed", "jerk", "spike", "slide"):
            r[f"{k}_ratio"] = r[k] / gt[k] if gt.get(k) else None


def real_other_dances(data_dir: Path, songs: list[dict], seed_frames: int, scaler, skeleton) -> list[dict]:
    """Real dances of the training split (no mirrored copies), cut like the test dances."""
    from benchmarks import metrics as M
    from transflower.dataset import load_modality, read_ids

    from transflower.errors import DataError

    n = max(s["n"] for s in songs)
    out = []
    try:
        train_ids = [x for x in read_ids(data_dir, "train") if "~" not in x]
    except DataError:  # a folder with only a test split: no floor row
        return []
    for i, sid in enumerate(train_ids):
        m = load_modality(data_dir, sid, "motion")[seed_frames: seed_frames + n]
        if len(m) >= 8:
            out.append({"song": 1000 + i, "pos": M.positions_from_features(scaler.inverse(m), skeleton),
                        "beats": np.array([], np.int64)})
    return out


def generate_dances(model, songs, seed_frames: int, samples: int, temperature: float, scaler, skeleton, music,
                    style=None) -> list[dict]:
    from benchmarks import metrics as M  # scipy: imported lazily so `transflower --help` stays fast

    import torch

    out = []
    for i, s in enumerate(songs):
        seed = torch.from_numpy(np.ascontiguousarray(s["motion"][:seed_frames]))
        audio = torch.from_numpy(np.ascontiguousarray(s["audio"][seed_frames: seed_frames + s["n"]]))
        for k in range(samples):
            g = torch.Generator().manual_seed(1000 * k + i)
            with torch.no_grad():
                x = (model.generate(seed, audio, s["n"], temperature, g) if style is None
                     else model.generate(seed, audio, s["n"], temperature, g, style=style))
            x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, np.float64)
            out.append({"song": i, "pos": M.positions_from_features(scaler.inverse(x), skeleton), "beats": music[i]})
    return out


def run_quality(data_dir, models: dict, samples: int = 3, seconds: float = 30.0, seed_seconds: float = 2.0,
                temperature: float = 1.0, split: str = "test", segment_seconds: float = 5.0, ours: str | None = None,
                filmstrip=None, progress=print, torch_threads: int = 1, speed_plot=None) -> dict:
    import torch

    from benchmarks import metrics as M
    from export.onnx_export import load_checkpoint
    from transflower.features import StandardScaler

    torch.set_num_threads(max(1, torch_threads))  # see latency.py: 2 threads on a busy 2-core CPU is far slower
    data_dir = Path(data_dir)
    fj = data_dir / "features.json"
    if not fj.exists():
        raise UserError(f"{fj}: missing; run `transflower features {data_dir}` first")
    feats = json.loads(fj.read_text())
    fps, skeleton = float(feats["fps"]), feats["skeleton"]
    names = skeleton["names"]
    scaler = StandardScaler.from_dict(feats["motion_scaler"])
    seed_frames = max(1, int(round(seed_seconds * fps)))
    songs = load_songs(data_dir, split, seed_frames, int(round(seconds * fps)), fps)
    seg = max(3, int(round(segment_seconds * fps)))
    progress(f"{len(songs)} {split} songs, {seconds:g} s each after a {seed_seconds:g} s seed, {samples} samples per model")
    music = []
    for s in songs:
        if s["wav"].exists():
            music.append(M.music_beats(s["wav"], fps, s["n"], start_frame=seed_frames))
        else:
            log.warning("%s: no wav; beat alignment skipped for this song", s["wav"])
            music.append(np.array([], np.int64))
    gt_dances = [{"song": i, "pos": M.positions_from_features(scaler.inverse(s["motion"][seed_frames: seed_frames + s["n"]]), skeleton),
                  "beats": music[i]} for i, s in enumerate(songs)]
    gt_row, gt_sets = dance_metrics(gt_dances, None, names, fps, seg)
    rows = [{"name": "ground-truth", **gt_row}]
    shuffled = []
    for i in range(len(songs)):
        j = (i + 1) % len(songs)
        n = min(len(gt_dances[j]["pos"]), len(gt_dances[i]["pos"]))
        shuffled.append({"song": i, "pos": gt_dances[j]["pos"][:n], "beats": music[i][music[i] < n]})
    rows.append({"name": "shuffled-music", **dance_metrics(shuffled, gt_sets, names, fps, seg)[0]})
    other = real_other_dances(data_dir, songs, seed_frames, scaler, skeleton)
    if other:
        rows.append({"name": "real-other", **dance_metrics(other, gt_sets, names, fps, seg)[0]})
    strip = [("ground truth", gt_dances[0]["pos"])]
    for name, path in models.items():
        t0 = time.time()
        model, cfg = load_checkpoint(path)
        dances = generate_dances(model, songs, seed_frames, samples, temperature, scaler, skeleton, music)
        row, _ = dance_metrics(dances, gt_sets, names, fps, seg)
        lookahead = getattr(model.cfg, "lookahead", None)
        rows.append({"name": name, "model": cfg["model"], "checkpoint": str(path), "lookahead": lookahead,
                     "generate_s": round(time.time() - t0, 1), **row})
        strip.append((name, dances[0]["pos"]))
        progress(f"{name}: {time.time() - t0:.0f} s")
    add_ratios(rows)
    res = {"benchmark": "quality", "data": str(data_dir), "split": split, "songs": [s["id"] for s in songs],
           "samples": samples, "seconds": seconds, "seed_seconds": seed_seconds, "temperature": temperature,
           "segment_seconds": segment_seconds, "fps": fps, "rows": rows}
    res["targets"] = check_targets(res, ours or (next(iter(models)) if models else None))
    if speed_plot:
        plot_speed(strip, fps, speed_plot, songs[0]["id"])
        res["speed_plot"] = str(speed_plot)
    if filmstrip:
        from transflower.render import render_filmstrip

        n = min(len(p) for _, p in strip)
        render_filmstrip(strip[0][1][:n], np.asarray(skeleton["parents"]), fps, filmstrip, n=8,
                         rows=[(nm, p[:n]) for nm, p in strip])
        res["filmstrip"] = str(filmstrip)
    return res


def plot_speed(strip: list, fps: float, path, song: str) -> None:
    """Mean joint speed (m/s) over time, one line per row of the filmstrip (ground truth first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.5))
    for k, (name, pos) in enumerate(strip):
        v = np.linalg.norm(np.diff(np.asarray(pos) / 100.0, axis=0), axis=-1).mean(-1) * fps
        ax.plot(np.arange(1, len(pos)) / fps, v, lw=1.6 if k == 0 else 1.0, color="k" if k == 0 else f"C{k}", label=name)
    ax.set_xlabel("seconds after the seed")
    ax.set_ylabel("mean joint speed (m/s)")
    ax.set_title(f"{song}: real dance vs generated (first sample), {fps:g} fps")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def check_targets(res: dict, ours: str | None) -> dict:
    """Issue 11's targets for the model `ours`, against the ground truth, the real-other floor and the baselines."""
    rows = {r["name"]: r for r in res["rows"]}
    if not ours or ours not in rows:
        return {}
    o, gt = rows[ours], rows["ground-truth"]
    t = {}

    def ratio(key, lo, hi):
        v = o.get(f"{key}_ratio")
        t[f"{key}_ratio_in_{lo:g}_{hi:g}"] = {"ours": v, "ok": v is not None and lo <= v <= hi}

    ratio("speed", 0.85, 1.15)
    ratio("jerk", 0.0, 1.5)
    ratio("spike", 0.0, 2.0)
    ratio("slide", 0.0, 1.3)
    if "real-other" in rows:
        floor = rows["real-other"]["fid_k"]
        t["fid_k_within_10x_real_other"] = {"ours": o["fid_k"], "real_other": floor, "ok": o["fid_k"] <= 10 * floor}
    others = {n: r for n, r in rows.items() if n not in (ours, "ground-truth", "shuffled-music", "real-other")}
    for name, r in others.items():
        if r.get("model") in ("transformer_mse", "moglow"):
            t[f"fid_k_below_{name}"] = {"ours": o["fid_k"], "theirs": r["fid_k"], "ok": o["fid_k"] < r["fid_k"]}
    generative = {n: r for n, r in others.items() if r.get("model") in ("moglow", "transflower_paper", "transflower_live")}
    if generative:
        best = min(r["fid_g"] for r in generative.values())
        t["fid_g_best_generative"] = {"ours": o["fid_g"], "best_other": best, "ok": o["fid_g"] <= best}
    if gt.get("div_k_across"):
        rel = o["div_k_across"] / gt["div_k_across"]
        t["div_k_across_within_30pct_of_gt"] = {"ours": o["div_k_across"], "gt": gt["div_k_across"], "ratio": rel,
                                                "ok": 0.7 <= rel <= 1.3}
    if o.get("div_k_within") is not None:
        t["samples_of_a_song_differ"] = {"div_k_within": o["div_k_within"], "ok": o["div_k_within"] > 0}
    if o.get("beat_align") is not None and gt.get("beat_align"):
        rel = abs(o["beat_align"] - gt["beat_align"]) / gt["beat_align"]
        t["beat_align_within_10pct_of_gt"] = {"ours": o["beat_align"], "gt": gt["beat_align"], "rel": rel, "ok": rel <= 0.10}
        sh = rows.get("shuffled-music", {}).get("beat_align")
        if sh is not None:
            t["beat_align_above_shuffled_music"] = {"ours": o["beat_align"], "shuffled": sh, "ok": o["beat_align"] > sh}
    return t


def format_table(res: dict) -> str:
    head = "| row | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for r in res["rows"]:
        cells = ["-" if r.get(k) is None else f.format(r[k]) for k, _, f in COLUMNS]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    for k, t in res.get("targets", {}).items():
        lines.append(f"target {k}: {'PASS' if t['ok'] else 'FAIL'}")
    return "\n".join(lines)


def configure_parser(p) -> None:
    p.add_argument("--data", required=True, help="a feature folder (features.json, <id>.motion.npy, <id>.audio.npy, <id>.wav, split files)")
    p.add_argument("--models", nargs="*", default=[], metavar="NAME=CKPT", help="checkpoints to compare, e.g. live=runs/default/checkpoints/last.ckpt")
    p.add_argument("--samples", type=int, default=3, help="dances per model and song (default 3)")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds generated per dance (default 30)")
    p.add_argument("--seed-seconds", type=float, default=2.0, help="seconds of real motion that start each dance (default 2)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--segment-seconds", type=float, default=5.0, help="segment length for FID_k / FID_g features (default 5)")
    p.add_argument("--ours", help="the model the targets are checked for (default: the first --models entry)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads for generation (default 1)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--plot", help="write a filmstrip of the first test song here (PNG): ground truth + each model")
    p.add_argument("--speed-plot", help="write the mean joint speed over time of the first test song here (PNG): real vs each model")


def run(args) -> int:
    if args.samples < 1 or args.seconds <= 0:
        raise UserError("--samples must be >= 1 and --seconds > 0")
    models = parse_models(args.models)
    res = run_quality(args.data, models, args.samples, args.seconds, args.seed_seconds, args.temperature, args.split,
                      args.segment_seconds, args.ours, args.plot, torch_threads=args.torch_threads,
                      speed_plot=args.speed_plot)
    print(format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
