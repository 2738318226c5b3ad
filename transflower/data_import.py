"""`transflower import tang2018 SRC_DIR OUT_DIR`: fit our skeleton to the tang2018 marker capture.

Per clip `DANCE_<S>_<n>/` (skeletons.json, config.json, audio.mp3) this writes `<id>.bvh` (fitted,
fixed bone lengths, resampled to --fps) and `<id>.wav` (the danced span of the song, mono float32,
44.1 kHz), plus `import_report.json` for the batch.

The fit (see `fit_clip`):
1. Joint targets: each joint of JOINT_TABLE takes its marker, or the midpoint of a marker pair.
2. Bone lengths: median marker distances over the clip. Main-chain rest offsets come from a T-pose
   template (hips at +-x, legs straight down, spine/chest/head straight up, arms along -+x; our
   convention: facing +Z, right side at -X). Toe/heel rest vectors come from the ankle-heel-toe
   triangle laid flat, pointing +Z; head markers from their mean pose in the chest frame; forearm
   and hand markers from their mean offset in the forearm's solved frame (a first pass).
3. Per frame, in topological order, each rotating joint's global rotation is the weighted Kabsch fit
   of its rest vectors to the observed vectors (measured from the joint's FK position, so errors do
   not accumulate down the chain); limb bones use their child direction (weight 1) plus a weak
   twist reference, and a very weak "keep the parent's twist" fallback for straight limbs. The twist
   angle is read from the references' summed (cos, sin) vector, smoothed over time (`smooth_twist`):
   its length is the reference's strength, so a frame where the reference lines up with the bone
   (a pointed foot along the shin) takes its twist from its neighbours instead of flipping.
4. Local = parent_global^-1 * global; quaternion signs are made temporally continuous.

The clip's source frame rate: 25 fps for cha-cha and rumba; waltz motion is sampled sparsely, at
length / ((end_position - start_position) / 25) fps (about 5.9). Motion frame i plays at song time
start_position / 25 + i / fps. Motion is resampled to --fps (slerp rotations, linear root).

Clips without audio (motion only) go to OUT/motion_only/ so that OUT holds only the <id>.bvh + <id>.wav
pairs `transflower features` expects. OUT/styles.json names each clip's dance style (cha-cha, rumba, waltz).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transflower.rotations import (identity_quat, quat_apply, quat_between, quat_conj, quat_continuous,
                                   quat_from_axis_angle, quat_mul, weighted_kabsch)
from transflower.skeleton import JOINT_NAMES, PARENTS, ROTATING_JOINTS, Skeleton

log = logging.getLogger(__name__)

NUM_MARKERS = 23
SONG_FPS = 25.0
AUDIO_SR = 44100
STYLE_FPS = {"C": 25.0, "R": 25.0}  # W: derived per clip
STYLE_NAMES = {"C": "cha-cha", "R": "rumba", "W": "waltz"}
MOTION_ONLY_DIR = "motion_only"
# lambda of the twist smoother, in (source frames)^2 (see smooth_twist). Legs: the foot's direction is
# a weak twist reference for thigh and shin (near-degenerate when the toes point along the shin):
# smoothing cut > 45 deg/frame turns from 0.7% to 0.05% of frames. Upper arms: smoothing made them
# worse (0.45% -> 0.8%: a straight arm's twist is shared with the forearm), and so did forearms (1.5% ->
# 2.5%: their twist comes from noisy forearm/hand markers, not a degenerate reference): both keep
# per-frame angles.
TWIST_SMOOTHING = 4.0

# Kabsch weights
W_TWIST = 0.2  # twist reference of limb bones
W_FALLBACK = 0.02  # keep the parent's twist when the twist reference degenerates
W_FOREARM_MARKERS = 0.3


# --- CLI ---------------------------------------------------------------------------------------

def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["tang2018", "bvh"],
                        help="source format: tang2018 (the Tang et al. marker capture) or bvh (your own <id>.bvh + audio; "
                             "see transflower.import_bvh)")
    parser.add_argument("src", type=Path, help="source folder (tang2018: DANCE_<S>_<n>/ clip folders; "
                                               "bvh: <id>.bvh + <id>.wav|mp3|ogg|flac)")
    parser.add_argument("out", type=Path, help="output folder for <id>.bvh, <id>.wav, import_report.json")
    parser.add_argument("--fps", type=float, default=20.0, help="output motion frame rate (default 20)")
    parser.add_argument("--clips", nargs="+", metavar="ID", help="only these clips (e.g. DANCE_C_2)")
    parser.add_argument("--no-beat-check", action="store_true",
                        help="skip the motion-beat vs music-beat check of each clip's rate (needs librosa)")
    from transflower import import_bvh

    import_bvh.add_options(parser)


def run(args) -> int:
    from transflower.errors import UserError

    if args.dataset == "bvh":
        from transflower import import_bvh

        return import_bvh.run(args)

    src: Path = args.src
    out: Path = args.out
    if not src.is_dir():
        raise UserError(f"source folder not found: {src}")
    if not args.fps > 0:
        raise UserError(f"--fps must be positive, got {args.fps}")
    clips = sorted(p.name for p in src.iterdir() if p.is_dir() and p.name.startswith("DANCE_"))
    if args.clips:
        missing = [c for c in args.clips if c not in clips]
        if missing:
            raise UserError(f"clips not found in {src}: {', '.join(missing)}")
        clips = [c for c in clips if c in set(args.clips)]
    if not clips:
        raise UserError(f"no DANCE_<S>_<n> clip folders in {src}")
    out.mkdir(parents=True, exist_ok=True)

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(x, **k):
            return x

    report = {"dataset": "tang2018", "source": str(src), "fps": args.fps, "clips": {}}
    failed = 0
    for clip in tqdm(clips, desc="import", unit="clip", file=sys.stderr):
        try:
            entry = import_clip(src / clip, out, args.fps, beat_check=not args.no_beat_check)
        except Exception as e:  # noqa: BLE001 - one bad clip must not stop the batch
            log.debug("clip %s failed", clip, exc_info=True)
            entry = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
            failed += 1
        report["clips"][clip] = entry
    _atomic_write_bytes(out / "import_report.json", json.dumps(report, indent=2).encode())
    styles = {c: STYLE_NAMES[c.split("_")[1]] for c, e in report["clips"].items()
              if e["status"] == "ok" and c.split("_")[1] in STYLE_NAMES}
    _atomic_write_bytes(out / "styles.json", json.dumps(styles, indent=1).encode())
    print(format_table(report))
    print(f"wrote {len(clips) - failed} clips to {out} ({failed} failed); report: {out / 'import_report.json'}")
    return 1 if failed else 0


def format_table(report: dict) -> str:
    rows = [f"{'clip':<12} {'status':<10} {'src fps':>7} {'offset s':>8} {'frames':>6} {'fit mean':>8} {'fit max':>7}  note"]
    for clip, e in report["clips"].items():
        if e["status"] == "failed":
            rows.append(f"{clip:<12} {'FAILED':<10} {'':>7} {'':>8} {'':>6} {'':>8} {'':>7}  {e['error']}")
            continue
        note = "; ".join(e.get("warnings", []))
        rows.append(f"{clip:<12} {e['status']:<10} {e['source_fps']:>7.3f} {e['offset_s']:>8.2f} {e['frames']:>6d} "
                    f"{e['fit_error_cm']['mean']:>8.2f} {e['fit_error_cm']['max']:>7.2f}  {note}")
    ok = [e for e in report["clips"].values() if e["status"] != "failed"]
    if ok:
        means = np.array([e["fit_error_cm"]["mean"] for e in ok])
        maxes = np.array([e["fit_error_cm"]["max"] for e in ok])
        rows.append(f"fit error over {len(ok)} clips: mean of means {means.mean():.2f} cm (worst {means.max():.2f}), "
                    f"worst max {maxes.max():.2f} cm")
    return "\n".join(rows)


# --- one clip ----------------------------------------------------------------------------------

def _atomic_write_bytes(path: Path, data: bytes) -> None:
    from transflower.atomic import write_bytes_atomic

    write_bytes_atomic(path, data)


def write_wav_atomic(path: Path, audio: np.ndarray, sr: int) -> None:
    import soundfile as sf

    from transflower.atomic import atomic_path

    with atomic_path(path) as tmp:
        sf.write(tmp, np.asarray(audio, dtype=np.float32), sr, subtype="FLOAT", format="WAV")


def load_clip(clip_dir: Path) -> tuple[np.ndarray, dict]:
    """Global marker positions (L, 23, 3) cm and config; DataError on anything malformed."""
    from transflower.errors import DataError

    sk_path = clip_dir / "skeletons.json"
    cfg_path = clip_dir / "config.json"
    for p in (sk_path, cfg_path):
        if not p.is_file():
            raise DataError(f"{p}: missing")
    try:
        cfg = json.loads(cfg_path.read_text())
        start, end = int(cfg["start_position"]), int(cfg["end_position"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{cfg_path}: expected JSON with integer start_position and end_position ({e})") from None
    if start < 0 or end <= start:
        raise DataError(f"{cfg_path}: expected 0 <= start_position < end_position, got {start}, {end}")
    try:
        d = json.loads(sk_path.read_text())
        length = int(d["length"])
        center = np.asarray(d["center"], dtype=np.float64)
        markers = np.asarray(d["skeletons"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{sk_path}: expected JSON with length, center (L,3), skeletons (L,23,3) ({e})") from None
    if markers.ndim != 3 or markers.shape[1:] != (NUM_MARKERS, 3):
        raise DataError(f"{sk_path}: skeletons: expected shape (L, {NUM_MARKERS}, 3), got {markers.shape}")
    if center.shape != (markers.shape[0], 3):
        raise DataError(f"{sk_path}: center: expected shape ({markers.shape[0]}, 3), got {center.shape}")
    if length != markers.shape[0]:
        raise DataError(f"{sk_path}: length {length} does not match {markers.shape[0]} frames")
    if length < 2:
        raise DataError(f"{sk_path}: only {length} frames")
    if not (np.all(np.isfinite(markers)) and np.all(np.isfinite(center))):
        raise DataError(f"{sk_path}: non-finite marker values")
    return markers + center[:, None, :], {"start_position": start, "end_position": end}


def source_fps(clip_id: str, length: int, cfg: dict) -> float:
    style = clip_id.split("_")[1] if clip_id.count("_") >= 2 else ""
    if style in STYLE_FPS:
        return STYLE_FPS[style]
    span_s = (cfg["end_position"] - cfg["start_position"]) / SONG_FPS
    return length / span_s


def import_clip(clip_dir: Path, out_dir: Path, fps: float, beat_check: bool = True) -> dict:
    from transflower.bvh import BvhMotion, write_bvh

    clip_id = clip_dir.name
    markers, cfg = load_clip(clip_dir)
    warnings: list[str] = []
    src_fps = source_fps(clip_id, markers.shape[0], cfg)
    offset_s = cfg["start_position"] / SONG_FPS

    fit = fit_clip(markers)
    root, local = resample(fit.root_positions, fit.local_rotations, src_fps, fps)
    T = root.shape[0]
    entry = {
        "status": "ok",
        "source_frames": int(markers.shape[0]),
        "source_fps": round(src_fps, 4),
        "rate_rule": "25 fps (cha-cha/rumba)" if src_fps == 25.0 else
                     "length / ((end_position - start_position) / 25)",
        "offset_s": offset_s,
        "frames": int(T),
        "fps": fps,
        "duration_s": T / fps,
        "fit_error_cm": {"mean": round(float(fit.errors.mean()), 3), "max": round(float(fit.errors.max()), 3),
                         "per_joint_mean": {n: round(float(v), 3) for n, v in
                                            zip(fit.skeleton.names, fit.errors.mean(axis=0))}},
    }

    audio_path = clip_dir / "audio.mp3"
    if audio_path.is_file():
        import soundfile as sf

        try:
            audio, sr = sf.read(str(audio_path), dtype="float32", always_2d=True)
        except Exception as e:  # noqa: BLE001
            from transflower.errors import DataError

            raise DataError(f"{audio_path}: cannot decode audio ({e})") from None
        mono = audio.mean(axis=1)
        if sr != AUDIO_SR:
            from scipy.signal import resample_poly
            from math import gcd

            g = gcd(int(sr), AUDIO_SR)
            mono = resample_poly(mono, AUDIO_SR // g, int(sr) // g).astype(np.float32)
            warnings.append(f"audio resampled from {sr} Hz")
        n = int(round(T / fps * AUDIO_SR))
        s0 = int(round(offset_s * AUDIO_SR))
        cut = mono[s0:s0 + n]
        if cut.shape[0] < n:
            warnings.append(f"song ends {(n - cut.shape[0]) / AUDIO_SR:.2f} s before the dance: padded with silence")
            cut = np.concatenate([cut, np.zeros(n - cut.shape[0], dtype=np.float32)])
        if beat_check:
            entry["beat_check"] = beat_check_clip(fit.global_positions, src_fps, mono, offset_s)
        write_wav_atomic(out_dir / f"{clip_id}.wav", cut, AUDIO_SR)
        entry["wav"] = f"{clip_id}.wav"
        bvh_rel = f"{clip_id}.bvh"
    else:
        entry["status"] = "no audio"
        warnings.append(f"no audio.mp3: motion only, written to {MOTION_ONLY_DIR}/")
        bvh_rel = f"{MOTION_ONLY_DIR}/{clip_id}.bvh"
        (out_dir / MOTION_ONLY_DIR).mkdir(exist_ok=True)
    write_bvh(out_dir / bvh_rel, BvhMotion(fit.skeleton, fps, root, local))
    entry["bvh"] = bvh_rel
    entry["warnings"] = warnings
    return entry


# --- resampling --------------------------------------------------------------------------------

def resample(root: np.ndarray, local: np.ndarray, src_fps: float, dst_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample to dst_fps over the clip's span [0, (L-1)/src_fps]: linear root, slerp rotations."""
    from transflower.rotations import quat_continuous, quat_slerp

    L = root.shape[0]
    duration = (L - 1) / src_fps
    T = int(np.floor(duration * dst_fps + 1e-9)) + 1
    src_t = np.arange(T) / dst_fps * src_fps
    i0 = np.clip(np.floor(src_t).astype(np.int64), 0, L - 1)
    i1 = np.minimum(i0 + 1, L - 1)
    a = src_t - i0
    new_root = root[i0] * (1 - a)[:, None] + root[i1] * a[:, None]
    local = quat_continuous(local, axis=0)
    new_local = quat_slerp(local[i0], local[i1], a[:, None])
    return new_root, quat_continuous(new_local, axis=0)


