"""`transflower bench decompose --data DIR --model CKPT`: where a model's extra speed and jerk come from.

Issue 11 asks how much of a generated dance's excess joint speed and jerk comes from (a) the training
features themselves, (b) the noise the flow adds to every frame, (c) exposure bias (a free-running rollout
against one-step samples from the true past), (d) the floor clamp lifting the root, (e) integrating the
root's velocity. Each row is measured on the test songs, at the data's frame rate; speeds in m/s, jerk in
m/s^3, each also as a ratio to the real dances:

- `real: BVH` / `real: features`: the imported BVH's own joint positions against the same dances decoded
  from their motion features (a: the feature round trip; its flips are the data's own).
- `one-step`: x_t sampled from the true past (teacher forcing), its displacement from the true x_{t-1}
  (b: the per-frame spread of the flow's conditional; the real displacement is the reference).
- `rollout`: the model's free-running dance (c: compared with one-step), with and without the floor clamp
  (d); `root` and `body` split each speed into the root's travel (hips, from integrating root velocity:
  e) and the joints' motion relative to the hips.
- `one-step: ... root velocity`: the root's horizontal velocity (the features' first two dims) sampled
  from the true past, against the real one: is a too-fast travel in the model's conditional, or made by
  the rollout?
With `--style NAME` the model dances that style (its label, preset and seed clip, as `live --style` does)
on every test song: where a style's excess speed comes from.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from transflower.errors import UserError

log = logging.getLogger("transflower.bench.decompose")


def _speeds(pos: np.ndarray, fps: float) -> dict:
    """World, root (hips) and body (joints relative to the hips) mean speed (m/s) and jerk (m/s^3)."""
    p = np.asarray(pos, np.float64) / 100.0
    rel = p - p[:, :1]
    out = {}
    for name, x in (("world", p), ("root", p[:, :1]), ("body", rel[:, 1:])):
        out[f"{name}_speed"] = float(np.linalg.norm(np.diff(x, axis=0), axis=-1).mean() * fps)
        out[f"{name}_jerk"] = float(np.linalg.norm(np.diff(x, n=3, axis=0), axis=-1).mean() * fps ** 3)
    return out


def _mean(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def run_decompose(data_dir, ckpt, seconds: float = 20.0, samples: int = 2, temperature: float = 1.0,
                  seed_seconds: float = 2.0, style: str | None = None, progress=print) -> dict:
    import torch

    from transflower.benchmarks.quality import EngineGenerator, load_songs
    from transflower.checkpoint import load_checkpoint
    from transflower.features import StandardScaler
    from transflower.skeleton import Skeleton

    data_dir = Path(data_dir)
    fj = data_dir / "features.json"
    if not fj.exists():
        raise UserError(f"{fj}: missing; run `transflower features {data_dir}` first")
    feats = json.loads(fj.read_text())
    fps, skel = float(feats["fps"]), Skeleton.from_dict(feats["skeleton"])
    scaler = StandardScaler.from_dict(feats["motion_scaler"])
    seed_frames = max(1, int(round(seed_seconds * fps)))
    songs = load_songs(data_dir, "test", seed_frames, int(round(seconds * fps)), fps)
    model, cfg = load_checkpoint(ckpt)
    torch.set_num_threads(1)
    w_style, t_one = _style_label(model, cfg, feats, ckpt, style, temperature)
    # rollouts: sampled by the live engine (its presets, noise and redraws), without grounding or the energy gate
    roller = EngineGenerator(ckpt, feats, ground=False, energy=False, features_json=fj)
    positions = _positions_of(skel)
    real_bvh, real_feat, one_real, one_model, roll, roll_clamp = [], [], [], [], [], []
    for i, s in enumerate(songs):
        sl = slice(seed_frames, seed_frames + s["n"])
        bvh = _real_bvh_speeds(data_dir / f"{s['id']}.bvh", fps, sl)
        real_bvh += [bvh] if bvh is not None else []
        real = scaler.inverse(s["motion"])
        real_feat.append(_speeds(positions(real)[sl], fps))
        one = _one_step(model, s, seed_frames, t_one, w_style, i, scaler, real, positions, fps)
        one_model.append(one["model"])
        one_real.append(one["real"])
        seed = None if style is not None else np.ascontiguousarray(s["motion"][:seed_frames])  # with --style: its seed clip
        for k in range(samples):
            x = roller.generate(seed, s["audio"][seed_frames: seed_frames + s["n"]], s["n"], temperature,
                                torch.Generator().manual_seed(1000 * k + i), style=style)
            x = scaler.inverse(x)
            roll.append(_speeds(positions(x), fps))
            roll_clamp.append(_speeds(positions(x, clamp=True), fps))
        progress(f"{s['id']}: done")
    rows = _decompose_rows(real_bvh, real_feat, one_real, one_model, roll, roll_clamp)
    return {"benchmark": "decompose", "data": str(data_dir), "model": str(ckpt), "style": style, "fps": fps, "seconds": seconds,
            "samples": samples, "temperature": temperature, "songs": [s["id"] for s in songs], "rows": rows}


def _style_label(model, cfg: dict, feats: dict, ckpt, style: str | None, temperature: float):
    """-> (the style's weights for the one-step samples (None without --style), their temperature x its preset)."""
    import torch

    if style is None:
        return None, temperature
    from transflower.styles import check_presets, preset_style

    styles_all = list(feats.get("styles") or [])
    if style not in styles_all[1:] or getattr(model.cfg, "styles", 0) != len(styles_all):
        raise UserError(f"--style {style}: expected one of the data's styles the model was trained on, {styles_all[1:]}")
    own = cfg.get("_features") or {}
    presets = check_presets(own.get("style_presets") or {}, styles_all, where=f"{ckpt}: style_presets")
    w, t_mult = preset_style(style, styles_all, 1.0, presets)
    return torch.from_numpy(w), temperature * t_mult


def _positions_of(skel):
    """positions(x_unscaled, clamp=False): motion features -> joint positions (cm), optionally floor-clamped."""
    from transflower.bvh import forward_kinematics
    from transflower.floor import FloorClamp
    from transflower.motion_features import MotionFeatures

    mf = MotionFeatures(skel)

    def positions(x_unscaled, clamp=False):
        root, rots = mf.decode(np.asarray(x_unscaled, np.float64))
        if clamp:
            FloorClamp(skel).apply(root, rots)
        return forward_kinematics(skel, root, rots)[0]
    return positions


def _real_bvh_speeds(bvh_path: Path, fps: float, sl: slice):
    """The real dance's speeds from its BVH (resampled to fps), or None without one."""
    from transflower.bvh import forward_kinematics, read_bvh
    from transflower.features import resample_motion

    if not bvh_path.exists():
        return None
    b = read_bvh(bvh_path)
    root, rots = resample_motion(b.root_positions, b.local_rotations, b.fps, fps)
    return _speeds(forward_kinematics(b.skeleton, root, rots)[0][sl], fps)


def _one_step(model, s: dict, seed_frames: int, t_one: float, w_style, i: int, scaler, real, positions, fps: float) -> dict:
    """One-step samples from the true past: the body's displacement from the true previous pose (hips pinned)
    and the root's speed, sampled against real -> {"model": ..., "real": ...}."""
    import torch

    motion_in = torch.from_numpy(s["motion"][None, seed_frames - 1: seed_frames - 1 + s["n"]])
    L = getattr(model.cfg, "lookahead", 0)
    audio_idx = np.clip(np.arange(seed_frames + L, seed_frames + L + s["n"]), 0, len(s["audio"]) - 1)
    audio_in = torch.from_numpy(s["audio"][None, audio_idx])
    with torch.no_grad():  # far-tail draws redrawn, as generation and the live engine do
        g = torch.Generator().manual_seed(i)
        kw = {} if w_style is None else {"style": w_style.expand(1, s["n"], -1)}  # only style-conditioned models take it
        x1 = model.sample(motion_in, audio_in, t_one, torch.randn(1, s["n"], model.cfg.motion_dim, generator=g), **kw)[0]
        for _ in range(3):
            bad = ~(torch.isfinite(x1).all(-1) & (x1.abs().amax(-1) <= 25.0))
            if not bad.any():
                break
            redo = model.sample(motion_in, audio_in, t_one, torch.randn(1, s["n"], model.cfg.motion_dim, generator=g), **kw)[0]
            x1 = torch.where(bad[:, None], redo, x1)
        x1 = x1.numpy()
    sl = slice(seed_frames, seed_frames + s["n"])
    prev = real[seed_frames - 1: seed_frames - 1 + s["n"]]

    def body(x):  # pose-only positions (root at the origin, heading removed), m
        x = np.array(x, np.float64)
        x[:, :3] = 0.0
        p = positions(x)
        return (p - p[:, :1])[:, 1:] / 100.0

    step_model = np.linalg.norm(body(scaler.inverse(x1)) - body(prev), axis=-1).mean() * fps
    step_real = np.linalg.norm(body(real[sl]) - body(prev), axis=-1).mean() * fps
    # the root's horizontal velocity (features 0, 2: cm per frame in the heading frame), sampled vs real
    root_v = lambda x: float(np.linalg.norm(np.asarray(x, np.float64)[:, :2], axis=-1).mean() / 100.0 * fps)  # noqa: E731
    return {"model": {"body_speed": float(step_model), "root_speed": root_v(scaler.inverse(x1))},
            "real": {"body_speed": float(step_real), "root_speed": root_v(real[sl])}}


def _decompose_rows(real_bvh, real_feat, one_real, one_model, roll, roll_clamp) -> list[dict]:
    """The table's rows, each with its ratios to the real dance (the one-step rows: to the real one-step)."""
    ref = _mean(real_feat)
    rows = [{"name": "real: BVH", **_mean(real_bvh)}] if real_bvh else []
    rows += [{"name": "real: features", **ref},
             {"name": "one-step: real displacement", **_mean(one_real)},
             {"name": "one-step: model displacement", **_mean(one_model)},
             {"name": "rollout", **_mean(roll)},
             {"name": "rollout + floor clamp", **_mean(roll_clamp)}]
    for r in rows:
        for k in list(r):
            if k != "name" and not k.endswith("_ratio"):
                base = ref[k] if k in ref and not r["name"].startswith("one-step") else _mean(one_real)[k]
                r[f"{k}_ratio"] = r[k] / base if base else None
    return rows


COLUMNS = ["world_speed", "world_jerk", "root_speed", "root_jerk", "body_speed", "body_jerk"]


def format_table(res: dict) -> str:
    lines = ["| row | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for r in res["rows"]:
        cells = []
        for c in COLUMNS:
            if c not in r:
                cells.append("-")
            else:
                cells.append(f"{r[c]:.3g} ({r[c + '_ratio']:.2f}x)" if r.get(c + "_ratio") is not None else f"{r[c]:.3g}")
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def configure_parser(p) -> None:
    p.add_argument("--data", required=True, help="a feature folder (features.json, test split, the imported <id>.bvh)")
    p.add_argument("--model", required=True, help="a checkpoint (.ckpt or the shipped .pt)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per test song (default 20)")
    p.add_argument("--samples", type=int, default=2, help="rollouts per song (default 2)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    p.add_argument("--style", help="dance this style (label, preset, seed clip, as `live --style`); the real rows stay "
                   "the test songs' own dances, so compare the one-step rows and the rollout's split")
    p.add_argument("--json", help="write the results here")


def run(args) -> int:
    res = run_decompose(args.data, args.model, args.seconds, args.samples, args.temperature, style=args.style)
    print(format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    return 0
