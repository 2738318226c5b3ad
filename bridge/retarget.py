"""Retarget our poses to Unity's humanoid (HumanBodyBones), as VMC receivers expect them.

Our frame: right-handed, Y up, cm, T-pose rest facing +Z, the character's right at -X.
Unity's:   left-handed,  Y up, m,  normalized humanoid T-pose facing +Z, the character's right at +X,
           every bone's rest rotation identity (VRM style), quaternions (x, y, z, w).

Mirroring X converts one into the other: a position (x, y, z) cm becomes (-x, y, z) / 100 m and a
rotation matrix R becomes M R M (M = diag(-1, 1, 1)), i.e. a quaternion (x, y, z, w) becomes
(x, -y, -z, w). Local rotations stay local rotations, so our T-pose (identity local rotations) is
Unity's normalized T-pose, and forward kinematics commutes with the conversion.

Unity bones we have no joint for (UpperChest, Neck, the shoulders) are sent with identity rotation;
their local positions split the bone they sit on (UpperChest at the Chest, the Neck half way from the
Chest to the Head, each shoulder half way from the Chest to the upper arm) so that FK over the Unity
hierarchy puts every mapped joint exactly where ours is.
"""
from __future__ import annotations

import numpy as np

from transflower.skeleton import Pose, Skeleton

__all__ = [
    "UNITY_BONES", "UNITY_PARENTS", "JOINT_TO_UNITY", "HumanoidRetarget", "to_unity_position",
    "to_unity_quaternion", "from_unity_position", "from_unity_quaternion", "quat_mul", "quat_rotate",
    "forward_kinematics", "synthetic_tpose_skeleton", "SYNTHETIC_HIPS_HEIGHT_CM",
]

# (Unity HumanBodyBones name, Unity parent) in hierarchy order: the 22 bones a VMC performer sends
UNITY_HIERARCHY: list[tuple[str, str | None]] = [
    ("Hips", None),
    ("Spine", "Hips"),
    ("Chest", "Spine"),
    ("UpperChest", "Chest"),
    ("Neck", "UpperChest"),
    ("Head", "Neck"),
    ("LeftShoulder", "UpperChest"),
    ("LeftUpperArm", "LeftShoulder"),
    ("LeftLowerArm", "LeftUpperArm"),
    ("LeftHand", "LeftLowerArm"),
    ("RightShoulder", "UpperChest"),
    ("RightUpperArm", "RightShoulder"),
    ("RightLowerArm", "RightUpperArm"),
    ("RightHand", "RightLowerArm"),
    ("LeftUpperLeg", "Hips"),
    ("LeftLowerLeg", "LeftUpperLeg"),
    ("LeftFoot", "LeftLowerLeg"),
    ("LeftToes", "LeftFoot"),
    ("RightUpperLeg", "Hips"),
    ("RightLowerLeg", "RightUpperLeg"),
    ("RightFoot", "RightLowerLeg"),
    ("RightToes", "RightFoot"),
]
UNITY_BONES: list[str] = [b for b, _ in UNITY_HIERARCHY]
UNITY_PARENTS: np.ndarray = np.array([-1 if p is None else UNITY_BONES.index(p) for _, p in UNITY_HIERARCHY])

JOINT_TO_UNITY: dict[str, str] = {
    "Hips": "Hips", "Spine": "Spine", "Chest": "Chest", "Head": "Head",
    "RightArm": "RightUpperArm", "RightForeArm": "RightLowerArm", "RightHand": "RightHand",
    "LeftArm": "LeftUpperArm", "LeftForeArm": "LeftLowerArm", "LeftHand": "LeftHand",
    "RightUpLeg": "RightUpperLeg", "RightLeg": "RightLowerLeg", "RightFoot": "RightFoot", "RightToe": "RightToes",
    "LeftUpLeg": "LeftUpperLeg", "LeftLeg": "LeftLowerLeg", "LeftFoot": "LeftFoot", "LeftToe": "LeftToes",
}
# virtual Unity bone -> (the mapped child it splits the way to, the fraction of that offset it takes)
_VIRTUAL_SPLITS: dict[str, tuple[str, float]] = {
    "UpperChest": ("Neck", 0.0),  # sits on the Chest
    "Neck": ("Head", 0.5),
    "LeftShoulder": ("LeftUpperArm", 0.5),
    "RightShoulder": ("RightUpperArm", 0.5),
}