# --- skeleton fit --------------------------------------------------------------------------------

@dataclass
class FitResult:
    skeleton: "object"
    root_positions: np.ndarray
    local_rotations: np.ndarray
    global_positions: np.ndarray  # FK of the fit, (L, J, 3)
    targets: np.ndarray  # marker targets (L, J, 3)
    errors: np.ndarray  # (L, J) cm
    bone_lengths: dict = field(default_factory=dict)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def joint_targets(markers: np.ndarray) -> np.ndarray:
    from transflower.skeleton import MARKERS

    return np.stack([markers[:, list(m)].mean(axis=1) for m in MARKERS], axis=1)


class _ChainFit:
    """The fit's state: joint targets (L, J, 3), rest offsets (J, 3), and the global rotations (L, J, 4) and
    FK positions (L, J, 3) solved so far, down the chain in topological order."""

    def __init__(self, tgt: np.ndarray, idx: dict, offsets: np.ndarray):
        L, J = tgt.shape[:2]
        self.L = L
        self.tgt = tgt
        self.idx = idx
        self.offsets = offsets
        self.G = np.empty((L, J, 4))  # global rotations
        self.P = np.empty((L, J, 3))  # FK positions

    def place(self, j: int) -> None:
        p = PARENTS[j]
        if p < 0:
            self.P[:, j] = self.tgt[:, j]
        else:
            self.P[:, j] = self.P[:, p] + quat_apply(self.G[:, p], self.offsets[j])

    def solve(self, j: int, rest: list, obs: list, w: list) -> None:
        L = self.L
        rest_a = _unit(np.stack([np.broadcast_to(r, (L, 3)) for r in rest], axis=1))
        obs_a = _unit(np.stack([np.broadcast_to(o, (L, 3)) for o in obs], axis=1))
        self.G[:, j] = weighted_kabsch(rest_a, obs_a, np.asarray(w, dtype=np.float64))

    def aim(self, j: int, rest_main, obs_main, rest_sec: list, obs_sec: list, w: list, lam: float = 0.0) -> None:
        # swing the bone exactly onto its observed direction, then twist about it: the angle that
        # best aligns the (perpendicular parts of the) secondary vectors, weighted
        L = self.L
        b = _unit(np.broadcast_to(obs_main, (L, 3)))
        swing = quat_between(np.broadcast_to(rest_main, (L, 3)), b)
        num = np.zeros(L)
        den = np.zeros(L)
        for r, o, wk in zip(rest_sec, obs_sec, w):
            p = quat_apply(swing, _unit(np.broadcast_to(r, (L, 3))))
            o = _unit(np.broadcast_to(o, (L, 3)))
            p = p - np.sum(p * b, -1, keepdims=True) * b
            o = o - np.sum(o * b, -1, keepdims=True) * b
            num += wk * np.sum(np.cross(p, o) * b, -1)
            den += wk * np.sum(p * o, -1)
        self.G[:, j] = quat_mul(quat_from_axis_angle(b, smooth_twist(num, den, lam)), swing)

    def child_off(self, j_name: str) -> np.ndarray:
        return self.offsets[self.idx[j_name]]

    @staticmethod
    def mean_in_frame(q: np.ndarray, vec: np.ndarray) -> np.ndarray:
        return quat_apply(quat_conj(q), vec).mean(axis=0)


