"""benchmarks/metrics.py on synthetic data where the answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from transflower.benchmarks import metrics as M
from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton

FPS = 20.0


def rest_positions(T: int) -> np.ndarray:
    """(T, J, 3) a standing T-pose-ish body (rest offsets of a plausible skeleton), feet on y = 0."""
    rng = np.random.default_rng(0)
    offsets = np.zeros((len(JOINT_NAMES), 3))
    offsets[1:] = rng.normal(size=(len(JOINT_NAMES) - 1, 3)) * 5 + np.array([0, 10, 0])
    pos = np.zeros((len(JOINT_NAMES), 3))
    for j, p in enumerate(PARENTS):
        if p >= 0:
            pos[j] = pos[p] + offsets[j]
    return np.repeat(pos[None], T, axis=0)


def test_frechet_identical_sets_is_zero():
    x = np.random.default_rng(1).normal(size=(500, 6))
    assert M.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_shifted_gaussians_known_value():
    x = np.random.default_rng(2).normal(size=(2000, 4))
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    # same covariance: the distance is exactly |shift|^2
    assert M.frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    # N(0, 1) vs N(1, 4) in 1-D: (0-1)^2 + 1 + 4 - 2*sqrt(1*4) = 2
    assert M.frechet_from_stats(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1)) == pytest.approx(2.0)


def test_diversity_zero_for_identical_samples_and_positive_otherwise():
    f = np.tile(np.arange(5.0), (4, 1))
    d = M.diversity([f, f])
    assert d["within"] == pytest.approx(0.0) and d["across"] == pytest.approx(0.0)
    g = np.random.default_rng(3).normal(size=(4, 5))
    assert M.diversity([g, g + 10])["within"] > 0 and M.diversity([g, g + 10])["across"] > 10
    assert M.mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)


def test_beat_alignment_high_on_beat_low_off_beat():
    T, period = 400, 10  # a beat every 0.5 s at 20 fps
    t = np.arange(T)
    speed = 1.0 - np.cos(2 * np.pi * t / period)  # minima (stops) exactly on multiples of the period
    pos = rest_positions(T)
    pos[..., 0] += np.cumsum(speed)[:, None]
    pos[:, 16:, 1] += 10 * np.sin(2 * np.pi * t / (2 * period))[:, None]  # arms swing: speed varies per joint
    kb = M.motion_beats(pos, FPS)
    on = np.arange(period, T - period, period)
    off = on + period // 2
    assert M.beat_alignment_score(on, kb, FPS) > 0.8
    assert M.beat_alignment_score(off, kb, FPS) < 0.2
    assert M.beat_alignment_score(on, on, FPS) == pytest.approx(1.0)
    assert M.beat_alignment_score(on, [], FPS) == 0.0


def test_foot_skating_sliding_vs_planted():
    names = list(JOINT_NAMES)
    planted = rest_positions(60)
    planted[..., 1] -= planted[0, :, 1].min()  # lowest joint on the floor
    res = M.foot_skating(planted, names, FPS)
    assert res["speed_cm_s"] == pytest.approx(0.0) and res["contact_fraction"] > 0
    sliding = planted.copy()
    sliding[..., 0] += np.arange(60)[:, None] * 1.0  # 1 cm/frame = 20 cm/s, feet still on the floor
    res = M.foot_skating(sliding, names, FPS)
    assert res["speed_cm_s"] == pytest.approx(20.0, rel=1e-6) and res["sliding_fraction"] == 1.0


def test_kinetic_and_geometric_features():
    pos = rest_positions(50)
    k = M.kinetic_features(pos, FPS)
    assert k.shape == (3 * len(JOINT_NAMES),) and np.allclose(k, 0.0)
    moving = pos.copy()
    moving[..., 1] += 100 * np.arange(50)[:, None] / FPS  # rises at 1 m/s: vertical KE 0.5, horizontal 0
    k = M.kinetic_features(moving, FPS)
    J = len(JOINT_NAMES)
    assert np.allclose(k[:J], 0.0) and np.allclose(k[J:2 * J], 0.5) and np.allclose(k[2 * J:], 0.0, atol=1e-9)
    g = M.geometric_features(moving, list(JOINT_NAMES), FPS)
    assert g.shape == (32,) == (len(M.GEOMETRIC_FEATURES),) and ((g >= 0) & (g <= 1)).all()


def test_positions_from_features_shapes():
    from transflower.motion_features import MotionFeatures

    skel = Skeleton(JOINT_NAMES, PARENTS, rest_positions(1)[0] * 0 + np.array([0, 10, 0]))
    f = np.zeros((5, MotionFeatures(skel).dim), np.float32)
    f[:, 3] = 95.0
    pos = M.positions_from_features(f, skel.to_dict())
    assert pos.shape == (5, len(JOINT_NAMES), 3) and np.allclose(pos[:, 0, 1], 95.0)


def test_music_beats_on_a_click_track(tmp_path):
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    sr = 24000
    y = np.random.default_rng(0).normal(size=sr * 8).astype(np.float32) * 0.01  # pure silence gives no tempo
    for c in range(0, len(y), sr // 2):  # 120 bpm clicks
        y[c: c + 200] = np.hanning(200) * 0.8
    sf.write(tmp_path / "clicks.wav", y, sr)
    beats = M.music_beats(tmp_path / "clicks.wav", FPS)
    assert len(beats) >= 10
    # every detected beat within one frame of a click (clicks every 10 frames)
    assert (np.minimum(beats % 10, 10 - beats % 10) <= 1).all()


def test_kinematics_takes_speed_apart_into_travel_and_body():
    """A rigid body gliding at 1 m/s travels at 1 m/s and has no body speed; the same body spinning in place
    has body speed and (its centroid fixed) no travel."""
    rng = np.random.default_rng(0)
    J, T, fps = len(JOINT_NAMES), 40, 20.0
    rest = rng.normal(0, 30, (J, 3))  # cm
    rest -= rest.mean(0)
    glide = rest[None] + np.arange(T)[:, None, None] * np.array([100.0 / fps, 0, 0])  # 1 m/s along x
    k = M.kinematics(glide, list(JOINT_NAMES), fps)
    assert k["travel"] == pytest.approx(1.0) and k["body"] == pytest.approx(0.0, abs=1e-9)
    assert k["speed"] == pytest.approx(1.0)
    a = np.arange(T)[:, None] * 0.1
    c, s = np.cos(a), np.sin(a)  # turning about the vertical through the centroid
    spin = np.stack([c * rest[None, :, 0] + s * rest[None, :, 2], np.broadcast_to(rest[None, :, 1], (T, J)),
                     -s * rest[None, :, 0] + c * rest[None, :, 2]], -1)
    k = M.kinematics(spin, list(JOINT_NAMES), fps)
    assert k["travel"] == pytest.approx(0.0, abs=1e-9) and k["body"] > 0.1 and k["body"] == pytest.approx(k["speed"])


def test_contact_speeds_tell_a_planted_foot_from_one_skating_with_the_body():
    """Hips gliding at 1 m/s over feet fixed on the floor: the feet's world speed is 0, the hips' 1 and the
    feet's about the hips 1 (they cancel). The whole body gliding rigidly: the feet skate at 1 m/s, about
    the hips 0."""
    names = list(JOINT_NAMES)
    J, T, fps = len(names), 30, 20.0
    rng = np.random.default_rng(1)
    rest = rng.normal(0, 20, (J, 3)) + np.array([0, 100.0, 0])  # cm, well above the floor
    feet = M.Joints(names).feet
    rest[feet, 1] = 0.0  # every foot point on the floor
    step = np.arange(T)[:, None, None] * np.array([100.0 / fps, 0, 0])  # 1 m/s along x
    rigid = rest[None] + step
    planted = rigid.copy()
    planted[:, feet] = rest[None, feet]
    c, share = M.contact_speeds(planted, names, fps)
    assert share == 1.0 and c.shape == (T - 1, 3)
    assert np.allclose(c[:, 0], 0.0) and np.allclose(c[:, 1], 1.0) and np.allclose(c[:, 2], 1.0)
    c, share = M.contact_speeds(rigid, names, fps)
    assert np.allclose(c[:, 0], 1.0) and np.allclose(c[:, 1], 1.0) and np.allclose(c[:, 2], 0.0)
    lifted = rigid.copy()
    lifted[T // 2:, feet, 1] += 30.0  # feet off the floor for the second half: those frames are not contact
    assert M.contact_speeds(lifted, names, fps)[1] == pytest.approx((T // 2 - 1) / (T - 1))
    with pytest.raises(ValueError, match="contact_speeds: need at least 2 frames"):
        M.contact_speeds(rigid[:1], names, fps)