_MIRROR = np.array([-1.0, 1.0, 1.0])
_QMIRROR = np.array([1.0, -1.0, -1.0, 1.0])


# ------------------------------------------------------------------------------ small quaternion helpers
def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions (x, y, z, w)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ], axis=-1)


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) vectors by (..., 4) unit quaternions (x, y, z, w)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u = q[..., :3]
    t = 2.0 * np.cross(u, v)
    return v + q[..., 3:4] * t + np.cross(u, t)


def to_unity_position(p_cm: np.ndarray) -> np.ndarray:
    return np.asarray(p_cm, dtype=np.float64) * _MIRROR / 100.0


def from_unity_position(p_m: np.ndarray) -> np.ndarray:
    return np.asarray(p_m, dtype=np.float64) * _MIRROR * 100.0


def to_unity_quaternion(q: np.ndarray) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * _QMIRROR


from_unity_quaternion = to_unity_quaternion  # the mirror is its own inverse


def forward_kinematics(parents: np.ndarray, offsets: np.ndarray, local_rotations: np.ndarray,
                       root_position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global positions (J, 3) and rotations (J, 4): p_j = p_parent + G_parent * offset_j, G_j = G_parent * L_j.

    The root joint sits at ``root_position`` (its offset is ignored, as in ``transflower.bvh``). Works in either
    frame (ours in cm, or Unity's in m) since the conversion commutes with FK.
    """
    n = len(parents)
    pos = np.empty((n, 3))
    rot = np.empty((n, 4))
    local_rotations = np.asarray(local_rotations, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    for j in range(n):
        p = parents[j]
        if p < 0:
            rot[j] = local_rotations[j]
            pos[j] = root_position
        else:
            rot[j] = quat_mul(rot[p], local_rotations[j])
            pos[j] = pos[p] + quat_rotate(rot[p], offsets[j])
    return pos, rot


# ----------------------------------------------------------------------------------------- retarget
class HumanoidRetarget:
    """Map poses of ``skeleton`` onto Unity's 22 VMC humanoid bones (``UNITY_BONES`` order).

    ``bone_positions`` (B, 3): each Unity bone's local rest position in metres (static, Unity frame).
    ``retarget(pose)`` returns ``(root_pos (3,), root_rot (4,), bone_rots (B, 4))`` written into
    preallocated arrays (reused on every call: copy them to keep them). ``root_pos`` is the pose's root
    position in metres, ``root_rot`` the Hips global rotation, ``bone_rots`` the local rotations.
    """

    bone_names = UNITY_BONES
    bone_parents = UNITY_PARENTS

    def __init__(self, skeleton: Skeleton):
        self.skeleton = skeleton
        names = list(skeleton.names)
        if "Hips" not in names:
            raise ValueError("HumanoidRetarget: the skeleton has no 'Hips' joint")
        self.hips_index = names.index("Hips")
        unity_to_joint = {u: names.index(j) for j, u in JOINT_TO_UNITY.items() if j in names}
        self.unity_to_joint = unity_to_joint
        B = len(UNITY_BONES)
        # bone b's rotation comes from joint src[b]; bones without a joint read a row of identity
        self._identity_row = skeleton.num_joints
        self._src = np.array([unity_to_joint.get(b, self._identity_row) for b in UNITY_BONES], dtype=np.intp)
        self._rot_in = np.zeros((skeleton.num_joints + 1, 4))
        self._rot_in[:, 3] = 1.0

        # static local positions in Unity's hierarchy, in our frame (cm) first
        offsets_cm = np.zeros((B, 3))
        for b, name in enumerate(UNITY_BONES):
            if name in unity_to_joint:
                offsets_cm[b] = skeleton.offsets[unity_to_joint[name]]
        offsets_cm[0] = 0.0  # the Hips sit at the root position (Root/Pos): no local offset, as in transflower.bvh
        for virtual, (child, frac) in _VIRTUAL_SPLITS.items():
            v, c = UNITY_BONES.index(virtual), UNITY_BONES.index(child)
            if child == "Neck":  # UpperChest sits on the Chest: nothing to split
                offsets_cm[v] = 0.0
                continue
            whole = offsets_cm[c].copy()
            offsets_cm[v] = frac * whole
            offsets_cm[c] = (1.0 - frac) * whole
        # a mapped joint whose parent in our skeleton is not its Unity parent's joint would need
        # a real retarget; our table's chains match Unity's (virtual bones aside): check it
        for name, j in unity_to_joint.items():
            b = UNITY_BONES.index(name)
            pb = UNITY_PARENTS[b]
            while pb >= 0 and UNITY_BONES[pb] not in unity_to_joint:
                pb = UNITY_PARENTS[pb]
            expected = -1 if pb < 0 else unity_to_joint[UNITY_BONES[pb]]
            if skeleton.parents[j] != expected:
                raise ValueError(f"HumanoidRetarget: joint {names[j]!r} has parent "
                                 f"{names[skeleton.parents[j]] if skeleton.parents[j] >= 0 else None!r}; "
                                 f"Unity's {name} expects {names[expected] if expected >= 0 else None!r}")
        self.bone_positions = to_unity_position(offsets_cm) + 0.0  # -0.0 -> 0.0
        self.bone_positions_cm = offsets_cm
        self.root_pos = np.zeros(3)
        self.root_rot = np.array([0.0, 0.0, 0.0, 1.0])
        self.bone_rots = np.zeros((B, 4))
        self.bone_rots[:, 3] = 1.0

    def retarget(self, pose: Pose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.retarget_arrays(pose.root_position, pose.local_rotations)

    def retarget_arrays(self, root_position: np.ndarray, local_rotations: np.ndarray):
        local_rotations = np.asarray(local_rotations)
        if local_rotations.shape != (self.skeleton.num_joints, 4):
            raise ValueError(f"retarget: expected local rotations of shape ({self.skeleton.num_joints}, 4), "
                             f"got {local_rotations.shape}")
        self._rot_in[:-1] = local_rotations
        np.take(self._rot_in, self._src, axis=0, out=self.bone_rots)
        self.bone_rots *= _QMIRROR
        self.bone_rots += 0.0  # -0.0 -> 0.0 (cosmetic, for tools that print the stream)
        np.multiply(root_position, _MIRROR / 100.0, out=self.root_pos)
        self.root_pos += 0.0
        np.multiply(local_rotations[self.hips_index], _QMIRROR, out=self.root_rot)
        self.root_rot += 0.0
        return self.root_pos, self.root_rot, self.bone_rots

    def rest(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The T-pose at the origin (root at the rest Hips height above the feet is up to the caller)."""
        ident = np.zeros((self.skeleton.num_joints, 4))
        ident[:, 3] = 1.0
        return self.retarget_arrays(np.zeros(3), ident)

    def unity_fk(self, root_pos: np.ndarray, bone_rots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global positions (B, 3) m and rotations (B, 4) of the Unity bones (Hips at root_pos)."""
        return forward_kinematics(UNITY_PARENTS, self.bone_positions, bone_rots, root_pos)


_SYNTHETIC_OFFSETS_CM: dict[str, tuple[float, float, float]] = {
    "Hips": (0, 0, 0),
    "RightUpLeg": (-9, -5, 0), "RightLeg": (0, -42, 0), "RightFoot": (0, -40, 0),
    "RightToe": (0, -6, 14), "RightHeel": (0, -6, -4),
    "LeftUpLeg": (9, -5, 0), "LeftLeg": (0, -42, 0), "LeftFoot": (0, -40, 0),
    "LeftToe": (0, -6, 14), "LeftHeel": (0, -6, -4),
    "Spine": (0, 12, 0), "Chest": (0, 25, 0), "Head": (0, 28, 0),
    "HeadMarkerA": (5, 6, 8), "HeadMarkerB": (-5, 6, 8),
    "RightArm": (-18, 20, 0), "RightForeArm": (-28, 0, 0), "RightForeArmMarker": (-20, 0, 3),
    "RightHand": (-25, 0, 0), "RightHandMarker": (-8, 0, 0),
    "LeftArm": (18, 20, 0), "LeftForeArm": (28, 0, 0), "LeftForeArmMarkerA": (20, 0, 3),
    "LeftForeArmMarkerB": (20, 0, -3), "LeftHand": (25, 0, 0),
}
SYNTHETIC_HIPS_HEIGHT_CM = 93.0  # feet (ankle - 6 cm) on the floor in the T-pose


def synthetic_tpose_skeleton() -> Skeleton:
    """A plausible adult T-pose skeleton over the standard joint table (for tests, demos and the preview)."""
    from transflower.skeleton import JOINT_NAMES, PARENTS

    offsets = np.array([_SYNTHETIC_OFFSETS_CM[n] for n in JOINT_NAMES], dtype=np.float64)
    return Skeleton(list(JOINT_NAMES), PARENTS.copy(), offsets)