def _template_offsets(tgt: np.ndarray, idx: dict) -> np.ndarray:
    """Rest offsets (J, 3) of the main chain's T-pose template (right side at -X) and the flat foot
    triangles, from median marker distances; head and hand markers are filled in later."""
    def dist(a: str, b: str) -> float:
        return float(np.median(np.linalg.norm(tgt[:, idx[a]] - tgt[:, idx[b]], axis=-1)))

    offsets = np.zeros((len(idx), 3))
    X, Y, Z = np.eye(3)
    hip_w = dist("RightUpLeg", "LeftUpLeg") / 2
    offsets[idx["RightUpLeg"]] = -hip_w * X
    offsets[idx["LeftUpLeg"]] = hip_w * X
    for side in ("Right", "Left"):
        offsets[idx[f"{side}Leg"]] = -dist(f"{side}UpLeg", f"{side}Leg") * Y
        offsets[idx[f"{side}Foot"]] = -dist(f"{side}Leg", f"{side}Foot") * Y
    offsets[idx["Spine"]] = dist("Hips", "Spine") * Y
    offsets[idx["Chest"]] = dist("Spine", "Chest") * Y
    offsets[idx["Head"]] = dist("Chest", "Head") * Y
    sh_w = dist("RightArm", "LeftArm") / 2
    for side, s in (("Right", -1.0), ("Left", 1.0)):
        offsets[idx[f"{side}Arm"]] = s * sh_w * X
        offsets[idx[f"{side}ForeArm"]] = s * dist(f"{side}Arm", f"{side}ForeArm") * X
        offsets[idx[f"{side}Hand"]] = s * dist(f"{side}ForeArm", f"{side}Hand") * X
        # foot triangle (ankle, heel, toe) laid flat, pointing +Z
        a = dist(f"{side}Foot", f"{side}Heel")
        b = dist(f"{side}Foot", f"{side}Toe")
        c = dist(f"{side}Heel", f"{side}Toe")
        p = (a * a - b * b + c * c) / (2 * c)
        h = np.sqrt(max(a * a - p * p, 1e-6))
        offsets[idx[f"{side}Heel"]] = [0.0, -h, -p]
        offsets[idx[f"{side}Toe"]] = [0.0, -h, c - p]
    return offsets


