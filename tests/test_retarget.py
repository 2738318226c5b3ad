"""transflower.bridge.retarget: our right-handed cm frame -> Unity's left-handed humanoid, checked by FK in both frames."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from transflower.bridge.retarget import (JOINT_TO_UNITY, UNITY_BONES, UNITY_PARENTS, HumanoidRetarget, forward_kinematics,
                             from_unity_position, from_unity_quaternion, quat_mul, quat_rotate,
                             synthetic_tpose_skeleton, to_unity_position, to_unity_quaternion)
from transflower.skeleton import Pose

SK = synthetic_tpose_skeleton()
J = SK.num_joints
ROOT = np.array([3.0, 93.0, -4.0])


def identity(n):
    q = np.zeros((n, 4))
    q[:, 3] = 1.0
    return q


def our_fk(rot):
    return forward_kinematics(SK.parents, SK.offsets, rot, ROOT)


def unity_index(joint):
    return UNITY_BONES.index(JOINT_TO_UNITY[joint])


def test_unity_hierarchy_is_the_standard_22_bones():
    assert len(UNITY_BONES) == 22 and UNITY_BONES[0] == "Hips"
    assert all(p < i for i, p in enumerate(UNITY_PARENTS))
    assert UNITY_BONES[UNITY_PARENTS[UNITY_BONES.index("RightUpperArm")]] == "RightShoulder"


def test_identity_pose_is_unity_tpose():
    r = HumanoidRetarget(SK)
    root_pos, root_rot, bone_rots = r.retarget(Pose(0, 0.0, ROOT, identity(J)))
    np.testing.assert_allclose(bone_rots, identity(22))
    np.testing.assert_allclose(root_rot, [0, 0, 0, 1])
    # the root stands on the floor under the hips; the Hips bone carries the hip height (as VirtualMotionCapture sends)
    np.testing.assert_allclose(root_pos, [-0.03, 0.0, -0.04], atol=1e-12)
    np.testing.assert_allclose(r.bone_positions[0], [0, 0.93, 0])
    pos_u, _ = r.unity_fk(root_pos, bone_rots)
    np.testing.assert_allclose(pos_u[0], [-0.03, 0.93, -0.04])
    # Unity's T-pose: the character's right arm along +X, left along -X, hands at shoulder height
    rh, lh = pos_u[UNITY_BONES.index("RightHand")], pos_u[UNITY_BONES.index("LeftHand")]
    rs = pos_u[UNITY_BONES.index("RightUpperArm")]
    assert rh[0] > rs[0] > root_pos[0] > lh[0]
    assert abs(rh[1] - rs[1]) < 1e-9
    head, toes = pos_u[UNITY_BONES.index("Head")], pos_u[UNITY_BONES.index("RightToes")]
    assert head[1] > pos_u[0][1] > toes[1] and toes[2] > root_pos[2]  # faces +Z


def test_preallocated_outputs_are_reused():
    r = HumanoidRetarget(SK)
    a = r.retarget(Pose(0, 0.0, ROOT, identity(J)))
    b = r.retarget(Pose(1, 0.1, ROOT * 2, identity(J)))
    assert all(x is y for x, y in zip(a, b))
    with pytest.raises(ValueError):
        r.retarget(Pose(0, 0.0, ROOT, identity(J - 1)))


def test_right_arm_lowered_to_the_side():
    # ours: the right arm points along -X; +90 deg about +Z takes -X to -Y (arm down along the body)
    q = identity(J)
    q[SK.names.index("RightArm")] = Rotation.from_euler("z", 90, degrees=True).as_quat()
    pos_ours, _ = our_fk(q)
    hand = SK.names.index("RightHand")
    shoulder = SK.names.index("RightArm")
    np.testing.assert_allclose(pos_ours[hand] - pos_ours[shoulder], [0, -(28 + 25), 0], atol=1e-9)

    r = HumanoidRetarget(SK)
    root_pos, root_rot, bone_rots = r.retarget(Pose(0, 0.0, ROOT, q))
    b = UNITY_BONES.index("RightUpperArm")
    # in Unity (right at +X, left-handed) the same motion is -90 deg about Z: (0, 0, -sin45, cos45)
    np.testing.assert_allclose(bone_rots[b], [0, 0, -np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)
    assert np.allclose(np.delete(bone_rots, b, axis=0), identity(21))
    pos_u, _ = r.unity_fk(root_pos, bone_rots)
    hu = pos_u[UNITY_BONES.index("RightHand")]
    np.testing.assert_allclose(hu, to_unity_position(pos_ours[hand]), atol=1e-12)
    np.testing.assert_allclose(hu - pos_u[UNITY_BONES.index("RightUpperArm")], [0, -0.53, 0], atol=1e-12)
    assert hu[0] > root_pos[0]  # still the character's right side, now +X


def test_random_poses_fk_agrees_in_both_frames():
    rng = np.random.default_rng(0)
    r = HumanoidRetarget(SK)
    for _ in range(20):
        q = Rotation.random(J, random_state=rng.integers(1 << 31)).as_quat()
        q[~np.isin(np.arange(J), SK.rotating)] = [0, 0, 0, 1]
        root = rng.normal(size=3) * 50
        pos_ours, rot_ours = forward_kinematics(SK.parents, SK.offsets, q, root)
        root_pos, root_rot, bone_rots = r.retarget(Pose(0, 0.0, root, q))
        pos_u, rot_u = r.unity_fk(root_pos, bone_rots)
        for joint, bone in JOINT_TO_UNITY.items():
            j, b = SK.names.index(joint), UNITY_BONES.index(bone)
            np.testing.assert_allclose(pos_u[b], to_unity_position(pos_ours[j]), atol=1e-9)
            np.testing.assert_allclose(from_unity_quaternion(rot_u[b]), rot_ours[j], atol=1e-9)
        np.testing.assert_allclose(root_rot, rot_u[0], atol=1e-12)  # Root/Pos rotation = Hips global


def test_handedness_round_trip_and_homomorphism():
    rng = np.random.default_rng(1)
    q1 = Rotation.random(50, random_state=1).as_quat()
    q2 = Rotation.random(50, random_state=2).as_quat()
    v = rng.normal(size=(50, 3)) * 30
    np.testing.assert_allclose(from_unity_quaternion(to_unity_quaternion(q1)), q1)
    np.testing.assert_allclose(from_unity_position(to_unity_position(v)), v)
    np.testing.assert_allclose(to_unity_quaternion(quat_mul(q1, q2)), quat_mul(to_unity_quaternion(q1), to_unity_quaternion(q2)), atol=1e-12)
    np.testing.assert_allclose(to_unity_position(quat_rotate(q1, v)), quat_rotate(to_unity_quaternion(q1), to_unity_position(v)), atol=1e-12)
    # the mirror is a reflection: it flips handedness (det -1) and conjugates matrices
    M = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(Rotation.from_quat(to_unity_quaternion(q1)).as_matrix(), M @ Rotation.from_quat(q1).as_matrix() @ M, atol=1e-12)
    # our helpers agree with scipy
    np.testing.assert_allclose(quat_rotate(q1, v), Rotation.from_quat(q1).apply(v), atol=1e-9)
    np.testing.assert_allclose(Rotation.from_quat(quat_mul(q1, q2)).as_matrix(), (Rotation.from_quat(q1) * Rotation.from_quat(q2)).as_matrix(), atol=1e-12)


def test_rest_positions_are_metres_in_unity_frame():
    r = HumanoidRetarget(SK)
    bp = dict(zip(UNITY_BONES, r.bone_positions))
    np.testing.assert_allclose(bp["RightShoulder"] + bp["RightUpperArm"], [0.18, 0.20, 0.0])
    np.testing.assert_allclose(bp["Neck"] + bp["Head"], [0, 0.28, 0])
    np.testing.assert_allclose(bp["UpperChest"], 0)
    np.testing.assert_allclose(bp["LeftUpperLeg"], [-0.09, -0.05, 0])
