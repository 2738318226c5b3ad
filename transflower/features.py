"""`transflower features DATA_DIR`: the seed's feature step, for paired `<id>.bvh` + `<id>.wav` clips.

Writes, per clip, `<id>.motion.npy` and `<id>.audio.npy` (standardised, same length, same frame rate;
the unscaled arrays as `<id>.motion_raw.npy` / `<id>.audio_raw.npy`), and for the folder:
`motion_scaler.json`, `audio_scaler.json` (mean/std fitted on the training split only),
`base_filenames_train.txt` / `base_filenames_test.txt`, and `features.json` (frame rate, audio feature
config, motion feature names, the canonical skeleton used to turn generated features back into BVH).
A bad clip is reported and skipped; the command exits non-zero at the end if any failed.

Styles: when the folder has `styles.json` ({clip id: style name}, written by `transflower import
tang2018`), every clip also gets `<id>.style.npy` (T, 1): the style's index in features.json's "styles"
list, whose entry 0 is "auto" (no label: the music decides).
Mirror augmentation (on by default, `--no-mirror`): each training clip also gets a left-right mirrored
copy `<id>~mirror` (same music and style) in the training split; the test split stays real.
Tempo augmentation (on by default, `--tempo-augment`; `--tempo-augment` with no factor turns it off): each
training clip also gets copies `<id>~t<f>` whose music is time-stretched to f times its tempo (pitch kept)
and whose motion is resampled in time by the same factor, features computed on the stretched audio. In
the real data tempo and style go together (cha-cha fast, waltz slow); the copies pull them apart so the
music's tempo can tell the model how fast to step, not which dance it is. The scalers are fitted on the
unstretched clips only. `transflower.dataset` splices versions of one clip inside a window (a tempo change
mid-window), which is what a DJ's tempo change looks like to the model.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from transflower.atomic import atomic_path, write_json_atomic as save_json_atomic
from transflower.errors import DataError, UserError
from transflower.motion_features import resample_motion  # noqa: F401 (re-exported: its home is motion_features)

log = logging.getLogger("transflower.features")


# ---------------------------------------------------------------------------------------------
# Scalers and atomic writes


class StandardScaler:
    """Per-dimension mean/std (std floored, so constant dimensions do not blow up)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(cls, arrays: list[np.ndarray], min_std: float = 1e-3) -> "StandardScaler":
        x = np.concatenate(arrays, axis=0).astype(np.float64)
        return cls(x.mean(0), np.maximum(x.std(0), min_std))

    def transform(self, x):
        return ((x - self.mean) / self.std).astype(np.float32)

    def inverse(self, x):
        return (x * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "StandardScaler":
        return cls(np.array(d["mean"]), np.array(d["std"]))

    @classmethod
    def load(cls, path) -> "StandardScaler":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path}: not a scaler file ({e}); expected JSON with 'mean' and 'std' lists") from None


