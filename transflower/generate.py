"""`transflower generate MODEL SONG --out DIR`: a dance for a whole song, offline (the seed's script_generate).

MODEL is a training checkpoint (.ckpt or a shipped .pt, its step run in torch) or an exported .onnx
(onnxruntime); either way the live engine samples it, so this also previews exactly what `transflower
live` will do with that model.
Generation is autoregressive, frame by frame, with the same causal audio features as live; the
output is a BVH (the canonical skeleton of the training data), optionally an MP4 of a rendered
skeleton with the song, and a filmstrip PNG.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from transflower.audio_features import silence_row
from transflower.errors import UserError
from transflower.motion_features import features_from_bvh as seed_from_bvh  # a --seed-motion BVH's features

log = logging.getLogger("transflower.generate")


def song_audio_features(song, audio_config: dict, num_frames: int | None = None) -> np.ndarray:
    from transflower.audio_features import AudioFeatureConfig, compute_audio_features, load_audio_mono

    y, sr = load_audio_mono(song)
    return compute_audio_features(y, sr, AudioFeatureConfig.from_dict(audio_config), num_frames)


def generate(model_path, song, temperature: float | None = None, seed: int | None = None, seed_motion=None,
             features_json=None, max_seconds: float | None = None, progress: bool = True, style=None,
             style_strength: float = 1.0, ground: bool = True, noise_correlation: float | None = None,
             energy: bool = True, audio=None, time_base=False) -> dict:
    """-> {'motion': (T, Dm) unscaled features, 'fps', 'skeleton' (dict), 'audio_rows'}.

    The live engine samples it (transflower.realtime.engine.DanceEngine: temperature, presets, noise, style, grounding,
    energy), an .onnx in onnxruntime, a checkpoint through its step in torch (transflower.models.live_step).
    temperature None: the model's benchmarked default (its metadata's default_temperature), else 1.
    A style without `seed_motion` starts on the model's seed clip of that style, where it has one.
    ground: keep the dancer on its seed clip's floor (transflower.floor.Grounding), as `live` does.
    noise_correlation None: the model's default (its metadata's default_noise_correlation), else 0.
    energy: the dance's size follows the music's loudness and a break calms it (transflower.energy), as live.
    audio: the song's audio feature rows (unscaled), when the caller has them (the benchmarks); else read from song.
    time_base: the dancer's clock at the music's tempo over the style's (transflower.realtime.time_base), as live:
    True or a TimeBaseConfig (its count-in, ...)."""
    from transflower.realtime.engine import DanceEngine  # the one sampler, whatever the backend

    model_path = Path(model_path)
    if model_path.suffix == ".onnx":
        from transflower.realtime.onnx_model import OnnxDanceModel

        model, backend = OnnxDanceModel(model_path, provider="cpu"), "onnx"
    else:
        from transflower.models.live_step import TorchDanceModel

        model, backend = TorchDanceModel(model_path, features_json), "torch"
    meta = model.meta
    if temperature is None:
        temperature = float(meta.get("default_temperature", 1.0))
    fps, L = float(meta["fps"]), int(meta["lookahead"])
    audio = song_audio_features(song, meta["audio_config"]) if audio is None else np.asarray(audio, np.float32)
    n = len(audio) if max_seconds is None else min(len(audio), int(max_seconds * fps))
    if n < 2:
        raise UserError(f"{song}: too short to dance to ({len(audio) / fps:.2f} s)")
    silence = silence_row(meta["audio_config"])
    # pose t hears audio row t + L; past the song's end the model hears silence
    rows = np.concatenate([audio, np.repeat(silence[None], L, axis=0)])[L : L + n]
    style_seed = style not in (None, "auto") and not seed_motion and style in model.style_seeds
    seed_feats = None
    if seed_motion:
        seed_feats = seed_from_bvh(seed_motion, fps)[-int(meta["context"]) + 1 :]
    elif not style_seed:
        seed_feats = np.asarray(meta["seed_motion"], np.float32)[-int(meta["context"]) + 1 :]
    # a style: warmed up under its label, on its own seed clip unless one was given
    engine = DanceEngine(model, temperature=temperature, seed=seed, seed_motion=seed_feats, style=style,
                         style_strength=style_strength, ground=ground, noise_correlation=noise_correlation, energy=energy,
                         prime_audio=audio[0], time_base=time_base)
    out = np.empty((n, engine.motion_dim), np.float32)
    it = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="generate", unit="frame")
    for i in it:
        out[i] = engine.step(rows[i])
    seed_used = f"{style} seed clip" if style_seed else ("--seed-motion" if seed_motion else "model seed clip")
    return {"motion": out, "fps": fps, "skeleton": meta["skeleton"], "audio_rows": audio[:n], "backend": backend,
            "temperature": temperature, "seed": seed_used, "noise_correlation": float(engine.correlation[0, 0])}


def features_to_motion(motion: np.ndarray, skeleton_dict: dict, fps: float, floor: bool = False):
    """Motion features (T, D) -> a BvhMotion; `floor` lifts frames whose feet sink below y = 0."""
    from transflower.bvh import BvhMotion
    from transflower.motion_features import MotionFeatures
    from transflower.skeleton import Skeleton

    skel = Skeleton.from_dict(skeleton_dict)
    root, rots = MotionFeatures(skel).decode(motion)
    if floor:
        from transflower.floor import FloorClamp

        FloorClamp(skel).apply(root, rots)
    return BvhMotion(skeleton=skel, fps=fps, root_positions=root, local_rotations=rots)


def configure_parser(p: argparse.ArgumentParser) -> None:
    from transflower.realtime.time_base import COUNT_IN_HELP, TIME_BASE_HELP  # numpy only; not at import (core)

    p.add_argument("model", help="a checkpoint (.ckpt) or an exported model (.onnx)")
    p.add_argument("song", help="audio file to dance to (wav, flac, ogg, mp3)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--bvh", action="store_true", help="write <song>.bvh (default when neither --bvh nor --video)")
    p.add_argument("--video", action="store_true", help="write <song>.mp4: the rendered skeleton with the song (ffmpeg)")
    p.add_argument("--filmstrip", action="store_true", help="write <song>.png: a strip of frames")
    p.add_argument("--seed-motion", help="BVH whose last frames start the dance (default: the model's seed clip of the --style "
                   "asked for, else its one seed clip)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (0 = the flow's mode; default: the model's own, else 1)")
    p.add_argument("--style", help="dance style of a style-conditioned model (default auto: the music decides)")
    p.add_argument("--style-strength", type=float, default=1.0, metavar="S",
                   help="how strongly the style beats the music: 1 = as trained (default), 0 = auto, up to 4; "
                        "above 1 the style is clearer and the motion jerkier (benchmarks/README.md)")
    p.add_argument("--noise-correlation", type=float, default=None, metavar="RHO",
                   help="how alike consecutive frames' sampling noise is, 0..0.95 (0 = independent draws, as trained; "
                        "higher = smoother, calmer motion; default: the model's own, and a style's preset its own)")
    p.add_argument("--no-energy", action="store_true",
                   help="dance at full size whatever the music's level (by default quieter passages are danced smaller "
                        "and a break in the music calms the dancer, as live)")
    p.add_argument("--time-base", action="store_true", help=TIME_BASE_HELP)
    p.add_argument("--count-in", type=float, default=None, metavar="SECONDS", help=COUNT_IN_HELP)
    p.add_argument("--seed", type=int, default=None, help="random seed for a reproducible dance")
    p.add_argument("--features", help="features.json of the training data (for .ckpt; default: via the run's model card)")
    p.add_argument("--max-seconds", type=float, default=None, help="only the first N seconds of the song")
    p.add_argument("--no-floor", action="store_true", help="no floor handling: keep sampled poses whose feet sink below the floor, and let a dancer "
                   "float off it (the root height the model samples drifts; by default each pose is grounded before "
                   "it is fed back)")


def run(args) -> int:
    from transflower.bvh import forward_kinematics, write_bvh
    from transflower.realtime.time_base import time_base_option

    if not Path(args.song).exists():
        raise UserError(f"{args.song}: song file not found")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = generate(args.model, args.song, args.temperature, args.seed, args.seed_motion, args.features, args.max_seconds,
                   style=args.style, style_strength=args.style_strength, ground=not args.no_floor,
                   noise_correlation=args.noise_correlation, energy=not args.no_energy,
                   time_base=time_base_option(args.time_base, args.count_in))
    motion = features_to_motion(res["motion"], res["skeleton"], res["fps"], floor=not args.no_floor)
    stem = Path(args.song).stem
    written = []
    if args.bvh or not (args.video or args.filmstrip):
        write_bvh(out_dir / f"{stem}.bvh", motion)
        written.append(out_dir / f"{stem}.bvh")
    if args.video or args.filmstrip:
        pos, _ = forward_kinematics(motion.skeleton, motion.root_positions, motion.local_rotations)
        if args.video:
            from transflower.render import render_video

            written.append(render_video(pos, motion.skeleton.parents, res["fps"], out_dir / f"{stem}.mp4", args.song, title=stem))
        if args.filmstrip:
            from transflower.render import render_filmstrip

            written.append(render_filmstrip(pos, motion.skeleton.parents, res["fps"], out_dir / f"{stem}.png", title=stem))
    print(json.dumps({"frames": len(res["motion"]), "fps": res["fps"], "seconds": len(res["motion"]) / res["fps"],
                      "backend": res["backend"], "temperature": res["temperature"], "style": args.style or "auto",
                      "noise_correlation": res["noise_correlation"],
                      "style_strength": args.style_strength, "written": [str(w) for w in written]}, indent=1))
    return 0
