import numpy as np

from transflower.bvh import forward_kinematics
from transflower.floor import FloorClamp
from transflower.rotations import quat_from_expmap
from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton


def _skeleton():
    rng = np.random.default_rng(0)
    off = np.zeros((len(JOINT_NAMES), 3))
    off[1:] = rng.normal(size=(len(JOINT_NAMES) - 1, 3)) * 4 + np.array([0, -12, 0])
    return Skeleton(JOINT_NAMES, PARENTS, off)


def test_lowest_foot_matches_full_fk_and_lift_puts_it_on_the_floor():
    sk = _skeleton()
    rng = np.random.default_rng(1)
    rots = quat_from_expmap(rng.normal(size=(50, len(JOINT_NAMES), 3)) * 0.4)
    root = np.stack([rng.normal(size=50), rng.uniform(0, 80, 50), rng.normal(size=50)], axis=1)
    clamp = FloorClamp(sk)
    pos, _ = forward_kinematics(sk, root, rots)
    feet = [JOINT_NAMES.index(n) for n in ("RightToe", "RightHeel", "LeftToe", "LeftHeel")]
    np.testing.assert_allclose(clamp.lowest_foot(root, rots), pos[:, feet, 1].min(1), atol=1e-9)
    below = pos[:, feet, 1].min(1) < 0
    assert below.any() and (~below).any()
    lifted = root.copy()
    clamp.apply(lifted, rots)
    after = forward_kinematics(sk, lifted, rots)[0][:, feet, 1].min(1)
    np.testing.assert_allclose(after[below], 0.0, atol=1e-9)           # sunk feet now touch the floor
    np.testing.assert_array_equal(lifted[~below], root[~below])         # airborne frames are untouched
    assert clamp.lifts == below.sum()