def _fit_torso(f: _ChainFit) -> None:
    """Hips, spine, chest and head: weighted Kabsch fits to the markers of their children."""
    tgt, idx, P, G, offsets, child_off = f.tgt, f.idx, f.P, f.G, f.offsets, f.child_off
    # Hips: hip markers + spine marker
    h = idx["Hips"]
    f.place(h)
    f.solve(h, [child_off("RightUpLeg"), child_off("LeftUpLeg"), child_off("Spine")],
            [tgt[:, idx["RightUpLeg"]] - P[:, h], tgt[:, idx["LeftUpLeg"]] - P[:, h], tgt[:, idx["Spine"]] - P[:, h]],
            [1.0, 1.0, 1.0])
    # Spine: chest + both shoulders
    sp, ch = idx["Spine"], idx["Chest"]
    f.place(sp)
    co = child_off("Chest")
    f.solve(sp, [co, co + child_off("RightArm"), co + child_off("LeftArm")],
            [tgt[:, ch] - P[:, sp], tgt[:, idx["RightArm"]] - P[:, sp], tgt[:, idx["LeftArm"]] - P[:, sp]],
            [1.0, 0.5, 0.5])
    # Chest: shoulders + head
    f.place(ch)
    f.solve(ch, [child_off("RightArm"), child_off("LeftArm"), child_off("Head")],
            [tgt[:, idx["RightArm"]] - P[:, ch], tgt[:, idx["LeftArm"]] - P[:, ch], tgt[:, idx["Head"]] - P[:, ch]],
            [1.0, 1.0, 1.0])
    # Head: two head markers (rest: mean pose in the chest frame) + the vector back to the chest
    hd = idx["Head"]
    f.place(hd)
    for m in ("HeadMarkerA", "HeadMarkerB"):
        offsets[idx[m]] = f.mean_in_frame(G[:, ch], tgt[:, idx[m]] - tgt[:, hd])
    f.solve(hd, [offsets[idx["HeadMarkerA"]], offsets[idx["HeadMarkerB"]], -child_off("Head")],
            [tgt[:, idx["HeadMarkerA"]] - P[:, hd], tgt[:, idx["HeadMarkerB"]] - P[:, hd], P[:, ch] - P[:, hd]],
            [1.0, 1.0, 0.5])


