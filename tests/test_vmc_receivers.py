"""The stream as receivers apply it: an avatar of other proportions, fed over real UDP, keeps its feet on the
floor and its own proportions; bone maps for other skeletons (CMU, Mixamo naming); the eased stop.

Receivers emulated (how each applies a VMC frame; see docs/receivers.md):
  rotations_root   EVMC4U with Bone Position Synchronize off: the model's root takes Root/Pos, every bone its
                   local rotation; bone positions (the Hips' included) stay the avatar's own.
  scaled_root      our Unity package and the browser preview: as above, with the root's motion scaled by
                   avatar hip height / streamed hip height (the Hips' Bone/Pos), as Unity's humanoid does.
  all_positions    EVMC4U's defaults: Root/Pos, and every bone's local position and rotation as received.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from transflower.bridge.retarget import (UNITY_BONES, UNITY_PARENTS, HumanoidRetarget, forward_kinematics, from_unity_quaternion,
                             load_bone_map, synthetic_tpose_skeleton, to_unity_position)
from transflower.bridge.vmc import VmcReceiver, VmcSender
from transflower.errors import UserError
from transflower.floor import FloorClamp
from transflower.skeleton import Pose, Skeleton

SK = synthetic_tpose_skeleton()
J = SK.num_joints
B = len(UNITY_BONES)
FEET = [UNITY_BONES.index(n) for n in ("LeftToes", "RightToes", "LeftFoot", "RightFoot")]
LEG = {"LeftUpperLeg", "LeftLowerLeg", "LeftFoot", "LeftToes", "RightUpperLeg", "RightLowerLeg", "RightFoot", "RightToes"}
ARM = {"LeftLowerArm", "LeftHand", "RightLowerArm", "RightHand", "LeftUpperArm", "RightUpperArm"}


def avatar_rest() -> np.ndarray:
    """Local rest positions (B, 3), Unity frame, of an avatar unlike our dancer: legs x0.8, arms x1.25,
    torso x0.9; its Hips local position is its own hip height (toes on the floor in the T-pose)."""
    ours = HumanoidRetarget(SK).bone_positions.copy()
    scale = np.array([0.8 if n in LEG else 1.25 if n in ARM else 0.9 for n in UNITY_BONES])
    rest = ours * scale[:, None]
    rest[0] = 0.0
    pos, _ = forward_kinematics(UNITY_PARENTS, rest, np.tile([0, 0, 0, 1.0], (B, 1)), np.zeros(3))
    rest[0] = (0.0, -pos[FEET, 1].min(), 0.0)
    return rest


def apply(frame, avatar: np.ndarray, receiver: str) -> np.ndarray:
    """Global bone positions (B, 3) of the avatar after a receiver applied ``frame`` (a VmcFrame)."""
    local_pos = avatar.copy()
    rots = np.tile([0.0, 0.0, 0.0, 1.0], (B, 1))
    for b, name in enumerate(UNITY_BONES):
        if name in frame.bones:
            p, q = frame.bones[name]
            rots[b] = q
            if receiver == "all_positions":
                local_pos[b] = p
    root = frame.root_position.copy()
    if receiver == "scaled_root":
        root *= avatar[0, 1] / frame.bones["Hips"][0][1]
    # the model root's rotation (Root/Pos) turns the whole avatar: compose it above the Hips
    rots[0] = Rotation.from_quat(frame.root_rotation) .__mul__(Rotation.from_quat(rots[0])).as_quat()
    hips = root + Rotation.from_quat(frame.root_rotation).apply(local_pos[0])
    pos, _ = forward_kinematics(UNITY_PARENTS, local_pos, rots, hips)
    return pos


def crouch_pose(knee_deg: float, yaw_deg: float = 30.0) -> Pose:
    """Knees bent, hips lowered until the feet touch the floor exactly (our FK), turned, a little way off the origin."""
    q = np.tile([0.0, 0.0, 0.0, 1.0], (J, 1))
    half = knee_deg / 2
    for side in ("Left", "Right"):
        q[SK.names.index(f"{side}UpLeg")] = Rotation.from_euler("x", -half, degrees=True).as_quat()
        q[SK.names.index(f"{side}Leg")] = Rotation.from_euler("x", knee_deg, degrees=True).as_quat()
        q[SK.names.index(f"{side}Foot")] = Rotation.from_euler("x", -half, degrees=True).as_quat()
    q[SK.names.index("RightArm")] = Rotation.from_euler("z", 70, degrees=True).as_quat()
    q[SK.names.index("LeftForeArm")] = Rotation.from_euler("y", 50, degrees=True).as_quat()
    q[0] = Rotation.from_euler("y", yaw_deg, degrees=True).as_quat()
    root = np.array([40.0, 200.0, -25.0])
    root[1] -= FloorClamp(SK).lowest_foot(root, q)  # feet exactly on the floor (y = 0)
    return Pose(0, 1.0, root, q)


def receive(mode: str, pose: Pose):
    with VmcReceiver(0) as rx, VmcSender([("127.0.0.1", rx.port)], SK, bone_positions=mode) as tx:
        tx.send(pose)
        assert rx.wait_for(packets=len(tx.encoders), timeout=2.0)
        return rx.latest()


def bone_lengths(pos: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pos[1:] - pos[UNITY_PARENTS[1:]], axis=1)


@pytest.mark.parametrize("knee", [0.0, 50.0])
def test_avatar_of_other_proportions_keeps_its_feet_on_the_floor_and_its_shape(knee):
    avatar = avatar_rest()
    own = bone_lengths(forward_kinematics(UNITY_PARENTS, avatar, np.tile([0, 0, 0, 1.0], (B, 1)), np.zeros(3))[0])
    frame = receive("none", crouch_pose(knee))
    drop = 0.93 - (crouch_pose(knee).root_position[1] / 100)  # how far our hips went down (m)
    for receiver, tol in (("rotations_root", 0.2 * drop + 1e-4), ("scaled_root", 1e-4)):
        pos = apply(frame, avatar, receiver)
        feet = pos[FEET, 1].min()
        print(f"knee {knee:.0f} deg, {receiver}: lowest foot {100 * feet:+.2f} cm (hips dropped {100 * drop:.1f} cm)")
        assert abs(feet) <= tol, (receiver, feet)
        np.testing.assert_allclose(bone_lengths(pos), own, atol=1e-5)  # the avatar's own proportions
        # it dances where ours dances: same place on the floor, same facing
        np.testing.assert_allclose(pos[0, [0, 2]] if receiver == "rotations_root" else pos[0, [0, 2]] / avatar[0, 1] * 0.93,
                                   to_unity_position(crouch_pose(knee).root_position)[[0, 2]], atol=1e-4)


def test_receiver_applying_every_position_shows_our_skeleton_in_skeleton_mode():
    pose = crouch_pose(50.0)
    frame = receive("skeleton", pose)
    pos = apply(frame, avatar_rest(), "all_positions")
    assert abs(pos[FEET, 1].min()) < 1e-4
    r = HumanoidRetarget(SK)
    expected, _ = r.unity_fk(*[a.copy() for a in r.retarget(pose)][::2])
    np.testing.assert_allclose(pos, expected, atol=1e-5)  # our proportions: documented for --bone-positions skeleton


def test_floating_or_sinking_is_gone_for_receivers_that_apply_only_one_of_root_and_hips():
    """Issue 13 (1): the hip height lives in the Hips bone, the root stays on the floor while standing."""
    frame = receive("none", crouch_pose(0.0))
    assert abs(frame.root_position[1]) < 1e-6
    assert frame.bones["Hips"][0][1] == pytest.approx(0.93, abs=1e-6)


# ------------------------------------------------------------------------------------- bone maps
def cmu_skeleton(prefix: str = "") -> Skeleton:
    """A T-pose skeleton named like the CMU BVH conversions (hip and back joints the map leaves out)."""
    rows = [("Hips", None, (0, 0, 0)),
            ("LHipJoint", "Hips", (8, -3, 0)), ("LeftUpLeg", "LHipJoint", (2, -4, 0)), ("LeftLeg", "LeftUpLeg", (0, -43, 0)),
            ("LeftFoot", "LeftLeg", (0, -42, 0)), ("LeftToeBase", "LeftFoot", (0, -6, 13)),
            ("RHipJoint", "Hips", (-8, -3, 0)), ("RightUpLeg", "RHipJoint", (-2, -4, 0)), ("RightLeg", "RightUpLeg", (0, -43, 0)),
            ("RightFoot", "RightLeg", (0, -42, 0)), ("RightToeBase", "RightFoot", (0, -6, 13)),
            ("LowerBack", "Hips", (0, 5, 0)), ("Spine", "LowerBack", (0, 10, 0)), ("Spine1", "Spine", (0, 15, 0)),
            ("Neck", "Spine1", (0, 18, 0)), ("Neck1", "Neck", (0, 5, 0)), ("Head", "Neck1", (0, 8, 0)),
            ("LeftShoulder", "Spine1", (3, 15, 0)), ("LeftArm", "LeftShoulder", (15, 0, 0)),
            ("LeftForeArm", "LeftArm", (27, 0, 0)), ("LeftHand", "LeftForeArm", (25, 0, 0)),
            ("LeftFingerBase", "LeftHand", (5, 0, 0)),
            ("RightShoulder", "Spine1", (-3, 15, 0)), ("RightArm", "RightShoulder", (-15, 0, 0)),
            ("RightForeArm", "RightArm", (-27, 0, 0)), ("RightHand", "RightForeArm", (-25, 0, 0)),
            ("RightFingerBase", "RightHand", (-5, 0, 0))]
    names = [prefix + n for n, _, _ in rows]
    parents = [-1 if p is None else [n for n, _, _ in rows].index(p) for _, p, _ in rows]
    return Skeleton(names, np.array(parents), np.array([o for _, _, o in rows], float), rotating=np.arange(len(rows)))


def test_cmu_skeleton_streams_with_the_cmu_map_picked_by_itself():
    sk = cmu_skeleton()
    r = HumanoidRetarget(sk)
    assert r.bone_map.source.endswith("cmu.json") and r.static[UNITY_BONES.index("UpperChest")]
    q = Rotation.random(sk.num_joints, random_state=5).as_quat()
    root = np.array([10.0, 80.0, 5.0])
    _, rot_ours = forward_kinematics(sk.parents, sk.offsets, q, root)
    root_pos, _, bone_rots = r.retarget(Pose(0, 0.0, root, q))
    _, rot_u = r.unity_fk(root_pos, bone_rots)
    for joint, bone in load_bone_map("cmu").joints.items():  # unmapped joints fold into the next mapped one
        np.testing.assert_allclose(np.abs(np.sum(from_unity_quaternion(rot_u[UNITY_BONES.index(bone)])
                                                 * rot_ours[sk.names.index(joint)])), 1.0, atol=1e-9, err_msg=joint)
    # with the folded joints at rest, positions agree too
    for n in ("LHipJoint", "RHipJoint", "LowerBack", "Neck1"):
        q[sk.names.index(n)] = (0, 0, 0, 1)
    pos_ours, _ = forward_kinematics(sk.parents, sk.offsets, q, root)
    pos_u, _ = r.unity_fk(*[a.copy() for a in r.retarget(Pose(0, 0.0, root, q))][::2])
    for joint, bone in load_bone_map("cmu").joints.items():
        np.testing.assert_allclose(pos_u[UNITY_BONES.index(bone)], to_unity_position(pos_ours[sk.names.index(joint)]),
                                   atol=1e-9, err_msg=joint)
    with VmcReceiver(0) as rx, VmcSender([("127.0.0.1", rx.port)], sk) as tx:  # used to be a ValueError in VmcSender
        tx.send(Pose(0, 0.0, root, q))
        assert rx.wait_for(frames=1, timeout=2.0) and "LeftShoulder" in rx.latest().bones


def test_mixamo_names_with_any_namespace_pick_the_mixamo_map():
    sk = cmu_skeleton()  # Mixamo's torso: Hips > Spine > Spine1 > Spine2 > (Neck, shoulders)
    rename = {"LowerBack": "Spine", "Spine": "Spine1", "Spine1": "Spine2"}
    names = ["mixamorig1:" + rename.get(n, n) for n in sk.names]
    r = HumanoidRetarget(Skeleton(names, sk.parents, sk.offsets, sk.rotating))
    assert r.bone_map.source.endswith("mixamo.json")
    assert r.unity_to_joint["UpperChest"] == names.index("mixamorig1:Spine2")
    assert r.unity_to_joint["LeftUpperArm"] == names.index("mixamorig1:LeftArm")


def test_bone_map_errors_name_what_is_wrong(tmp_path):
    sk = cmu_skeleton()
    f = tmp_path / "map.json"
    cases = [
        ({"joints": {"Hips": "Hips", "Spine": "Spinee"}}, r"\['Spinee'\] are not HumanBodyBones names"),
        ({"joints": {"Hips": "Hips", "LeftHand": "LeftIndexProximal"}}, r"not streamed"),
        ({"joints": {"Hips": "Hips", "Hip": "Spine"}}, r"joints \['Hip'\] are not in the model's skeleton"),
        ({"joints": {"Hips": "Hips", "Spine": "Spine"}}, r"no joint maps to the required bones \['Head'"),
        ({"joints": {"Hips": "Hips", "Spine": "Chest", "Spine1": "Chest"}}, r"both map to Chest"),
        ({"bones": {}}, r"expected \{\"joints\""),
    ]
    for data, why in cases:
        f.write_text(json.dumps(data))
        with pytest.raises(UserError, match=why):
            HumanoidRetarget(sk, str(f))
    f.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        HumanoidRetarget(sk, str(f))
    with pytest.raises(UserError, match="file not found"):
        HumanoidRetarget(sk, str(tmp_path / "nope.json"))
    # a skeleton nothing fits: the closest map and the joints it lacks
    odd = Skeleton(["root", "a"], np.array([-1, 0]), np.zeros((2, 3)), rotating=np.arange(2))
    with pytest.raises(UserError, match=r"matches none of the shipped bone maps .* --bone-map FILE"):
        VmcSender([("127.0.0.1", 9)], odd)
    # a swapped hierarchy, and a rest pose that is not a T-pose
    bad = cmu_skeleton()
    with pytest.raises(UserError, match=r"hangs below"):
        HumanoidRetarget(bad, {"joints": {**load_bone_map("cmu").joints, "LeftForeArm": "LeftUpperArm",
                                          "LeftArm": "LeftLowerArm"}})
    a_pose = cmu_skeleton()
    a_pose.offsets[a_pose.names.index("LeftForeArm")] = (15, -22, 0)
    a_pose.offsets[a_pose.names.index("LeftHand")] = (14, -20, 0)
    assert "not a T-pose" in HumanoidRetarget(a_pose).rest_warning  # streams, with a warning (logged)
    assert HumanoidRetarget(cmu_skeleton()).rest_warning == ""


# --------------------------------------------------------------------------------- stopping eased
def test_stop_eases_into_standing_with_arms_down():
    pose = crouch_pose(40.0, yaw_deg=70.0)
    slept, now = [], [0.0]

    def sleep(s):
        slept.append(s)
        now[0] += s

    with VmcReceiver(0) as rx, VmcSender([("127.0.0.1", rx.port)], SK) as tx:
        frames = []
        rx.on_frame = lambda f: frames.append(f)
        tx.send(pose)
        n = tx.ease_to_neutral(0.5, fps=30, sleep=sleep, clock=lambda: now[0])
        assert n == 15 and rx.wait_for(frames=16, timeout=2.0)
    assert np.allclose(slept, 1 / 30) and len(slept) == 14  # paced at 30 fps
    last = frames[-1]
    r = HumanoidRetarget(SK)
    bp = r.bone_positions
    rots = np.tile([0, 0, 0, 1.0], (B, 1))
    for b, name in enumerate(UNITY_BONES):
        if name in last.bones:
            rots[b] = last.bones[name][1]
    pos, _ = forward_kinematics(UNITY_PARENTS, bp, rots, last.root_position + bp[0])
    for side in ("Left", "Right"):  # arms hang down, close to the body
        hand, shoulder = pos[UNITY_BONES.index(f"{side}Hand")], pos[UNITY_BONES.index(f"{side}UpperArm")]
        assert hand[1] < shoulder[1] - 0.4
    assert abs(last.root_position[1]) < 1e-6 and abs(pos[FEET, 1].min()) < 1e-6  # standing, feet on the floor
    fwd = Rotation.from_quat(last.bones["Hips"][1]).apply([0, 0, 1])
    assert np.degrees(np.arctan2(-fwd[0], fwd[2])) == pytest.approx(70.0, abs=1e-3)  # still facing where it danced
    np.testing.assert_allclose(last.root_position[[0, 2]], to_unity_position(pose.root_position)[[0, 2]], atol=1e-6)
    # no jump anywhere: each step turns every bone by at most a few degrees
    prev = None
    for f in frames:
        q = np.array([f.bones[n][1] for n in sorted(f.bones)])
        if prev is not None:
            ang = 2 * np.degrees(np.arccos(np.clip(np.abs(np.sum(q * prev, axis=1)), 0, 1)))
            assert ang.max() < 15.0
        prev = q
