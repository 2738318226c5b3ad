"""`transflower import bvh SRC OUT`: your own dances (a folder of `<id>.bvh` + `<id>.wav|mp3|ogg|flac`)
-> the `<id>.bvh` + `<id>.wav` pairs that `transflower features` reads.

Per clip, normalised so that every clip of the folder (and our conventions: Y up, centimetres, floor at
y = 0) agree:
- joint names: namespace prefixes dropped (`mixamorig:Hips`, `Armature|Hips` -> `Hips`), spaces -> `_`;
  every clip must then have the same joints (one model learns one skeleton): the folder's most common
  skeleton wins and the others are reported;
- up axis: a Z-up capture (Blender, some exporters) is turned to Y up (the whole motion is rotated; the
  body itself is unchanged);
- units: detected from the body's height over the clip (0.8-2.6 -> metres, 80-260 -> centimetres,
  800-2600 -> millimetres), or given with --units; scaled to centimetres;
- floor: the root is shifted so that the lowest joint rests on y = 0 (the live floor clamp assumes it);
- frame rate: resampled to --fps (slerp rotations, linear root), as `transflower import tang2018` does;
- audio: decoded (wav, flac, ogg, mp3), mixed to mono and written as `<id>.wav`; it must last at least as
  long as the motion (less one second), both starting at the same instant.

A bad clip never stops the batch: each problem is one line naming the file, the good clips are written,
`import_report.json` records what was done to each, and the exit status is 1 when any clip was skipped.
"""
from __future__ import annotations

import logging
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from transflower.errors import DataError, UserError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")  # preference order when a clip has several
UNITS_TO_CM = {"cm": 1.0, "m": 100.0, "mm": 0.1, "inch": 2.54}
# a dancer's height in each unit (children to tall adults): the detection ranges, disjoint
HEIGHT_RANGES = {"m": (0.8, 2.6), "cm": (80.0, 260.0), "mm": (800.0, 2600.0)}
AUDIO_SLACK_S = 1.0  # the audio may end this much before the motion (as `transflower features` allows)


def add_options(parser) -> None:
    """Options of the bvh format (the `transflower import` parser holds the shared ones: src, out, --fps, --clips)."""
    parser.add_argument("--units", choices=["auto", *UNITS_TO_CM], default="auto",
                        help="bvh: length unit of the files (default auto: detected from the body's height)")


def normalise_name(name: str) -> str:
    """`mixamorig:LeftArm` -> `LeftArm`, `Armature|Hips` -> `Hips`, `Left Arm` -> `Left_Arm`."""
    short = re.split(r"[:|]", name)[-1].strip()
    return re.sub(r"\s+", "_", short) or name


def find_clips(src: Path) -> tuple[dict[str, tuple[Path, Path | None]], list[str]]:
    """{id: (bvh, audio or None)} for every <id>.bvh in src, and problems with audio lacking a BVH."""
    files = [p for p in src.iterdir() if p.is_file()]
    bvhs = {p.stem: p for p in files if p.suffix.lower() == ".bvh"}
    audio: dict[str, Path] = {}
    for ext in reversed(AUDIO_EXTENSIONS):  # the preferred extension is written last, so it wins
        for p in files:
            if p.suffix.lower() == ext:
                audio[p.stem] = p
    clips = {i: (bvhs[i], audio.get(i)) for i in sorted(bvhs)}
    problems = [f"{audio[i]}: no matching {i}.bvh (expected <id>.bvh next to <id>.wav|mp3|ogg|flac)"
                for i in sorted(set(audio) - set(bvhs))]
    return clips, problems


def _vertical_extent(positions: np.ndarray, axis: int) -> float:
    """Median over frames of the body's extent along `axis` (a robust height)."""
    p = positions[..., axis]
    return float(np.median(p.max(axis=-1) - p.min(axis=-1)))