def _fit_legs(f: _ChainFit) -> None:
    """Thigh and shin aim at their child with the foot's direction as a smoothed twist reference; the
    foot is a Kabsch fit to toe and heel."""
    tgt, idx, P, G, offsets = f.tgt, f.idx, f.P, f.G, f.offsets
    X, Y, Z = np.eye(3)
    for side in ("Right", "Left"):
        up, kn, ft = idx[f"{side}UpLeg"], idx[f"{side}Leg"], idx[f"{side}Foot"]
        toe, heel = idx[f"{side}Toe"], idx[f"{side}Heel"]
        foot_fwd = tgt[:, toe] - tgt[:, heel]
        for j, child in ((up, kn), (kn, ft)):
            f.place(j)
            # fallback: the parent's axis perpendicular to this bone in the rest pose and (for the
            # knee) to its hinge motion: Z for the thigh (pelvis forward), X for the shin (knee hinge)
            fb = Z if j == up else X
            f.aim(j, offsets[child], tgt[:, child] - P[:, j], [Z, fb], [foot_fwd, quat_apply(G[:, PARENTS[j]], fb)],
                  [W_TWIST, W_FALLBACK], lam=TWIST_SMOOTHING)
        f.place(ft)
        f.solve(ft, [offsets[toe], offsets[heel]], [tgt[:, toe] - P[:, ft], tgt[:, heel] - P[:, ft]], [1.0, 1.0])
        for m in (toe, heel):  # refine the end effectors: mean offset in the solved foot frame
            offsets[m] = f.mean_in_frame(G[:, ft], tgt[:, m] - P[:, ft])


