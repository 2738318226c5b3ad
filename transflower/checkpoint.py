"""Checkpoints of `transflower train`, and what belongs with them: the model (rebuilt from its config), the
features.json of its training data, a warm-start seed clip. Core code: generation, export and the
benchmarks all load checkpoints through here (torch is imported inside the functions).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from transflower.errors import UserError


def read_checkpoint(path) -> tuple[dict, dict]:
    """(cfg, the model's state dict) from a Lightning checkpoint written by `transflower train`, without building
    the model: cfg in the current layout, with the features a shipped checkpoint carries as cfg["_features"]."""
    import torch

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    try:
        cfg = ckpt["hyper_parameters"]["cfg"]
        state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    except (KeyError, TypeError):
        raise UserError(f"{path}: not a transflower checkpoint (no hyper_parameters.cfg / state_dict)") from None
    from transflower.models.training_terms import migrate_config

    cfg = migrate_config(cfg)  # an older checkpoint's training keys move out of model_config (the shipped one's too)
    if isinstance(ckpt.get("features"), dict):  # a shipped, self-contained checkpoint
        cfg = {**cfg, "_features": ckpt["features"]}
    return cfg, state


def load_checkpoint(path):
    """(model, cfg) from a Lightning checkpoint written by `transflower train`."""
    from transflower.models import build_model

    cfg, state = read_checkpoint(path)
    model = build_model(cfg["model"], cfg["model_config"])
    model.load_state_dict(state)
    model.eval()
    return model, cfg


def find_features_meta(ckpt_path, cfg, features_json=None) -> dict:
    """features.json of the training data: the one given (a file or its folder), the checkpoint's own,
    the copy `transflower train` keeps in the run folder, or the one the run's model card points to."""
    if features_json:
        p = Path(features_json)
        p = p / "features.json" if p.is_dir() else p
        if not p.is_file():
            raise UserError(f"--features {features_json}: no features.json there (expected the file, or the feature folder holding it)")
        feats = _read_features(p)
        own = cfg.get("_features") or {}  # a shipped checkpoint's own seed clips and presets still apply
        for key in ("seed_motion", "style_seeds", "style_presets", "default_temperature", "default_noise_correlation",
                    "style_tempos"):
            if key in own and key not in feats:
                feats[key] = own[key]
        return feats
    if cfg.get("_features"):
        return dict(cfg["_features"])
    run_dir = Path(ckpt_path).resolve().parent.parent
    candidates = [run_dir / "features.json"]
    card = run_dir / "model_card.json"
    if card.exists():
        c = json.loads(card.read_text())
        if c.get("features"):
            return c["features"]
        candidates.append(Path(c["data_dir"]) / "features.json")
    for p in candidates:
        if p.is_file():
            return _read_features(p)
    raise UserError(f"{ckpt_path}: cannot find the features.json of its training data; pass --features DATA_DIR/features.json")


def _read_features(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable features.json ({e})") from None
    missing = [k for k in ("fps", "audio_config", "motion_scaler", "audio_scaler", "skeleton", "motion_names") if k not in meta]
    if missing:
        raise UserError(f"{path}: lacks {missing}; expected the features.json that `transflower features` writes")
    return meta


def load_seed_clip(feats: dict, seed_clip, context: int, ckpt_path=None) -> list:
    """A warm-start clip (unscaled motion features, up to context-1 frames) for the live cache.

    A BVH given; else the opening of the first training clip (found through the run's model card);
    else the mean pose of the training data."""
    n = max(1, context - 1)
    if seed_clip:
        from transflower.bvh import read_bvh
        from transflower.features import resample_motion
        from transflower.motion_features import MotionFeatures

        motion = read_bvh(seed_clip)
        root, rots = resample_motion(motion.root_positions, motion.local_rotations, motion.fps, feats["fps"])
        f = MotionFeatures(motion.skeleton).encode(root, rots)[-n:]
        return np.asarray(f, dtype=np.float32).round(5).tolist()
    if ckpt_path is not None:
        card = Path(ckpt_path).resolve().parent.parent / "model_card.json"
        if card.exists():
            c = json.loads(card.read_text())
            raw = Path(c.get("data_dir", "")) / f"{(c.get('train_ids') or [''])[0]}.motion_raw.npy"
            if raw.is_file():
                f = np.load(raw)[:n]
                return np.asarray(f, dtype=np.float32).round(5).tolist()
    mean = np.asarray(feats["motion_scaler"]["mean"], dtype=np.float32)
    return [mean.round(5).tolist()]


def load_style_seeds(feats: dict, context: int, ckpt_path=None, data_dir=None) -> dict:
    """Per style, a warm-start clip of that style (unscaled motion features, up to context-1 frames): its most
    typical stretch of training dance. From the features' own `style_seeds` (a shipped model), else from
    the data folder given or the run's model card; {} when neither is there (the model then warm-starts
    every style on its one seed clip)."""
    n = max(1, context - 1)
    if feats.get("style_seeds"):  # the cache holds context-1 frames: a longer clip keeps its last ones
        return {k: [list(row) for row in v][-n:] for k, v in feats["style_seeds"].items()}
    styles = [s for s in (feats.get("styles") or []) if s != "auto"]
    clip_styles = feats.get("clip_styles") or {}
    train_ids = list(feats.get("train_ids") or [])
    if data_dir is None and ckpt_path is not None:
        card = Path(ckpt_path).resolve().parent.parent / "model_card.json"
        if card.exists():
            c = json.loads(card.read_text())
            data_dir = c.get("data_dir")
            train_ids = train_ids or list(c.get("train_ids") or [])
    if not styles or data_dir is None:
        return {}
    seeds = {}
    for style in styles:
        clips = [np.load(Path(data_dir) / f"{sid}.motion_raw.npy") for sid in train_ids
                 if "~" not in sid and clip_styles.get(sid) == style and (Path(data_dir) / f"{sid}.motion_raw.npy").is_file()]
        if clips:
            seeds[style] = typical_window(clips, n).round(5).tolist()
    return seeds


def typical_window(clips: list, n: int, hop: int = 20) -> np.ndarray:
    """The n-frame window of these clips (motion features: root dx, dz, dyaw, then the pose) closest to their
    median in pose activity (mean frame-to-frame change), travel speed and turn rate, each standardised.
    A capture's opening is the dancer getting going and a clip's middle may be an odd figure: the median
    window is the style as it is mostly danced, and the warm start carries it on."""
    cands, stats = [], []
    for m in clips:
        m = np.asarray(m, np.float32)
        for start in range(0, max(1, len(m) - n + 1), hop):
            w = m[start: start + n]
            cands.append(w)
            stats.append([np.abs(np.diff(w[:, 3:], axis=0)).mean() if len(w) > 1 else 0.0,
                          np.hypot(w[:, 0], w[:, 1]).mean(), np.abs(w[:, 2]).mean()])
    stats = np.asarray(stats, np.float64)
    z = (stats - np.median(stats, axis=0)) / (stats.std(axis=0) + 1e-9)
    return np.asarray(cands[int(np.argmin((z ** 2).sum(axis=1)))], np.float32)
