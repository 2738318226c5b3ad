import numpy as np
import pytest
from scipy.spatial.transform import Rotation as R

from transflower.bvh import forward_kinematics
from transflower.motion_features import MotionFeatures, MotionIntegrator
from transflower.rotations import quat_from_yaw, quat_mul, yaw_from_quat
from transflower.skeleton import JOINT_NAMES, PARENTS, ROTATING_JOINTS, Skeleton


def random_motion(T=120, seed=0):
    rng = np.random.default_rng(seed)
    J = len(JOINT_NAMES)
    sk = Skeleton(JOINT_NAMES, PARENTS, rng.normal(scale=10, size=(J, 3)))
    # smooth-ish random rotations: a random walk in exp-map space
    e = np.cumsum(rng.normal(scale=0.05, size=(T, J, 3)), axis=0)
    local = R.from_rotvec(e.reshape(-1, 3)).as_quat().reshape(T, J, 4)
    local[:, [j for j in range(J) if j not in ROTATING_JOINTS]] = [0, 0, 0, 1]
    # hips: a big turning heading (several full turns) times a tilt
    yaw = np.linspace(0, 5 * np.pi, T)
    local[:, 0] = quat_mul(quat_from_yaw(yaw), local[:, 0])
    root = np.cumsum(rng.normal(scale=2.0, size=(T, 3)), axis=0) + [30, 90, -40]
    return sk, root, local


def test_layout_and_names():
    sk, root, local = random_motion()
    mf = MotionFeatures(sk)
    f = mf.encode(root, local)
    assert f.dtype == np.float32 and f.shape == (len(root), 4 + 3 * len(ROTATING_JOINTS)) == (len(root), mf.dim)
    assert mf.names[:4] == ["root_dx", "root_dz", "root_dyaw", "root_y"] and mf.names[4] == "Hips_ex"
    np.testing.assert_array_equal(f[0, :3], 0)
    np.testing.assert_allclose(f[:, 3], root[:, 1], rtol=1e-6)
    assert np.all(np.abs(f[:, 2]) <= np.pi)
    assert np.all(np.linalg.norm(f[:, 4:].reshape(len(root), -1, 3), axis=-1) <= np.pi + 1e-5)
    # Hips feature has no heading left
    hips = R.from_rotvec(f[:, 4:7]).as_quat()
    np.testing.assert_allclose(yaw_from_quat(hips), 0, atol=1e-5)


def test_facing_frame_velocity():
    # walking forward while facing +X: dz is the speed, dx is 0
    sk, _, _ = random_motion(T=3)
    T = 5
    local = np.tile([0, 0, 0, 1.0], (T, sk.num_joints, 1))
    local[:, 0] = quat_from_yaw(np.full(T, np.pi / 2))
    root = np.zeros((T, 3))
    root[:, 0] = 3.0 * np.arange(T)
    f = MotionFeatures(sk).encode(root, local)
    np.testing.assert_allclose(f[1:, :3], [[0, 3, 0]] * (T - 1), atol=1e-6)


def _aligned_fk(sk, mf, root, local):
    f = mf.encode(root, local)
    yaw0 = yaw_from_quat(local[0, 0])
    r2, l2 = mf.decode(f, start_position=root[0], start_yaw=yaw0)
    return forward_kinematics(sk, root, local)[0], forward_kinematics(sk, r2, l2)[0], f, r2, l2


def test_roundtrip_random():
    sk, root, local = random_motion()
    mf = MotionFeatures(sk)
    g1, g2, *_ = _aligned_fk(sk, mf, root, local)
    assert np.abs(g1 - g2).max() < 1e-3  # float32 features


def test_decode_defaults_and_yaw_invariance():
    sk, root, local = random_motion(T=40)
    mf = MotionFeatures(sk)
    f = mf.encode(root, local)
    r2, l2 = mf.decode(f)
    np.testing.assert_allclose(r2[0], [0, root[0, 1], 0], atol=1e-4)
    np.testing.assert_allclose(yaw_from_quat(l2[0, 0]), 0, atol=1e-5)
    # the features do not depend on where the dance starts or which way it faces
    turn = quat_from_yaw(0.8)
    root_t = R.from_quat(turn).apply(root) + [100, 0, -50]
    local_t = local.copy()
    local_t[:, 0] = quat_mul(turn, local[:, 0])
    np.testing.assert_allclose(mf.encode(root_t, local_t), f, atol=2e-4)