def _fit_arms(f: _ChainFit) -> None:
    """Upper arm aims at the elbow (forearm direction as twist reference); the forearm is solved twice:
    first with the upper arm's twist, then with its own markers (rest offsets from the first pass)."""
    tgt, idx, P, G, offsets = f.tgt, f.idx, f.P, f.G, f.offsets
    X, Y, Z = np.eye(3)
    ch = idx["Chest"]
    arm_markers = {"Right": ["RightForeArmMarker"], "Left": ["LeftForeArmMarkerA", "LeftForeArmMarkerB"]}
    for side in ("Right", "Left"):
        sh, el, hand = idx[f"{side}Arm"], idx[f"{side}ForeArm"], idx[f"{side}Hand"]
        f.place(sh)
        forearm_dir = tgt[:, hand] - tgt[:, el]
        f.aim(sh, offsets[el], tgt[:, el] - P[:, sh], [Z, Z], [forearm_dir, quat_apply(G[:, ch], Z)],
              [W_TWIST, W_FALLBACK])
        f.place(el)
        # first pass: hand direction + the upper arm's twist
        # (the elbow bends about the upper arm's Y axis, so that axis is the twist-free reference;
        # the upper arm's Z is close to the forearm's own axis and would leave the twist undefined)
        f.aim(el, offsets[hand], tgt[:, hand] - P[:, el], [Y], [quat_apply(G[:, sh], Y)], [1.0])
        mk = [idx[m] for m in arm_markers[side]]
        hm = idx[f"{side}HandMarker"] if side == "Right" else None
        for m in mk:
            offsets[m] = f.mean_in_frame(G[:, el], tgt[:, m] - P[:, el])
        if hm is not None:
            offsets[hm] = f.mean_in_frame(G[:, el], tgt[:, hm] - tgt[:, hand])
        # second pass: the forearm/hand markers set the forearm's twist
        rest = [offsets[m] for m in mk] + [Y]
        obs = [tgt[:, m] - P[:, el] for m in mk] + [quat_apply(G[:, sh], Y)]
        w = [W_FOREARM_MARKERS] * len(mk) + [W_FALLBACK]
        if hm is not None:
            rest.append(offsets[hm])
            obs.append(tgt[:, hm] - tgt[:, hand])
            w.append(W_FOREARM_MARKERS)
        f.aim(el, offsets[hand], tgt[:, hand] - P[:, el], rest, obs, w)


