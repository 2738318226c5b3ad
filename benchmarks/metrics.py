"""Dance quality metrics (numpy / scipy; librosa only for music beats), adapted to our 26-joint skeleton.

Inputs are joint positions (T, J, 3) in cm (Y up) from forward kinematics, at `fps` frames per second
(`positions_from_features` decodes unscaled motion features with the skeleton of features.json).

- Kinetic features (AIST++ / Bailando "FID_k"): per joint, the mean horizontal kinetic energy
  0.5 |v_xz|^2, the mean vertical kinetic energy 0.5 v_y^2 and the mean energy expenditure |a|
  (velocities in m/s, accelerations in m/s^2, finite differences at `fps`), on positions relative to
  the first frame's root (root-aligned): 3 x 26 = 78 dims (the field's 72 are 3 x 24 SMPL joints).
- Geometric features ("FID_g"): 32 relational features in the spirit of Mueller et al. 2005 (the field's
  32), adapted to our joints; each is the fraction of frames where a boolean relation holds (see
  GEOMETRIC_FEATURES for the list).
- Both are computed per segment (default 5 s) of each dance, then normalised by the ground truth's
  mean/std before the Frechet distance, as Bailando does.
- FPD / FMD (the Transflower paper's Frechet pose / movement distances): the Frechet distance between
  the distributions of per-frame root-relative joint positions (pose) and per-frame joint velocities
  (movement, cm/frame, root included), pooled over all frames.
- Diversity: mean pairwise Euclidean distance between (normalised) feature vectors: within a song
  (between samples of the same song) and across songs (between dances of different songs).
- Beat alignment score (Bailando): music beats from librosa's beat tracker at the motion frame rate;
  motion beats are the local minima of the Gaussian-smoothed mean joint speed (sigma 5 frames at 60 fps
  = 5/3 frames at 20 fps); score = mean over music beats of exp(-d^2 / (2 sigma^2)), d the distance to
  the nearest motion beat, sigma = 3 frames at 60 fps = 0.05 s (1 frame at 20 fps).
- Kinetics (issue 11), at the data's frame rate (20 fps here; no resampling): mean joint speed (m/s,
  all joints and frames, world positions as a viewer sees them), mean jerk (m/s^3,
  the norm of the third finite difference), each frame's fastest joint (for the spike rate: the share
  of frames beyond the ground truth's 99.9th percentile), and foot sliding as the issue defines it: the
  share of frames whose lowest foot point (toe or heel) is within 5 cm of the floor yet moves faster
  than 0.5 m/s horizontally.
- Foot skating: mean horizontal speed (cm/s) of the toes and heels over the frames where that joint is
  in contact with the ground (height within `contact_cm` of the sequence's floor, the 2nd percentile of
  foot heights), plus the fraction of contact frames sliding faster than `slide_cm_s`.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

# ---------------------------------------------------------------------------------------------
# Joint positions


def positions_from_features(features_unscaled: np.ndarray, skeleton: dict) -> np.ndarray:
    """(T, D) unscaled motion features -> (T, J, 3) joint positions in cm (forward kinematics)."""
    from transflower.bvh import forward_kinematics
    from transflower.motion_features import MotionFeatures
    from transflower.skeleton import Skeleton

    skel = Skeleton.from_dict(skeleton) if isinstance(skeleton, dict) else skeleton
    root, rots = MotionFeatures(skel).decode(np.asarray(features_unscaled, dtype=np.float64))
    pos, _ = forward_kinematics(skel, root, rots)
    return pos


class Joints:
    """Indices of the joints the relational features use, by name (our skeleton's names)."""

    def __init__(self, names: list[str]):
        ix = {n: i for i, n in enumerate(names)}
        g = lambda n: ix[n]  # noqa: E731
        self.hips, self.spine, self.chest, self.head = g("Hips"), g("Spine"), g("Chest"), g("Head")
        self.r = {k: g("Right" + v) for k, v in _SIDE.items()}
        self.l = {k: g("Left" + v) for k, v in _SIDE.items()}
        self.feet = [g("RightToe"), g("RightHeel"), g("LeftToe"), g("LeftHeel")]


_SIDE = {"hip": "UpLeg", "knee": "Leg", "ankle": "Foot", "toe": "Toe", "heel": "Heel",
         "shoulder": "Arm", "elbow": "ForeArm", "hand": "Hand"}


# ---------------------------------------------------------------------------------------------
# Kinetic features


def kinetic_features(pos: np.ndarray, fps: float) -> np.ndarray:
    """(T, J, 3) cm -> (3 J,) [horizontal KE per joint, vertical KE per joint, energy expenditure per joint]."""
    p = (np.asarray(pos, dtype=np.float64) - pos[:1, :1]) / 100.0  # root-aligned, metres
    if len(p) < 3:
        raise ValueError("kinetic_features: need at least 3 frames")
    v = np.diff(p, axis=0) * fps
    a = np.diff(v, axis=0) * fps
    ke_h = 0.5 * (v[..., 0] ** 2 + v[..., 2] ** 2).mean(0)
    ke_v = 0.5 * (v[..., 1] ** 2).mean(0)
    expend = np.linalg.norm(a, axis=-1).mean(0)
    return np.concatenate([ke_h, ke_v, expend])


# ---------------------------------------------------------------------------------------------
# Geometric (relational) features

_PER_SIDE = [
    "hand_above_head", "hand_above_shoulder", "hand_in_front_of_chest", "hand_behind_torso", "hand_far_sideways",
    "hand_near_head", "elbow_bent", "elbow_above_shoulder", "knee_bent", "foot_raised", "foot_in_front",
    "foot_behind", "hand_fast", "foot_fast",
]
# 14 per side (right, then left) + 4 whole-body = 32; the order of geometric_features' output
GEOMETRIC_FEATURES = ([f"right_{n}" for n in _PER_SIDE] + [f"left_{n}" for n in _PER_SIDE]
                      + ["hands_apart", "feet_apart", "torso_bent", "root_fast"])


def _angle(a, b, c):
    """Angle at b (rad) between b->a and b->c, per frame."""
    u, w = a - b, c - b
    cos = (u * w).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1) + 1e-9)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def geometric_features_per_frame(pos: np.ndarray, names: list[str], fps: float) -> np.ndarray:
    """(T, J, 3) -> (T, 32) booleans (as floats). Body-relative: 'front' is the torso's forward
    direction (the normal of the hips line and the up axis); thresholds scale with the body's size
    (hip width and humerus length of the first frame's pose), speeds with the leg length."""
    jt = Joints(names)
    p = np.asarray(pos, dtype=np.float64)
    T = len(p)
    up = np.array([0.0, 1.0, 0.0])
    across = p[:, jt.l["hip"]] - p[:, jt.r["hip"]]  # right -> left
    across[:, 1] = 0.0
    across /= np.linalg.norm(across, axis=-1, keepdims=True) + 1e-9
    fwd = np.cross(across, up)  # right-handed, Y up: left x up = forward for a +Z facing body
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True) + 1e-9
    hip_w = np.linalg.norm(p[0, jt.l["hip"]] - p[0, jt.r["hip"]]) + 1e-6
    arm = np.linalg.norm(p[0, jt.r["elbow"]] - p[0, jt.r["shoulder"]]) + 1e-6
    leg = np.linalg.norm(p[0, jt.r["hip"]] - p[0, jt.r["knee"]]) + np.linalg.norm(p[0, jt.r["knee"]] - p[0, jt.r["ankle"]]) + 1e-6
    vel = np.zeros_like(p)
    vel[1:] = (p[1:] - p[:-1]) * fps  # cm/s
    speed = np.linalg.norm(vel, axis=-1)
    floor = np.percentile(p[:, jt.feet, 1], 2)
    chest, head = p[:, jt.chest], p[:, jt.head]
    out = []
    for s in (jt.r, jt.l):
        hand, elbow, sh = p[:, s["hand"]], p[:, s["elbow"]], p[:, s["shoulder"]]
        rel = hand - chest
        out += [
            hand[:, 1] > head[:, 1],
            hand[:, 1] > sh[:, 1],
            (rel * fwd).sum(-1) > 0.5 * arm,
            (rel * fwd).sum(-1) < -0.3 * arm,
            np.abs((rel * across).sum(-1)) > 1.5 * arm,
            np.linalg.norm(hand - head, axis=-1) < arm,
            _angle(sh, elbow, hand) < np.deg2rad(110),
            elbow[:, 1] > sh[:, 1],
            _angle(p[:, s["hip"]], p[:, s["knee"]], p[:, s["ankle"]]) < np.deg2rad(140),
            p[:, s["ankle"]][:, 1] - floor > 0.25 * leg,
            ((p[:, s["ankle"]] - p[:, jt.hips]) * fwd).sum(-1) > 0.3 * leg,
            ((p[:, s["ankle"]] - p[:, jt.hips]) * fwd).sum(-1) < -0.3 * leg,
            speed[:, s["hand"]] > 1.5 * leg,
            speed[:, s["ankle"]] > 1.0 * leg,
        ]
    out += [
        np.linalg.norm(p[:, jt.r["hand"]] - p[:, jt.l["hand"]], axis=-1) > 3.0 * arm,
        np.linalg.norm((p[:, jt.r["ankle"]] - p[:, jt.l["ankle"]])[:, [0, 2]], axis=-1) > 2.0 * hip_w,
        _angle(head, p[:, jt.hips], p[:, jt.hips] + up) > np.deg2rad(30),
        np.linalg.norm(vel[:, jt.hips][:, [0, 2]], axis=-1) > 0.5 * leg,
    ]
    f = np.stack(out, axis=-1).astype(np.float64)
    assert f.shape == (T, 32)
    return f