def z_up_to_y_up(skeleton, root_positions: np.ndarray, local_rotations: np.ndarray):
    """Rotate a whole Z-up motion -90 deg about X (x, y, z) -> (x, z, -y): offsets and root positions
    rotate, every local rotation is conjugated (q' = r q r^-1), so the global pose turns rigidly."""
    from transflower.rotations import quat_apply, quat_inv, quat_mul
    from transflower.skeleton import Skeleton

    r = np.array([-np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)])
    offsets = quat_apply(np.broadcast_to(r, skeleton.offsets.shape[:-1] + (4,)), skeleton.offsets)
    root = quat_apply(np.broadcast_to(r, root_positions.shape[:-1] + (4,)), root_positions)
    rb = np.broadcast_to(r, local_rotations.shape)
    local = quat_mul(quat_mul(rb, local_rotations), quat_inv(rb))
    return Skeleton(list(skeleton.names), skeleton.parents, offsets, skeleton.rotating), root, local


def normalise_motion(motion, path: Path, units: str = "auto") -> tuple[object, np.ndarray, np.ndarray, dict]:
    """(skeleton, root_positions, local_rotations, notes): names, up axis, units and floor normalised."""
    from transflower.bvh import forward_kinematics
    from transflower.skeleton import Skeleton

    sk = motion.skeleton
    names = [normalise_name(n) for n in sk.names]
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise DataError(f"{path}: joint names {dupes} appear twice once their prefixes are dropped; rename the joints")
    notes = {"renamed_joints": sum(a != b for a, b in zip(sk.names, names))}
    sk = Skeleton(names, sk.parents, sk.offsets, sk.rotating)
    root, local = motion.root_positions.astype(np.float64), motion.local_rotations.astype(np.float64)
    if motion.num_frames < 2:
        raise DataError(f"{path}: {motion.num_frames} frame(s); expected a dance of at least 2 frames")
    step = max(1, motion.num_frames // 200)  # the body's shape from up to 200 frames is plenty
    pos, _ = forward_kinematics(sk, root[::step], local[::step])
    ext = [_vertical_extent(pos, a) for a in range(3)]
    notes["up_axis"] = "y"
    if ext[2] > 2.0 * ext[1]:
        sk, root, local = z_up_to_y_up(sk, root, local)
        notes["up_axis"] = "z (turned to y)"
        pos, _ = forward_kinematics(sk, root[::step], local[::step])
    height = _vertical_extent(pos, 1)
    if units == "auto":
        found = [u for u, (lo, hi) in HEIGHT_RANGES.items() if lo <= height <= hi]
        if not found:
            raise DataError(f"{path}: cannot tell the length unit: the body is {height:.3g} units tall (expected "
                            "0.8-2.6 m, 80-260 cm or 800-2600 mm); pass --units cm|m|mm|inch")
        units = found[0]
    scale = UNITS_TO_CM[units]
    notes.update(units=units, height_cm=round(height * scale, 1))
    sk = Skeleton(list(sk.names), sk.parents, sk.offsets * scale, sk.rotating)
    root = root * scale
    lowest = float(np.percentile((pos[..., 1] * scale).min(axis=-1), 5))  # robust to a few glitchy frames
    root[:, 1] -= lowest
    notes["floor_shift_cm"] = round(-lowest, 2)
    return sk, root, local, notes


def source_fps(fps_from_frame_time: float) -> float:
    """Exporters write the frame time rounded (0.008333 for 120 fps = 120.0048 fps): snap to a whole
    rate within 0.01 %, or the last frame of a clip is lost to the rounding when resampling."""
    whole = round(fps_from_frame_time)
    return float(whole) if whole > 0 and abs(fps_from_frame_time - whole) <= 1e-4 * whole else float(fps_from_frame_time)


def import_clip(clip_id: str, bvh_path: Path, audio_path: Path | None, out: Path, fps: float, units: str) -> dict:
    """Read, normalise and write one clip; DataError (naming the file) when it cannot be used."""
    from transflower.audio_features import load_audio_mono
    from transflower.bvh import BvhMotion, read_bvh
    from transflower.data_import import resample

    if audio_path is None:
        raise DataError(f"{bvh_path}: no matching audio ({', '.join(clip_id + e for e in AUDIO_EXTENSIONS)})")
    motion = read_bvh(bvh_path)
    sk, root, local, notes = normalise_motion(motion, bvh_path, units)
    src_fps = source_fps(motion.fps)
    root, local = resample(root, local, src_fps, fps)
    duration = (root.shape[0] - 1) / fps
    try:
        y, sr = load_audio_mono(audio_path)
    except UserError as e:
        raise DataError(str(e)) from None
    if len(y) / sr < duration - AUDIO_SLACK_S:
        raise DataError(f"{audio_path}: lasts {len(y) / sr:.2f} s but the motion {bvh_path.name} lasts {duration:.2f} s; "
                        "expected audio and motion that start together and last as long")
    return {"skeleton": sk, "motion": BvhMotion(sk, fps, root, local),
            "entry": {"status": "ok", "bvh": bvh_path.name, "audio": audio_path.name, "source_fps": round(src_fps, 4),
                      "frames": int(root.shape[0]), "seconds": round(duration, 2), "joints": sk.num_joints, **notes}}


def run(args) -> int:
    from transflower.atomic import write_json_atomic
    from transflower.audio_features import load_audio_mono
    from transflower.bvh import write_bvh
    from transflower.data_import import write_wav_atomic

    src, out, fps = Path(args.src), Path(args.out), float(args.fps)
    if not src.is_dir():
        raise UserError(f"source folder not found: {src}")
    if not fps > 0:
        raise UserError(f"--fps must be positive, got {args.fps}")
    clips, problems = find_clips(src)
    if getattr(args, "clips", None):
        missing = [c for c in args.clips if c not in clips]
        if missing:
            raise UserError(f"clips not found in {src}: {', '.join(m + '.bvh' for m in missing)}")
        clips = {c: clips[c] for c in args.clips}
    if not clips:
        raise UserError(f"{src}: no <id>.bvh files (expected <id>.bvh + <id>.wav|mp3|ogg|flac pairs)")
    units = getattr(args, "units", "auto") or "auto"

    done, failed = {}, {}
    for clip_id, (bvh_path, audio_path) in clips.items():
        try:
            done[clip_id] = import_clip(clip_id, bvh_path, audio_path, out, fps, units)
        except DataError as e:
            failed[clip_id] = str(e)
        except Exception as e:  # noqa: BLE001  one bad file must not stop the batch; its reason is kept
            log.debug("clip %s failed", clip_id, exc_info=True)
            failed[clip_id] = f"{bvh_path}: {type(e).__name__}: {e}"

    # one model learns one skeleton: the folder's most common joint list wins
    if done:
        shapes = Counter(tuple(c["skeleton"].names) for c in done.values())
        ref, _ = shapes.most_common(1)[0]
        for clip_id in [c for c in done if tuple(done[c]["skeleton"].names) != ref]:
            names = done.pop(clip_id)["skeleton"].names
            extra, lacking = sorted(set(names) - set(ref)), sorted(set(ref) - set(names))
            what = (f"joints {extra} not in" if extra else "") + (" and " if extra and lacking else "") + \
                   (f"lacks joints {lacking} of" if lacking else "") or "the joints in another order than"
            failed[clip_id] = (f"{clips[clip_id][0]}: {what} the folder's common skeleton ({len(ref)} joints, "
                               f"{shapes[ref]} clips); one model needs one skeleton")

    out.mkdir(parents=True, exist_ok=True)
    report = {"format": "bvh", "source": src.name, "fps": fps, "units": units, "clips": {}}
    for clip_id, c in done.items():
        write_bvh(out / f"{clip_id}.bvh", c["motion"])
        write_wav_atomic(out / f"{clip_id}.wav", *load_audio_mono(clips[clip_id][1]))  # decoded again: not all songs in memory at once
        report["clips"][clip_id] = c["entry"]
    for clip_id, msg in failed.items():
        report["clips"][clip_id] = {"status": "skipped", "error": msg}
    report["unmatched_audio"] = problems
    write_json_atomic(out / "import_report.json", report)

    for clip_id, c in done.items():
        e = c["entry"]
        print(f"{clip_id}: {e['frames']} frames at {fps:g} fps (from {e['source_fps']:g}), {e['joints']} joints, "
              f"units {e['units']} (height {e['height_cm']:g} cm), up {e['up_axis']}, floor shift {e['floor_shift_cm']:g} cm")
    for msg in list(failed.values()) + problems:
        print(f"skipped: {msg}", file=sys.stderr)
    print(f"wrote {len(done)} of {len(clips)} clips to {out} ({len(failed)} skipped); report: {out / 'import_report.json'}")
    if failed:
        print(f"error: {len(failed)} clip(s) skipped: {', '.join(clips[c][0].name for c in failed)}", file=sys.stderr)
        return 1
    return 0