def _local_rotations(G: np.ndarray) -> np.ndarray:
    """Global rotations (L, J, 4) -> local = parent_global^-1 * global, identity on non-rotating joints,
    signs made temporally continuous. Non-rotating joints first take their parent's global rotation."""
    L, J = G.shape[:2]
    for j in range(J):
        if j not in ROTATING_JOINTS:
            G[:, j] = G[:, PARENTS[j]]
    local = np.empty_like(G)
    local[:, 0] = G[:, 0]
    local[:, 1:] = quat_mul(quat_conj(G[:, PARENTS[1:]]), G[:, 1:])
    nonrot = np.setdiff1d(np.arange(J), ROTATING_JOINTS)
    local[:, nonrot] = identity_quat((L,))[:, None]
    return quat_continuous(local, axis=0)


def fit_clip(markers: np.ndarray) -> FitResult:
    """Fit the JOINT_TABLE skeleton to global marker positions (L, 23, 3); see the module docstring."""
    from transflower.bvh import forward_kinematics

    J = len(JOINT_NAMES)
    idx = {n: i for i, n in enumerate(JOINT_NAMES)}
    tgt = joint_targets(markers)  # (L, J, 3)
    f = _ChainFit(tgt, idx, _template_offsets(tgt, idx))
    _fit_torso(f)
    _fit_legs(f)
    _fit_arms(f)
    local = _local_rotations(f.G)
    offsets = f.offsets
    skeleton = Skeleton(JOINT_NAMES, PARENTS, offsets)
    root = tgt[:, 0].copy()
    gpos, _ = forward_kinematics(skeleton, root, local)
    err = np.linalg.norm(gpos - tgt, axis=-1)
    lengths = {JOINT_NAMES[j]: round(float(np.linalg.norm(offsets[j])), 2) for j in range(1, J)}
    return FitResult(skeleton, root, local, gpos, tgt, err, lengths)