def geometric_features(pos: np.ndarray, names: list[str], fps: float) -> np.ndarray:
    """(T, J, 3) -> (32,): the fraction of frames where each relation holds."""
    return geometric_features_per_frame(pos, names, fps).mean(0)


# ---------------------------------------------------------------------------------------------
# Distribution distances and diversity


def frechet_distance(x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to the rows of x (N, D) and y (M, D)."""
    x, y = np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(np.asarray(y, np.float64))
    mu1, mu2 = x.mean(0), y.mean(0)
    s1 = np.atleast_2d(np.cov(x, rowvar=False)) if len(x) > 1 else np.zeros((x.shape[1],) * 2)
    s2 = np.atleast_2d(np.cov(y, rowvar=False)) if len(y) > 1 else np.zeros((y.shape[1],) * 2)
    return frechet_from_stats(mu1, s1, mu2, s2, eps)


def frechet_from_stats(mu1, s1, mu2, s2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + tr(s1 + s2 - 2 (s1 s2)^(1/2)). The trace of the matrix square root is taken as
    tr((s1^(1/2) s2 s1^(1/2))^(1/2)) from symmetric eigendecompositions: the same value as the usual
    sqrtm(s1 s2), but stable for the singular covariances of few samples (scipy's sqrtm can fail there).
    Non-finite statistics (a model that produced NaN/inf) give inf."""
    if not all(np.isfinite(a).all() for a in (mu1, s1, mu2, s2)):
        return float("inf")
    diff = mu1 - mu2
    r1 = _psd_sqrt(s1)
    inner = r1 @ s2 @ r1
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum())
    d = float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(d, 0.0)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    a = np.atleast_2d(a)
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def normalise_by(reference: np.ndarray, *others: np.ndarray):
    """Scale every set by the reference set's mean/std (dims with ~0 spread keep unit scale)."""
    mu = reference.mean(0)
    sd = reference.std(0)
    sd = np.where(sd < 1e-8, 1.0, sd)
    return [(a - mu) / sd for a in (reference, *others)]


