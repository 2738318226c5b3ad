"""The compiled per-frame kernels (transflower.kernels) equal the vectorised numpy definitions."""
from __future__ import annotations

import numpy as np

from transflower import kernels
from transflower import rotations as R


def unit(rng, shape):
    q = rng.normal(size=shape + (4,))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def test_scalar_forms_equal_the_vectorised_ones():
    rng = np.random.default_rng(0)
    a, b = unit(rng, (50,)), unit(rng, (50,))
    v, e = rng.normal(size=(50, 3)), rng.normal(size=(50, 3)) * 2
    e[0] = 0.0
    e[1] = 1e-8
    for i in range(50):
        np.testing.assert_allclose(R.quat_mul_scalar(*a[i], *b[i]), R.quat_mul(a[i], b[i]), atol=1e-12)
        np.testing.assert_allclose(R.quat_apply_scalar(*a[i], *v[i]), R.quat_apply(a[i], v[i]), atol=1e-12)
        np.testing.assert_allclose(R.quat_from_expmap_scalar(*e[i]), R.quat_from_expmap(e[i]), atol=1e-12)
        assert abs(R.wrap_angle_scalar(7 * e[i, 0]) - R.wrap_angle(7 * e[i, 0])) < 1e-12


def test_slerp_kernel_matches_quat_slerp():
    rng = np.random.default_rng(1)
    q0, q1 = unit(rng, (23,)), unit(rng, (23,))
    q1[0] = q0[0]  # identical rows take the nlerp branch
    q1[1] = -q0[1] * 0.9999 + 1e-3  # nearly opposite signs: the shorter arc
    q1[1] /= np.linalg.norm(q1[1])
    out, ref_out = np.zeros_like(q0), np.zeros_like(q0)
    for t in (0.0, 0.3, 1.0):
        ref = R.quat_slerp(q0, q1, t)
        kernels.slerp_into(out, q0, q1, t)
        np.testing.assert_allclose(np.abs(np.sum(out * ref, axis=1)), 1.0, atol=1e-9)
        R.quat_slerp_into(ref_out, q0, q1, t)
        np.testing.assert_allclose(ref_out, out, atol=1e-12)


def test_crowd_integrator_equals_motion_integrator():
    from transflower.motion_features import MotionFeatures, MotionIntegrator
    from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton

    sk = Skeleton(JOINT_NAMES, PARENTS, np.ones((len(JOINT_NAMES), 3)))
    mf = MotionFeatures(sk)
    rng = np.random.default_rng(2)
    B, T = 3, 40
    feats = (rng.normal(size=(T, B, mf.dim)) * 0.5).astype(np.float32)
    feats[..., 0:2] *= 10  # cm per frame
    refs = [MotionIntegrator(mf) for _ in range(B)]
    pos, yaw = np.zeros((B, 3)), np.zeros(B)
    root, rots = np.zeros((B, 3)), np.zeros((B, sk.num_joints, 4))
    rots[..., 3] = 1.0
    rotating = np.asarray(mf.rotating, np.int64)
    for t in range(T):
        kernels.integrate(feats[t], pos, yaw, rotating, 1e9, root, rots)
        for b in range(B):
            r_root, r_rots = refs[b].step(feats[t, b])
            np.testing.assert_allclose(root[b], r_root, atol=1e-9)
            np.testing.assert_allclose(rots[b], r_rots, atol=1e-9)
    kernels.integrate(feats[0] * 0 + np.float32(500), pos, yaw, rotating, 150.0, root, rots)  # far off stage
    np.testing.assert_allclose(np.hypot(root[:, 0], root[:, 2]), 150.0)