def smooth_twist(num: np.ndarray, den: np.ndarray, lam: float) -> np.ndarray:
    """Twist angles (L,) from per-frame (sin, cos)-weighted sums: the 2-D vectors (den, num) are smoothed
    over time (minimise |v - s|^2 + lam |v_t - v_{t-1}|^2, a tridiagonal solve), then v's angle is taken.
    A vector's length is its reference's strength, so weak (near-degenerate) frames follow their
    neighbours while strong frames keep their own angle: no 180-degree twist flips where a reference
    vector passes close to the bone axis."""
    from scipy.linalg import solveh_banded

    L = num.shape[0]
    if L < 3 or lam <= 0:
        return np.arctan2(num, den)
    ab = np.zeros((2, L))  # upper form: ab[0, 1:] = off-diagonal, ab[1] = diagonal
    ab[0, 1:] = -lam
    ab[1] = 1.0 + 2.0 * lam
    ab[1, 0] = ab[1, -1] = 1.0 + lam
    v = solveh_banded(ab, np.stack([den, num], axis=1))
    return np.arctan2(v[:, 1], v[:, 0])


# --- rate / offset check against the music ----------------------------------------------------------

def beat_check_clip(global_positions: np.ndarray, src_fps: float, mono: np.ndarray, offset_s: float) -> dict:
    """How well motion beats (minima of mean joint speed) line up with the song's beats (librosa).

    Returns the score (mean of exp(-d^2 / (2 * 0.07^2)) over motion beats, d = distance to the
    nearest music beat in seconds) at the rate and offset used, and the best rate scale / offset
    shift found on a small grid. Reported only: the import uses the nominal rate and offset.
    """
    try:
        import librosa
    except ImportError:
        return {"skipped": "librosa not installed"}
    from scipy.signal import argrelextrema

    L = global_positions.shape[0]
    sr = 22050
    s0 = max(int((offset_s - 2.0) * AUDIO_SR), 0)
    s1 = int((offset_s + L / src_fps + 2.0) * AUDIO_SR)
    seg = mono[s0:s1]
    if seg.size < sr:
        return {"skipped": "song too short"}
    y = librosa.resample(seg, orig_sr=AUDIO_SR, target_sr=sr)
    _, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    beats = np.asarray(beats) + s0 / AUDIO_SR
    if beats.size < 4:
        return {"skipped": "too few music beats"}
    speed = np.linalg.norm(np.diff(global_positions, axis=0), axis=-1).mean(axis=1)
    # light smoothing before picking minima
    k = np.array([0.25, 0.5, 0.25])
    speed = np.convolve(np.pad(speed, 1, mode="edge"), k, mode="valid")
    mins = argrelextrema(speed, np.less_equal, order=1)[0]
    mins = mins[(mins > 0) & (mins < speed.size - 1)] + 0.5  # speed sample i is between frames i, i+1
    if mins.size < 4:
        return {"skipped": "too few motion beats"}

    def score(scale: float, shift: float) -> float:
        t = offset_s + shift + mins / (src_fps * scale)
        d = np.abs(t[:, None] - beats[None, :]).min(axis=1)
        return float(np.mean(np.exp(-d * d / (2 * 0.07 ** 2))))

    nominal = score(1.0, 0.0)
    best = (nominal, 1.0, 0.0)
    for scale in np.linspace(0.95, 1.05, 21):
        for shift in np.arange(-0.3, 0.301, 0.02):
            s = score(scale, shift)
            if s > best[0] + 1e-9:
                best = (s, float(scale), float(shift))
    return {"score_nominal": round(nominal, 3), "best_score": round(best[0], 3),
            "best_rate": round(src_fps * best[1], 4), "best_offset_shift_s": round(best[2], 3),
            "music_tempo_bpm": round(float(60.0 / np.median(np.diff(beats))), 1), "motion_beats": int(mins.size)}