def mean_pairwise_distance(feats: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of rows (0 for fewer than 2 rows)."""
    f = np.asarray(feats, np.float64)
    if len(f) < 2:
        return 0.0
    d = np.linalg.norm(f[:, None] - f[None], axis=-1)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def diversity(feats_by_song: list[np.ndarray]) -> dict:
    """feats_by_song: one (samples, D) array per song (already normalised).
    within: mean over songs of the mean pairwise distance between that song's samples;
    across: mean distance between dances of different songs (all pairs of samples)."""
    within = [mean_pairwise_distance(f) for f in feats_by_song if len(f) > 1]
    across = []
    for i in range(len(feats_by_song)):
        for j in range(i + 1, len(feats_by_song)):
            a, b = feats_by_song[i], feats_by_song[j]
            across.append(np.linalg.norm(a[:, None] - b[None], axis=-1).mean())
    return {"within": float(np.mean(within)) if within else 0.0, "across": float(np.mean(across)) if across else 0.0}


# ---------------------------------------------------------------------------------------------
# Beats


def motion_beats(pos: np.ndarray, fps: float, sigma_frames: float | None = None) -> np.ndarray:
    """Frame indices of local minima of the Gaussian-smoothed mean joint speed."""
    p = np.asarray(pos, np.float64)
    speed = np.linalg.norm(np.diff(p, axis=0), axis=-1).mean(-1)  # (T-1,), speed between t and t+1
    speed = np.concatenate([speed[:1], speed])  # align to frames
    sigma = (5.0 * fps / 60.0) if sigma_frames is None else sigma_frames
    s = gaussian_filter1d(speed, sigma)
    i = np.arange(1, len(s) - 1)
    is_min = (s[i] < s[i - 1]) & (s[i] <= s[i + 1])
    return i[is_min]


def music_beats(wav_path, fps: float, num_frames: int | None = None, start_frame: int = 0) -> np.ndarray:
    """librosa beat tracking with one analysis frame per motion frame; returns frame indices."""
    import librosa

    from transflower.audio_features import load_audio_mono

    y, sr = load_audio_mono(wav_path)
    hop = int(round(sr / fps))
    _, beats = librosa.beat.beat_track(y=y, sr=sr, hop_length=hop)
    beats = np.asarray(beats, dtype=np.int64) - start_frame
    if num_frames is not None:
        beats = beats[(beats >= 0) & (beats < num_frames)]
    return beats


def beat_alignment_score(music_beat_frames, motion_beat_frames, fps: float, sigma_s: float = 0.05) -> float:
    """Mean over music beats of exp(-d^2 / (2 sigma^2)), d = time to the nearest motion beat."""
    mb = np.asarray(music_beat_frames, np.float64)
    kb = np.asarray(motion_beat_frames, np.float64)
    if len(mb) == 0:
        return float("nan")
    if len(kb) == 0:
        return 0.0
    d = np.abs(mb[:, None] - kb[None]).min(1) / fps
    return float(np.exp(-(d ** 2) / (2 * sigma_s ** 2)).mean())


# ---------------------------------------------------------------------------------------------
# Foot skating


def foot_skating(pos: np.ndarray, names: list[str], fps: float, contact_cm: float = 5.0, slide_cm_s: float = 10.0) -> dict:
    """Horizontal speed of toes/heels while in ground contact. -> {'speed_cm_s', 'sliding_fraction', 'contact_fraction'}."""
    jt = Joints(names)
    f = np.asarray(pos, np.float64)[:, jt.feet]  # (T, 4, 3)
    floor = np.percentile(f[..., 1], 2)
    v = np.linalg.norm(np.diff(f[..., [0, 2]], axis=0), axis=-1) * fps  # (T-1, 4) cm/s
    contact = (f[1:, :, 1] - floor < contact_cm) & (f[:-1, :, 1] - floor < contact_cm)
    n = int(contact.sum())
    if n == 0:
        return {"speed_cm_s": 0.0, "sliding_fraction": 0.0, "contact_fraction": 0.0}
    sp = v[contact]
    return {"speed_cm_s": float(sp.mean()), "sliding_fraction": float((sp > slide_cm_s).mean()),
            "contact_fraction": float(contact.mean())}


# ---------------------------------------------------------------------------------------------
# Kinetics: speed, jerk, spikes, sliding


def _lowest_foot_point(p: np.ndarray, names: list[str], contact_cm: float):
    """(T, J, 3) m -> the lowest foot point (toe or heel) of each frame t+1 at frames t and t+1, (T-1, 3)
    each, and whether it is within contact_cm of the floor (the feet's 2nd height percentile), (T-1,)."""
    feet = p[:, Joints(names).feet]  # (T, 4, 3)
    floor = np.percentile(feet[..., 1], 2)
    low = feet[1:, :, 1].argmin(1)
    t = np.arange(len(p) - 1)
    f0, f1 = feet[t, low], feet[t + 1, low]
    return f0, f1, f1[:, 1] - floor < contact_cm / 100.0


def contact_speeds(pos: np.ndarray, names: list[str], fps: float, contact_cm: float = 5.0) -> tuple[np.ndarray, float]:
    """(T, J, 3) cm -> ((N, 3), share): on the N frames whose lowest foot point is near the floor (as
    kinematics() counts contact), that point's horizontal speed in the world, the hips' horizontal speed and
    the point's horizontal speed about the hips (m/s); and the share of frames near the floor. A foot planted
    under a travelling body has world speed 0 while the other two are equal: they cancel; a foot that skates
    along with the body adds to it."""
    p = np.asarray(pos, np.float64) / 100.0
    if len(p) < 2:
        raise ValueError("contact_speeds: need at least 2 frames")
    f0, f1, near = _lowest_foot_point(p, names, contact_cm)
    hips = p[:, names.index("Hips")]
    world = np.linalg.norm((f1 - f0)[:, [0, 2]], axis=-1) * fps
    hip = np.linalg.norm(np.diff(hips, axis=0)[:, [0, 2]], axis=-1) * fps
    rel = np.linalg.norm(((f1 - hips[1:]) - (f0 - hips[:-1]))[:, [0, 2]], axis=-1) * fps
    return np.stack([world, hip, rel], 1)[near], float(near.mean())


def kinematics(pos: np.ndarray, names: list[str], fps: float, contact_cm: float = 5.0, slide_m_s: float = 0.5) -> dict:
    """(T, J, 3) cm -> {'speed', 'jerk', 'frame_max_speed' (T-1,), 'slide'} (m/s, m/s^3, m/s, fraction), and
    'speed' taken apart: 'travel' (the joints' centroid over the floor and up) and 'body' (the joints about
    that centroid), m/s: a dance can be too fast because it covers too much floor or because it flails.
    'hips' (m): the hips' mean height, 'rise' (m): their mean height over the last quarter of the frames less
    the first quarter's (a dancer floating off the floor rises; real dances hold their height)."""
    p = np.asarray(pos, np.float64) / 100.0
    if len(p) < 4:
        raise ValueError("kinematics: need at least 4 frames")
    v = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps  # (T-1, J)
    jerk = np.linalg.norm(np.diff(p, n=3, axis=0), axis=-1) * fps ** 3  # (T-3, J)
    f0, f1, near = _lowest_foot_point(p, names, contact_cm)
    h_speed = np.linalg.norm((f1 - f0)[:, [0, 2]], axis=-1) * fps
    centre = p.mean(1, keepdims=True)  # (T, 1, 3)
    travel = np.linalg.norm(np.diff(centre[:, 0], axis=0), axis=-1) * fps
    body = np.linalg.norm(np.diff(p - centre, axis=0), axis=-1) * fps
    hips = p[:, names.index("Hips"), 1]
    q = max(1, len(p) // 4)
    return {"hips": float(hips.mean()), "rise": float(hips[-q:].mean() - hips[:q].mean()),"speed": float(v.mean()), "jerk": float(jerk.mean()), "frame_max_speed": v.max(1),
            "slide": float((near & (h_speed > slide_m_s)).mean()), "travel": float(travel.mean()), "body": float(body.mean())}


# ---------------------------------------------------------------------------------------------
# Segments


def segments(n_frames: int, seg_frames: int) -> list[slice]:
    """Non-overlapping segments of seg_frames (the whole clip if shorter)."""
    if n_frames <= seg_frames:
        return [slice(0, n_frames)]
    return [slice(s, s + seg_frames) for s in range(0, n_frames - seg_frames + 1, seg_frames)]
