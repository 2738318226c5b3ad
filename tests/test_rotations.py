import numpy as np
import pytest
from scipy.spatial.transform import Rotation as R

from transflower import rotations as rot


def canon(q):
    return rot.quat_canonical(rot.quat_normalize(q))


@pytest.fixture
def qs():
    return R.random(500, random_state=3).as_quat()


def test_mul_apply_inverse_against_scipy(qs):
    a, b = qs[:250], qs[250:]
    np.testing.assert_allclose(canon(rot.quat_mul(a, b)), canon((R.from_quat(a) * R.from_quat(b)).as_quat()), atol=1e-12)
    v = np.random.default_rng(0).normal(size=(250, 3))
    np.testing.assert_allclose(rot.quat_apply(a, v), R.from_quat(a).apply(v), atol=1e-12)
    np.testing.assert_allclose(canon(rot.quat_mul(a, rot.quat_inv(a))), rot.identity_quat((250,)), atol=1e-12)
    np.testing.assert_allclose(rot.quat_inv(2 * a), rot.quat_conj(a) / 2, atol=1e-12)


def test_batch_shapes(qs):
    q = qs.reshape(5, 10, 10, 4)
    assert rot.matrix_from_quat(q).shape == (5, 10, 10, 3, 3)
    assert rot.expmap_from_quat(q).shape == (5, 10, 10, 3)
    assert rot.quat_apply(q, np.ones(3)).shape == (5, 10, 10, 3)
    np.testing.assert_allclose(canon(rot.quat_from_matrix(rot.matrix_from_quat(q))), canon(q), atol=1e-12)


def test_matrix_roundtrip_and_scipy(qs):
    m = rot.matrix_from_quat(qs)
    np.testing.assert_allclose(m, R.from_quat(qs).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(canon(rot.quat_from_matrix(m)), canon(qs), atol=1e-12)


def test_matrix_edge_cases():
    for rv in ([0, 0, 0], [np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi], np.pi * np.array([1, 1, 0]) / np.sqrt(2)):
        m = R.from_rotvec(rv).as_matrix()
        q = rot.quat_from_matrix(m)
        np.testing.assert_allclose(rot.matrix_from_quat(q), m, atol=1e-12)


def test_expmap(qs):
    e = rot.expmap_from_quat(qs)
    np.testing.assert_allclose(e, R.from_quat(canon(qs)).as_rotvec(), atol=1e-10)
    assert np.all(np.linalg.norm(e, axis=-1) <= np.pi + 1e-12)
    np.testing.assert_allclose(canon(rot.quat_from_expmap(e)), canon(qs), atol=1e-12)
    # identity and the small-angle limit
    np.testing.assert_array_equal(rot.quat_from_expmap(np.zeros(3)), [0, 0, 0, 1])
    np.testing.assert_allclose(rot.expmap_from_quat(np.array([0, 0, 0, 1.0])), 0, atol=0)
    tiny = np.array([1e-9, -2e-9, 3e-10])
    np.testing.assert_allclose(rot.expmap_from_quat(rot.quat_from_expmap(tiny)), tiny, rtol=1e-6, atol=1e-18)
    # 180 degrees: angle pi, either sign of the axis is the same rotation
    e180 = rot.expmap_from_quat(np.array([0, 1.0, 0, 0]))
    np.testing.assert_allclose(np.abs(e180), [0, np.pi, 0], atol=1e-12)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "XZY", "YXZ", "YZX", "ZYX"])
def test_euler(order, qs):
    e = rot.euler_from_quat(qs, order)
    np.testing.assert_allclose(e, R.from_quat(qs).as_euler(order), atol=1e-9)  # uppercase = intrinsic
    np.testing.assert_allclose(canon(rot.quat_from_euler(e, order)), canon(qs), atol=1e-12)
    np.testing.assert_allclose(canon(rot.quat_from_euler(e, order)), canon(R.from_euler(order, e).as_quat()), atol=1e-12)
    # gimbal lock still round-trips the rotation
    lock = np.array([[0.3, np.pi / 2, 0.0], [-1.0, -np.pi / 2, 0.4]])
    q = rot.quat_from_euler(lock, order)
    np.testing.assert_allclose(canon(rot.quat_from_euler(rot.euler_from_quat(q, order), order)), canon(q), atol=1e-9)