def test_integrator_equals_decode():
    sk, root, local = random_motion(T=60, seed=3)
    mf = MotionFeatures(sk)
    f = mf.encode(root, local)
    r_dec, l_dec = mf.decode(f, start_position=[5, 0, 7], start_yaw=1.0)
    integ = MotionIntegrator(mf, start_position=[5, 0, 7], start_yaw=1.0)
    out_r, out_l = [], []
    ids = None
    for row in f:
        r, l = integ.step(row)
        ids = ids or (id(r), id(l))
        assert (id(r), id(l)) == ids  # preallocated outputs
        out_r.append(r.copy())
        out_l.append(l.copy())
    np.testing.assert_array_equal(np.array(out_r), r_dec)
    np.testing.assert_array_equal(np.array(out_l), l_dec)


def test_bad_shapes():
    sk, root, local = random_motion(T=5)
    mf = MotionFeatures(sk)
    with pytest.raises(ValueError):
        mf.encode(root[:, :2], local)
    with pytest.raises(ValueError):
        mf.decode(np.zeros((5, mf.dim + 1)))


@pytest.mark.needs_data
def test_roundtrip_real_clip(shared_data):
    from transflower.data_import import fit_clip, load_clip, resample

    markers, _ = load_clip(shared_data / "tang2018" / "DANCE_C_2")
    fit = fit_clip(markers[:600])
    root, local = resample(fit.root_positions, fit.local_rotations, 25.0, 20.0)
    mf = MotionFeatures(fit.skeleton)
    g1, g2, f, _, _ = _aligned_fk(fit.skeleton, mf, root, local)
    assert np.isfinite(f).all()
    err = np.linalg.norm(g1 - g2, axis=-1)
    assert err.max() < 0.05, err.max()  # cm, float32 features over 480 frames
    # plausible magnitudes: cha-cha root speed well under 1 m/s at 20 fps
    assert np.abs(f[:, :2]).max() < 10 and np.abs(f[:, 2]).max() < 1.0


def test_mirror_swaps_sides_and_reflects():
    """A mirrored dance is the original reflected across the body's sagittal plane (x -> -x), sides swapped."""
    skel = _symmetric_skeleton()
    _, root, local = random_motion(T=40, seed=5)
    mf = MotionFeatures(skel)
    f = mf.encode(root, local)
    m = mf.mirror(f)
    assert np.allclose(mf.mirror(m), f, atol=1e-6)  # an involution
    p, _ = forward_kinematics(skel, *mf.decode(f))
    pm, _ = forward_kinematics(skel, *mf.decode(m))
    names = list(skel.names)
    checked = 0
    for j, n in enumerate(names):
        other = n.replace("Left", "#").replace("Right", "Left").replace("#", "Right")
        if other not in names:  # marker joints without a partner
            continue
        expect = p[:, names.index(other)].copy()
        expect[:, 0] *= -1
        assert np.allclose(pm[:, j], expect, atol=1e-3), n
        checked += 1
    assert checked >= 16


def _symmetric_skeleton():
    """The project's joint table with every Left joint's offset the mirror of its Right partner's."""
    rng = np.random.default_rng(0)
    names = list(JOINT_NAMES)
    offsets = rng.normal(size=(len(names), 3)) * 5 + [0, 8, 0]
    offsets[0] = 0.0
    for j, n in enumerate(names):
        if n.startswith("Left") and n.replace("Left", "Right") in names:
            offsets[j] = offsets[names.index(n.replace("Left", "Right"))] * [-1, 1, 1]
        elif "Left" not in n and "Right" not in n and j > 0:
            offsets[j, 0] = 0.0  # central joints on the mid-plane
    return Skeleton(names, PARENTS, offsets)