def save_npy_atomic(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


# ---------------------------------------------------------------------------------------------
# Per-clip features


def clip_features(bvh_path: Path, wav_path: Path, fps: float, audio_config):
    """(motion (T, Dm), audio (T, Da), skeleton) for one clip, unscaled."""
    from transflower.audio_features import compute_audio_features, load_audio_mono
    from transflower.bvh import read_bvh
    from transflower.motion_features import MotionFeatures

    motion = read_bvh(bvh_path)
    root, rots = resample_motion(motion.root_positions, motion.local_rotations, motion.fps, fps)
    feats = MotionFeatures(motion.skeleton).encode(root, rots)
    y, sr = load_audio_mono(wav_path)
    duration = len(y) / sr
    T = feats.shape[0]
    if duration < (T - 1) / fps - 1.0:  # a second of slack: the last beat may be cut short
        raise DataError(f"{wav_path}: audio lasts {duration:.2f} s but the motion {bvh_path.name} lasts {(T - 1) / fps:.2f} s; "
                        "expected time-synced pairs of (nearly) equal length")
    audio = compute_audio_features(y, sr, audio_config, num_frames=T)
    return feats.astype(np.float32), audio, motion.skeleton


def default_split(ids: list[str], every: int = 6, first: int = 2) -> tuple[list[str], list[str]]:
    """Stratified by style (the id's prefix before its last '_'): every `every`-th clip of each style, from `first`."""
    groups: dict[str, list[str]] = {}
    for i in sorted(ids):
        groups.setdefault(i.rsplit("_", 1)[0], []).append(i)
    test = [g[k] for g in groups.values() for k in range(first, len(g), every)]
    train = [i for i in sorted(ids) if i not in test]
    return train, test


def find_pairs(data_dir: Path) -> tuple[list[str], list[str]]:
    bvhs = {p.stem for p in data_dir.glob("*.bvh")}
    wavs = {p.stem for p in data_dir.glob("*.wav")}
    problems = [f"{data_dir / (s + '.bvh')}: no matching {s}.wav (expected <id>.bvh + <id>.wav pairs)" for s in sorted(bvhs - wavs)]
    problems += [f"{data_dir / (s + '.wav')}: no matching {s}.bvh (expected <id>.bvh + <id>.wav pairs)" for s in sorted(wavs - bvhs)]
    return sorted(bvhs & wavs), problems


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", help="folder of paired <id>.bvh + <id>.wav (e.g. from `transflower import`)")
    p.add_argument("--fps", type=float, default=20.0, help="feature frame rate (default 20, the paper's)")
    p.add_argument("--replace-existing", action="store_true", help="recompute clips whose feature files exist")
    p.add_argument("--test-ids", nargs="*", default=None, help="clip ids for the test split (default: every 6th clip per style)")
    p.add_argument("--sample-rate", type=int, default=24000, help="audio analysis rate (default 24000 Hz)")
    p.add_argument("--no-mirror", action="store_true", help="do not add left-right mirrored copies of the training clips")
    p.add_argument("--tempo-augment", type=float, nargs="*", default=list(TEMPO_FACTORS), metavar="F",
                   help="tempo factors of the time-stretched training copies (default %(default)s; "
                        "give the flag with no factor to add none)")


def run(args) -> int:
    from transflower.audio_features import AudioFeatureConfig

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: not a folder; expected a folder of <id>.bvh + <id>.wav pairs")
    audio_config = AudioFeatureConfig(sample_rate=args.sample_rate, fps=args.fps)
    _ = audio_config.hop  # validates rate / fps
    ids, failures = find_pairs(data_dir)
    if not ids:
        raise UserError(f"{data_dir}: no <id>.bvh + <id>.wav pairs found")

    done, skeletons = _raw_features(data_dir, ids, args, audio_config, failures)
    if not done:
        for f in failures:
            print(f"FAILED {f}")
        raise UserError(f"{data_dir}: no clip could be processed")
    train, test = _train_test_split(done, args.test_ids)
    styles, clip_styles = load_styles(data_dir, done)
    factors = check_tempo_factors(getattr(args, "tempo_augment", None) or [])
    train = _augment(data_dir, train, factors, skeletons, failures, args, audio_config)
    m_scaler, a_scaler = _normalise(data_dir, done, train, styles, clip_styles)
    (data_dir / "base_filenames_train.txt").write_text("\n".join(train) + "\n")
    (data_dir / "base_filenames_test.txt").write_text("\n".join(test) + "\n")
    _write_features_json(data_dir, args, audio_config, skeletons, train, test, styles, clip_styles, factors,
                         m_scaler, a_scaler)
    print(f"features: {len(done)} clips ({len(train)} train, {len(test)} test) at {args.fps:g} fps; "
          f"motion {m_scaler.mean.shape[0]} dims, audio {a_scaler.mean.shape[0]} dims -> {data_dir}")
    for f in failures:
        print(f"FAILED {f}")
    return 1 if failures else 0


def _raw_features(data_dir: Path, ids: list[str], args, audio_config, failures: list[str]) -> tuple[list[str], dict]:
    """Each clip's unnormalised <id>.motion_raw.npy / .audio_raw.npy (kept from an earlier run unless
    --replace-existing). Returns the clips done and their skeletons; a clip that fails is appended to
    `failures` and the others go on."""
    from tqdm import tqdm

    done, skeletons = [], {}
    for seq_id in tqdm(ids, desc="features", unit="clip"):
        raw_m, raw_a = data_dir / f"{seq_id}.motion_raw.npy", data_dir / f"{seq_id}.audio_raw.npy"
        try:
            if raw_m.exists() and raw_a.exists() and not args.replace_existing:
                from transflower.bvh import read_bvh

                skeletons[seq_id] = read_bvh(data_dir / f"{seq_id}.bvh").skeleton
            else:
                motion, audio, skel = clip_features(data_dir / f"{seq_id}.bvh", data_dir / f"{seq_id}.wav", args.fps, audio_config)
                save_npy_atomic(raw_m, motion)
                save_npy_atomic(raw_a, audio)
                skeletons[seq_id] = skel
            done.append(seq_id)
        except (DataError, UserError) as e:
            failures.append(str(e))
        except Exception as e:  # an unexpected failure in one clip must not lose the others' work
            failures.append(f"{data_dir / seq_id}: {type(e).__name__}: {e}")
    return done, skeletons


def _train_test_split(done: list[str], test_ids) -> tuple[list[str], list[str]]:
    """--test-ids when given (all must be done), else the stratified default; too few clips: all train."""
    if test_ids is not None:
        unknown = set(test_ids) - set(done)
        if unknown:
            raise UserError(f"--test-ids: {sorted(unknown)} are not among the processed clips")
        test = sorted(test_ids)
        train = [i for i in done if i not in test]
    else:
        train, test = default_split(done)
    if not train or not test:
        train, test = done, done[-1:]
        log.warning("too few clips for a split; using all clips for training and %s for validation", test)
    return train, test


def _augment(data_dir: Path, train: list[str], factors, skeletons: dict, failures: list[str], args,
             audio_config) -> list[str]:
    """The training clips plus their time-stretched copies (one per tempo factor) and mirrored copies of all."""
    if factors:
        stretched = write_tempo_copies(data_dir, train, factors, args.fps, audio_config, args.replace_existing)
        skeletons.update({i: skeletons[base_clip_id(i)] for i in stretched})
        failures += [m for m in stretched.values() if m]
        train = train + [i for i, m in stretched.items() if not m]
    if not getattr(args, "no_mirror", False):
        train = train + write_mirrors(data_dir, train, skeletons)
    return train


def _normalise(data_dir: Path, done: list[str], train: list[str], styles, clip_styles: dict):
    """Scalers fit on the training clips at their own tempo; every clip's normalised <id>.motion.npy /
    .audio.npy (and .style.npy when the data has styles), the scalers' json. Returns (motion, audio) scalers."""
    unstretched = [i for i in train if tempo_factor(i) == 1.0]  # the scalers describe real tempi
    m_scaler = StandardScaler.fit([np.load(data_dir / f"{i}.motion_raw.npy") for i in unstretched])
    a_scaler = StandardScaler.fit([np.load(data_dir / f"{i}.audio_raw.npy") for i in unstretched])
    for seq_id in sorted(set(done) | set(train)):
        if styles:
            style = clip_styles.get(base_clip_id(seq_id), "auto")
            n = np.load(data_dir / f"{seq_id}.motion_raw.npy", mmap_mode="r").shape[0]
            save_npy_atomic(data_dir / f"{seq_id}.style.npy", np.full((n, 1), styles.index(style), np.float32))
        save_npy_atomic(data_dir / f"{seq_id}.motion.npy", m_scaler.transform(np.load(data_dir / f"{seq_id}.motion_raw.npy")))
        save_npy_atomic(data_dir / f"{seq_id}.audio.npy", a_scaler.transform(np.load(data_dir / f"{seq_id}.audio_raw.npy")))
    save_json_atomic(data_dir / "motion_scaler.json", m_scaler.to_dict())
    save_json_atomic(data_dir / "audio_scaler.json", a_scaler.to_dict())
    return m_scaler, a_scaler


def _write_features_json(data_dir: Path, args, audio_config, skeletons: dict, train: list[str], test: list[str],
                         styles, clip_styles: dict, factors, m_scaler, a_scaler) -> None:
    """features.json: rate, feature layouts, the canonical skeleton of the training clips, scalers, split, styles."""
    from transflower.motion_features import MotionFeatures

    canonical = canonical_skeleton([skeletons[i] for i in train if i in skeletons])
    motion_names = MotionFeatures(canonical).names
    meta = {"fps": args.fps, "audio_config": audio_config.to_dict(), "audio_names": audio_config.names,
            "motion_names": list(motion_names), "skeleton": canonical.to_dict(),
            "motion_scaler": m_scaler.to_dict(), "audio_scaler": a_scaler.to_dict(),
            "train_ids": train, "test_ids": test, "styles": styles, "clip_styles": clip_styles,
            "tempo_factors": factors,
            "style_tempos": style_tempos(data_dir, train, clip_styles, args.fps, audio_config)}
    save_json_atomic(data_dir / "features.json", meta)


def style_tempos(data_dir: Path, train: list[str], clip_styles: dict, fps: float, audio_config) -> dict:
    """{style: BPM on [60, 120)}: each style's tempo over its training songs at their own tempo (the time base's
    reference: transflower.realtime.time_base.reference_tempo); a style whose songs disagree has none."""
    from transflower.realtime.time_base import reference_tempo

    by_style: dict[str, list] = {}
    for i in train:
        if i in clip_styles and base_clip_id(i) == i:  # the real songs, not their tempo or mirrored copies
            by_style.setdefault(clip_styles[i], []).append(np.load(data_dir / f"{i}.audio_raw.npy"))
    out = {}
    for style, tracks in sorted(by_style.items()):
        bpm, agreement = reference_tempo(tracks, fps, audio_config.to_dict())
        log.info("style %s: tempo %s (agreement %.2f over %d songs)", style, "none" if bpm is None else f"{bpm:.1f} BPM",
                 agreement, len(tracks))
        if bpm is not None:
            out[style] = round(bpm, 2)
    return out


MIRROR_SUFFIX = "~mirror"
TEMPO_TAG = "~t"
TEMPO_FACTORS = (0.8, 0.9, 1.12, 1.25)


def base_clip_id(seq_id: str) -> str:
    """The real clip an augmented copy was made from (`DANCE_W_1~t1.25~mirror` -> `DANCE_W_1`)."""
    return seq_id.split("~")[0]


def tempo_factor(seq_id: str) -> float:
    """The tempo factor of a time-stretched copy's id (1.0 for a clip at its own tempo)."""
    for part in seq_id.split("~")[1:]:
        if part.startswith("t"):
            try:
                return float(part[1:])
            except ValueError:
                pass
    return 1.0


def without_tempo_tag(seq_id: str) -> str:
    """The id a time-stretched copy was made from (`DANCE_W_1~t1.25~mirror` -> `DANCE_W_1~mirror`)."""
    return "~".join(p for i, p in enumerate(seq_id.split("~")) if i == 0 or tempo_factor("~" + p) == 1.0)


def tempo_copy_id(seq_id: str, factor: float) -> str:
    return f"{seq_id}{TEMPO_TAG}{factor:.2f}"


def check_tempo_factors(factors) -> list[float]:
    out = sorted({round(float(f), 2) for f in factors} - {1.0})
    bad = [f for f in out if not 0.5 <= f <= 2.0]
    if bad:
        raise UserError(f"--tempo-augment: factors {bad} are outside 0.5..2 (a factor f plays the music f times as fast)")
    return out


def stretch_motion(root: np.ndarray, rots: np.ndarray, fps: float, factor: float):
    """The dance performed `factor` times as fast, still sampled at fps: (T / factor) frames."""
    return resample_motion(root, rots, fps * factor, fps)


def write_tempo_copies(data_dir: Path, ids: list[str], factors: list[float], fps: float, audio_config,
                       replace: bool = False) -> dict[str, str]:
    """Time-stretched copies of clips: {copy id: "" (written) or an error line}. Music stretched with
    librosa's phase vocoder (pitch kept); motion resampled in time by the same factor."""
    import librosa
    from tqdm import tqdm

    from transflower.audio_features import compute_audio_features, load_audio_mono
    from transflower.bvh import read_bvh
    from transflower.motion_features import MotionFeatures

    out = {}
    for seq_id in tqdm(ids, desc="tempo copies", unit="clip"):
        todo = [f for f in factors if replace or not (data_dir / f"{tempo_copy_id(seq_id, f)}.audio_raw.npy").exists()]
        out.update({tempo_copy_id(seq_id, f): "" for f in factors if f not in todo})
        if not todo:
            continue
        try:
            motion = read_bvh(data_dir / f"{seq_id}.bvh")
            root, rots = resample_motion(motion.root_positions, motion.local_rotations, motion.fps, fps)
            y, sr = load_audio_mono(data_dir / f"{seq_id}.wav")
        except (DataError, UserError) as e:
            out.update({tempo_copy_id(seq_id, f): str(e) for f in todo})
            continue
        enc = MotionFeatures(motion.skeleton)
        for f in todo:
            cid = tempo_copy_id(seq_id, f)
            feats = enc.encode(*stretch_motion(root, rots, fps, f)).astype(np.float32)
            audio = compute_audio_features(librosa.effects.time_stretch(y, rate=f), sr, audio_config, num_frames=feats.shape[0])
            save_npy_atomic(data_dir / f"{cid}.motion_raw.npy", feats)
            save_npy_atomic(data_dir / f"{cid}.audio_raw.npy", audio)
            out[cid] = ""
    return out


def load_styles(data_dir: Path, ids: list[str]) -> tuple[list[str], dict]:
    """(["auto", style names...], {clip id: style}) from data_dir/styles.json, or ([], {}) without one."""
    path = data_dir / "styles.json"
    if not path.exists():
        return [], {}
    try:
        clip_styles = json.loads(path.read_text())
        if not isinstance(clip_styles, dict) or not all(isinstance(v, str) and v for v in clip_styles.values()):
            raise ValueError("not a mapping of clip id -> style name")
    except ValueError as e:
        raise UserError(f"{path}: expected JSON {{\"<clip id>\": \"<style name>\"}} ({e})") from None
    if "auto" in clip_styles.values():
        raise UserError(f"{path}: 'auto' is reserved (it means: no style label)")
    clip_styles = {i: clip_styles[i] for i in ids if i in clip_styles}
    return ["auto"] + sorted(set(clip_styles.values())), clip_styles


def write_mirrors(data_dir: Path, train: list[str], skeletons: dict) -> list[str]:
    """Left-right mirrored copies of the training clips (raw motion mirrored, audio copied): their ids."""
    from transflower.motion_features import MotionFeatures

    out = []
    for seq_id in train:
        try:
            mirrored = MotionFeatures(skeletons[seq_id]).mirror(np.load(data_dir / f"{seq_id}.motion_raw.npy"))
        except ValueError as e:
            log.warning("%s: no mirrored copy (%s)", seq_id, e)
            continue
        mid = seq_id + MIRROR_SUFFIX
        save_npy_atomic(data_dir / f"{mid}.motion_raw.npy", mirrored)
        save_npy_atomic(data_dir / f"{mid}.audio_raw.npy", np.load(data_dir / f"{seq_id}.audio_raw.npy"))
        out.append(mid)
    return out


def canonical_skeleton(skeletons):
    """The mean skeleton of the training clips: what generated dances are written with."""
    from transflower.skeleton import Skeleton

    ref = skeletons[0]
    for s in skeletons:
        if list(s.names) != list(ref.names):
            raise DataError("clips use different skeletons (joint names differ); one model needs one skeleton")
    return Skeleton(list(ref.names), ref.parents, np.mean([s.offsets for s in skeletons], axis=0), ref.rotating)