def test_euler_bvh_convention():
    # BVH "Zrotation Xrotation Yrotation": R = Rz @ Rx @ Ry
    a = np.radians([30.0, -20.0, 75.0])
    expect = R.from_euler("z", a[0]) * R.from_euler("x", a[1]) * R.from_euler("y", a[2])
    np.testing.assert_allclose(canon(rot.quat_from_euler(a, "ZXY")), canon(expect.as_quat()), atol=1e-12)
    with pytest.raises(ValueError):
        rot.quat_from_euler(a, "ZQY")


def test_sixd(qs):
    m = rot.matrix_from_quat(qs)
    np.testing.assert_allclose(rot.matrix_from_sixd(rot.sixd_from_matrix(m)), m, atol=1e-12)
    noisy = rot.sixd_from_matrix(m) + 0.01 * np.random.default_rng(1).normal(size=(500, 6))
    mm = rot.matrix_from_sixd(noisy)
    np.testing.assert_allclose(mm @ np.swapaxes(mm, -1, -2), np.broadcast_to(np.eye(3), mm.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(mm), 1, atol=1e-12)


def test_quat_between():
    rng = np.random.default_rng(2)
    u, v = rng.normal(size=(2, 200, 3))
    q = rot.quat_between(u, v)
    vn = v / np.linalg.norm(v, axis=-1, keepdims=True)
    np.testing.assert_allclose(rot.quat_apply(q, u / np.linalg.norm(u, axis=-1, keepdims=True)), vn, atol=1e-12)
    # shortest arc: the rotation angle equals the angle between the vectors
    ang = np.linalg.norm(rot.expmap_from_quat(q), axis=-1)
    cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    np.testing.assert_allclose(ang, np.arccos(np.clip(cos, -1, 1)), atol=1e-9)
    # identity and antiparallel (180 degrees)
    np.testing.assert_allclose(rot.quat_between([0, 0, 1.0], [0, 0, 2.0]), [0, 0, 0, 1], atol=1e-12)
    for d in ([1.0, 0, 0], [0, 1.0, 0], [0.3, -0.2, 0.9]):
        q = rot.quat_between(d, -np.array(d))
        np.testing.assert_allclose(rot.quat_apply(q, np.array(d)), -np.array(d), atol=1e-12)


def test_slerp(qs):
    a, b = qs[:250], qs[250:]
    np.testing.assert_allclose(canon(rot.quat_slerp(a, b, 0.0)), canon(a), atol=1e-12)
    np.testing.assert_allclose(canon(rot.quat_slerp(a, b, 1.0)), canon(b), atol=1e-12)
    mid = rot.quat_slerp(a, b, 0.5)
    # equal angular distance to both ends
    da = np.abs(np.sum(mid * a, -1))
    db = np.abs(np.sum(mid * b, -1))
    np.testing.assert_allclose(da, db, atol=1e-9)
    from scipy.spatial.transform import Slerp
    s = Slerp([0, 1], R.from_quat(np.stack([a[0], b[0]])))
    np.testing.assert_allclose(canon(rot.quat_slerp(a[0], b[0], 0.3)), canon(s(0.3).as_quat()), atol=1e-9)
    # nearly identical quaternions (linear branch) stay unit
    near = rot.quat_slerp(a, a + 1e-9, 0.5)
    np.testing.assert_allclose(np.linalg.norm(near, axis=-1), 1, atol=1e-12)


def test_yaw_helpers():
    yaw = np.linspace(-3, 3, 13)
    q = rot.quat_from_yaw(yaw)
    np.testing.assert_allclose(rot.yaw_from_quat(q), yaw, atol=1e-12)
    # yaw pi/2 turns +Z to +X
    np.testing.assert_allclose(rot.quat_apply(rot.quat_from_yaw(np.pi / 2), [0, 0, 1.0]), [1, 0, 0], atol=1e-12)
    tilt = R.from_rotvec([0.3, 0, 0]).as_quat()  # pitch only: forward stays in the YZ plane
    full = rot.quat_mul(rot.quat_from_yaw(0.7), tilt)
    y, rest = rot.split_yaw(full)
    np.testing.assert_allclose(y, 0.7, atol=1e-12)
    np.testing.assert_allclose(rot.yaw_from_quat(rest), 0, atol=1e-12)
    np.testing.assert_allclose(canon(rot.quat_mul(rot.quat_from_yaw(y), rest)), canon(full), atol=1e-12)
    # any rotation: the remainder has no heading and recomposes exactly
    q = R.random(100, random_state=9).as_quat()
    y, rest = rot.split_yaw(q)
    np.testing.assert_allclose(rot.yaw_from_quat(rest), 0, atol=1e-9)
    np.testing.assert_allclose(canon(rot.quat_mul(rot.quat_from_yaw(y), rest)), canon(q), atol=1e-12)
    np.testing.assert_allclose(rot.wrap_angle([np.pi + 0.1, -np.pi - 0.1, 0.2]), [-np.pi + 0.1, np.pi - 0.1, 0.2], atol=1e-12)


def test_continuous():
    q = R.random(50, random_state=4).as_quat()
    flipped = q * np.where(np.random.default_rng(0).random(50) < 0.5, -1, 1)[:, None]
    c = rot.quat_continuous(flipped)
    assert np.all(np.sum(c[1:] * c[:-1], -1) >= 0)
    np.testing.assert_allclose(np.abs(np.sum(c * q, -1)), 1, atol=1e-12)


def test_weighted_kabsch():
    rng = np.random.default_rng(5)
    q = R.random(100, random_state=6).as_quat()
    rest = rng.normal(size=(100, 4, 3))
    obs = rot.quat_apply(q[:, None], rest)
    np.testing.assert_allclose(canon(rot.weighted_kabsch(rest, obs)), canon(q), atol=1e-9)
    # weights: a heavily weighted exact vector wins over a corrupted light one
    obs2 = obs.copy()
    obs2[:, 3] += rng.normal(size=(100, 3))
    w = np.array([1.0, 1.0, 1.0, 1e-6])
    np.testing.assert_allclose(canon(rot.weighted_kabsch(rest, obs2, w)), canon(q), atol=1e-5)
    # matches scipy's align_vectors
    r_sc, _ = R.align_vectors(obs2[0], rest[0], weights=[1, 2, 3, 0.5])
    np.testing.assert_allclose(canon(rot.weighted_kabsch(rest[0], obs2[0], [1, 2, 3, 0.5])), canon(r_sc.as_quat()), atol=1e-9)
    # two vectors (a plane) still give a proper rotation, identity stays identity
    np.testing.assert_allclose(canon(rot.weighted_kabsch(rest[:, :2], obs[:, :2])), canon(q), atol=1e-9)
    np.testing.assert_allclose(rot.weighted_kabsch(rest[0], rest[0]), [0, 0, 0, 1], atol=1e-12)


def test_expmap_continuous_keeps_the_branch_through_180_degrees():
    # a joint turning steadily about one axis from 0 to 300 degrees: the standard exp-map wraps at 180
    angles = np.deg2rad(np.linspace(0, 300, 61))
    axis = np.array([0.3, 0.9, -0.3]) / np.linalg.norm([0.3, 0.9, -0.3])
    q = rot.quat_from_axis_angle(np.broadcast_to(axis, (61, 3)), angles)
    e = rot.expmap_from_quat(q)
    assert np.linalg.norm(np.diff(e, axis=0), axis=-1).max() > 3.0  # the wrap: a 2*pi jump
    c = rot.expmap_continuous(e)
    assert np.linalg.norm(np.diff(c, axis=0), axis=-1).max() < 0.2  # 5 degrees per frame, no jump
    assert np.allclose(c, axis * angles[:, None], atol=1e-6)  # it follows the turn past pi
    qc = rot.quat_from_expmap(c)
    assert np.allclose(np.abs((qc * q).sum(-1)), 1.0, atol=1e-9)  # the same rotations
