"""Retarget our poses to Unity's humanoid (HumanBodyBones), as VMC receivers expect them.

Our frame: right-handed, Y up, cm, T-pose rest facing +Z, the character's right at -X.
Unity's:   left-handed,  Y up, m,  normalized humanoid T-pose facing +Z, the character's right at +X,
           every bone's rest rotation identity (VRM style), quaternions (x, y, z, w).

Mirroring X converts one into the other: a position (x, y, z) cm becomes (-x, y, z) / 100 m and a
rotation matrix R becomes M R M (M = diag(-1, 1, 1)), i.e. a quaternion (x, y, z, w) becomes
(x, -y, -z, w). Local rotations stay local rotations, so a T-pose rest (identity local rotations) is
Unity's normalized T-pose, and forward kinematics commutes with the conversion.

Which joint drives which Unity bone comes from a bone map (``bridge/bone_maps/*.json``: joint name ->
HumanBodyBones name); ours is the default, CMU and Mixamo namings ship too. Joints the map leaves out
between two mapped joints (CMU's LowerBack, LHipJoint, Neck1) fold their rotation into the next mapped
joint; Unity bones without a joint are sent with identity rotation, and their rest positions split the
segment they sit on (the Neck half way from the chest to the head, each shoulder half way to its upper
arm) so that FK over Unity's hierarchy puts every mapped joint where ours is.

The stream's layout follows the reference sender (VirtualMotionCapture): ``Root/Pos`` is the avatar's
floor-level root and the Hips bone's local position carries the hip height. Our root sits on the floor
under the hips while the dancer stands straight: its height is the hips' offset from their standing
height (0 standing, negative in a crouch, positive in a jump), so a receiver that keeps the avatar's own
hip height and applies only the root still crouches and jumps with the dancer.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from transflower.errors import UserError
from transflower.kinematics import forward_kinematics
from transflower.rotations import quat_apply, quat_mul, quat_mul_into
from transflower.skeleton import Pose, Skeleton

__all__ = [
    "UNITY_BONES", "UNITY_PARENTS", "HUMAN_BODY_BONES", "REQUIRED_BONES", "JOINT_TO_UNITY", "BONE_MAP_DIR",
    "BoneMap", "load_bone_map", "resolve_bone_map", "HumanoidRetarget", "to_unity_position", "to_unity_quaternion",
    "from_unity_position", "from_unity_quaternion", "quat_mul", "quat_rotate", "forward_kinematics",
    "neutral_bone_rotations", "synthetic_tpose_skeleton", "SYNTHETIC_HIPS_HEIGHT_CM",
]

# (Unity HumanBodyBones name, Unity parent) in hierarchy order: the 22 body bones the stream carries
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
# what Unity's humanoid Avatar itself requires
REQUIRED_BONES: tuple[str, ...] = (
    "Hips", "Spine", "Head", "LeftUpperArm", "LeftLowerArm", "LeftHand", "RightUpperArm", "RightLowerArm",
    "RightHand", "LeftUpperLeg", "LeftLowerLeg", "LeftFoot", "RightUpperLeg", "RightLowerLeg", "RightFoot",
)
# every HumanBodyBones name (for error messages: fingers, eyes and jaw exist but are not streamed)
HUMAN_BODY_BONES: frozenset[str] = frozenset(UNITY_BONES) | {"LeftEye", "RightEye", "Jaw"} | {
    f"{side}{finger}{seg}" for side in ("Left", "Right") for finger in ("Thumb", "Index", "Middle", "Ring", "Little")
    for seg in ("Proximal", "Intermediate", "Distal")}

BONE_MAP_DIR = Path(__file__).with_name("bone_maps")
SHIPPED_BONE_MAPS = ("transflower", "cmu", "mixamo")  # tried in this order when none is given
# unmapped Unity bones that split the way from their parent to their mapped child (the rest sit on their parent)
_SPLIT_FRACTION: dict[str, float] = {"Neck": 0.5, "LeftShoulder": 0.5, "RightShoulder": 0.5}

log = logging.getLogger(__name__)
_MIRROR = np.array([-1.0, 1.0, 1.0])
_QMIRROR = np.array([1.0, -1.0, -1.0, 1.0])

quat_rotate = quat_apply  # the name this module has always exported


def to_unity_position(p_cm: np.ndarray) -> np.ndarray:
    return np.asarray(p_cm, dtype=np.float64) * _MIRROR / 100.0


def from_unity_position(p_m: np.ndarray) -> np.ndarray:
    return np.asarray(p_m, dtype=np.float64) * _MIRROR * 100.0


def to_unity_quaternion(q: np.ndarray) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * _QMIRROR


from_unity_quaternion = to_unity_quaternion  # the mirror is its own inverse


# ------------------------------------------------------------------------------------------ bone maps
class BoneMap:
    """joint name -> HumanBodyBones name, validated against the stream's 22 bones (``source`` names it in errors)."""

    def __init__(self, joints: dict, source: str):
        self.source = source
        if not isinstance(joints, dict) or not joints:
            raise UserError(f"bone map {source}: expected a non-empty object \"joints\": {{joint name: HumanBodyBones name}}")
        bad = sorted(str(b) for b in joints.values() if b not in UNITY_BONES)
        if bad:
            unstreamed = [b for b in bad if b in HUMAN_BODY_BONES]
            unknown = [b for b in bad if b not in HUMAN_BODY_BONES]
            parts = []
            if unknown:
                parts.append(f"{unknown} are not HumanBodyBones names")
            if unstreamed:
                parts.append(f"{unstreamed} are not streamed (fingers, eyes and jaw)")
            raise UserError(f"bone map {source}: {'; '.join(parts)}; map joints to: {', '.join(UNITY_BONES)}")
        seen: dict[str, str] = {}
        for j, b in joints.items():
            if b in seen:
                raise UserError(f"bone map {source}: joints {seen[b]!r} and {j!r} both map to {b}; one joint per bone")
            seen[b] = j
        self.joints = {str(j): str(b) for j, b in joints.items()}

    def __repr__(self) -> str:
        return f"BoneMap({self.source}, {len(self.joints)} bones)"


def load_bone_map(spec) -> BoneMap:
    """A bone map from a shipped name (``"transflower"``, ``"cmu"``, ``"mixamo"``), a JSON file path or a dict."""
    if isinstance(spec, BoneMap):
        return spec
    if isinstance(spec, dict):
        return BoneMap(spec.get("joints", spec), "(given as a dict)")
    spec = str(spec)
    path = BONE_MAP_DIR / f"{spec}.json" if spec in SHIPPED_BONE_MAPS else Path(spec)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"bone map {path}: file not found (shipped maps: {', '.join(SHIPPED_BONE_MAPS)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"bone map {path}: cannot read it ({e})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"bone map {path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or "joints" not in data:
        raise UserError(f"bone map {path}: expected {{\"joints\": {{joint name: HumanBodyBones name, ...}}}}")
    return BoneMap(data["joints"], str(path))


def _bare(name: str) -> str:
    return name.rsplit(":", 1)[-1]  # "mixamorig:Hips" and "mixamorig1:Hips" both match "Hips"


def _match(bone_map: BoneMap, skeleton: Skeleton) -> tuple[dict[str, int], list[str]]:
    """bone -> joint index for the map's joints found in the skeleton (exactly, else ignoring 'prefix:'); missing joints."""
    exact = {n: i for i, n in enumerate(skeleton.names)}
    bare: dict[str, int] = {}
    for i, n in enumerate(skeleton.names):
        bare.setdefault(_bare(n), i)
    found, missing = {}, []
    for j, b in bone_map.joints.items():
        i = exact.get(j, bare.get(_bare(j)))
        if i is None:
            missing.append(j)
        else:
            found[b] = i
    return found, missing


def resolve_bone_map(skeleton: Skeleton, bone_map=None) -> tuple[BoneMap, dict[str, int]]:
    """(map, bone -> joint index). A given map must match every joint it names; without one, the first
    shipped map whose required bones all exist in the skeleton and that names most of its joints is used
    (its optional joints may be absent)."""
    if bone_map is not None:
        m = load_bone_map(bone_map)
        found, missing = _match(m, skeleton)
        if missing:
            raise UserError(f"bone map {m.source}: joints {missing} are not in the model's skeleton "
                            f"(it has: {', '.join(skeleton.names)})")
        _check_required(m, found)
        return m, found
    best, fits = None, None
    for name in SHIPPED_BONE_MAPS:
        m = load_bone_map(name)
        found, _ = _match(m, skeleton)
        lacking = [b for b in REQUIRED_BONES if b not in found]
        if not lacking and (fits is None or len(found) > len(fits[1])):  # the map that names most joints wins
            fits = (m, found)
        if best is None or len(lacking) < len(best[1]):
            best = (name, lacking, m)
    if fits is not None:
        return fits
    name, lacking, m = best
    need = [j for j, b in m.joints.items() if b in lacking]
    raise UserError(f"the model's skeleton matches none of the shipped bone maps ({', '.join(SHIPPED_BONE_MAPS)}): "
                    f"the closest, {name}, needs joints {need} for {lacking}; write a bone map for it "
                    f"(docs/bone_maps.md) and pass --bone-map FILE")


def _check_required(m: BoneMap, found: dict[str, int]) -> None:
    lacking = [b for b in REQUIRED_BONES if b not in found]
    if lacking:
        raise UserError(f"bone map {m.source}: no joint maps to the required bones {lacking}")


JOINT_TO_UNITY: dict[str, str] = dict(json.loads((BONE_MAP_DIR / "transflower.json").read_text())["joints"])


def neutral_bone_rotations(arm_down_deg: float = 75.0) -> np.ndarray:
    """(22, 4) Unity local rotations of a relaxed standing pose: T-pose with both upper arms lowered by
    ``arm_down_deg`` (left-handed Unity frame: the left arm points -X and turns down about +Z)."""
    q = np.zeros((len(UNITY_BONES), 4))
    q[:, 3] = 1.0
    h = np.radians(arm_down_deg) / 2.0
    q[UNITY_BONES.index("LeftUpperArm")] = (0.0, 0.0, np.sin(h), np.cos(h))
    q[UNITY_BONES.index("RightUpperArm")] = (0.0, 0.0, -np.sin(h), np.cos(h))
    return q


# ----------------------------------------------------------------------------------------- retarget
class HumanoidRetarget:
    """Map poses of ``skeleton`` onto Unity's 22 VMC humanoid bones (``UNITY_BONES`` order).

    ``bone_map``: a shipped map name, a JSON path, a dict or a BoneMap (default: the shipped map that fits).
    ``retarget(pose)`` returns ``(root_pos (3,), root_rot (4,), bone_rots (B, 4))`` written into preallocated
    arrays (reused on every call: copy them to keep them). ``root_pos`` is the floor-level root in metres
    (see the module docstring), ``root_rot`` the Hips global rotation, ``bone_rots`` the local rotations.
    Static attributes: ``bone_positions`` (B, 3) each bone's local rest position in metres (the Hips: its
    height above the root), ``hips_height_m``, ``mapped`` (B,) and ``static`` (B,) masks (bones whose
    rotation is always identity: no joint, or only joints that never rotate).
    """

    bone_names = UNITY_BONES
    bone_parents = UNITY_PARENTS

    def __init__(self, skeleton: Skeleton, bone_map=None):
        self.skeleton = skeleton
        names = list(skeleton.names)
        J, B = skeleton.num_joints, len(UNITY_BONES)
        self.bone_map, bone_to_joint = resolve_bone_map(skeleton, bone_map)
        self.unity_to_joint = bone_to_joint
        hips = bone_to_joint["Hips"]
        if skeleton.parents[hips] >= 0:
            raise UserError(f"bone map {self.bone_map.source}: Hips maps to {names[hips]!r}, which is not the "
                            f"skeleton's root joint {names[int(np.flatnonzero(skeleton.parents < 0)[0])]!r}")
        self.hips_index = hips

        # each mapped bone's joint chain: the joints from below its nearest mapped ancestor's joint down to its own
        mapped_joints = set(bone_to_joint.values())
        chains: list[list[int]] = []
        for b, name in enumerate(UNITY_BONES):
            j = bone_to_joint.get(name)
            if j is None:
                chains.append([])
                continue
            chain = [j]
            p = int(skeleton.parents[j])
            while p >= 0 and p not in mapped_joints:
                chain.append(p)
                p = int(skeleton.parents[p])
            # Unity's nearest mapped ancestor must be the joint we stopped at (same chains, virtual bones aside)
            pb = UNITY_PARENTS[b]
            while pb >= 0 and UNITY_BONES[pb] not in bone_to_joint:
                pb = UNITY_PARENTS[pb]
            expected = -1 if pb < 0 else bone_to_joint[UNITY_BONES[pb]]
            if p != expected:
                got = names[p] if p >= 0 else None
                want = names[expected] if expected >= 0 else None
                raise UserError(f"bone map {self.bone_map.source}: joint {names[j]!r} ({name}) hangs below {got!r} in the "
                                f"skeleton, but Unity's hierarchy puts {name} below {want!r}'s bone")
            if p < 0 and name != "Hips":
                raise UserError(f"bone map {self.bone_map.source}: joint {names[j]!r} ({name}) is not below the Hips joint")
            chains.append(chain[::-1])  # parent-most first
        self.mapped = np.array([bool(c) for c in chains])
        rotating = set(int(j) for j in skeleton.rotating)
        self.static = np.array([not any(j in rotating for j in c) for c in chains])
        # chain table (B, K): padded with the identity row J; the per-frame product runs over K, not over bones
        K = max(1, max(len(c) for c in chains))
        self._chain = np.full((B, K), J, dtype=np.intp)
        for b, c in enumerate(chains):
            self._chain[b, :len(c)] = c
        self._rot_in = np.zeros((J + 1, 4))
        self._rot_in[:, 3] = 1.0
        self._link = np.zeros((B, 4))
        self._acc = np.zeros((B, 4))

        # rest positions: skeleton FK with identity rotations (a T-pose rest), in our frame (cm)
        ident = np.zeros((J, 4))
        ident[:, 3] = 1.0
        rest_pos, _ = forward_kinematics(skeleton.parents, skeleton.offsets, ident, np.zeros(3))
        self.hips_height_cm = float(max(0.0, -rest_pos[:, 1].min()))  # the lowest joint of the rest pose is on the floor
        self.rest_warning = ""
        self._check_tpose(rest_pos, bone_to_joint)
        bone_rest = np.zeros((B, 3))
        for b, name in enumerate(UNITY_BONES):  # parents come first in UNITY_HIERARCHY
            if name in bone_to_joint:
                bone_rest[b] = rest_pos[bone_to_joint[name]]
                continue
            parent = bone_rest[UNITY_PARENTS[b]] if UNITY_PARENTS[b] >= 0 else np.zeros(3)
            child = self._first_mapped_descendant(b, bone_to_joint)
            frac = _SPLIT_FRACTION.get(name, 0.0)
            bone_rest[b] = parent if child is None else parent + frac * (rest_pos[bone_to_joint[child]] - parent)
        offsets_cm = bone_rest - np.where(UNITY_PARENTS[:, None] >= 0, bone_rest[np.maximum(UNITY_PARENTS, 0)], 0.0)
        offsets_cm[0] = (0.0, self.hips_height_cm, 0.0)  # the Hips above the floor-level root
        self.bone_positions_cm = offsets_cm
        self.bone_positions = to_unity_position(offsets_cm) + 0.0  # -0.0 -> 0.0
        self.hips_height_m = self.hips_height_cm / 100.0
        self._root_scale = _MIRROR / 100.0
        self._root_shift = np.array([0.0, -self.hips_height_cm, 0.0])
        self.root_pos = np.zeros(3)
        self.root_rot = np.array([0.0, 0.0, 0.0, 1.0])
        self.bone_rots = np.zeros((B, 4))
        self.bone_rots[:, 3] = 1.0

    @staticmethod
    def _first_mapped_descendant(b: int, bone_to_joint: dict) -> str | None:
        kids = [c for c in range(len(UNITY_BONES)) if UNITY_PARENTS[c] == b]
        for c in kids:
            if UNITY_BONES[c] in bone_to_joint:
                return UNITY_BONES[c]
        if len(kids) == 1:
            return HumanoidRetarget._first_mapped_descendant(kids[0], bone_to_joint)
        return None

    def _check_tpose(self, rest_pos: np.ndarray, bone_to_joint: dict) -> None:
        """Unity's normalized rest is a T-pose facing +Z: arms sideways, legs down. A skeleton whose rest is not
        streams, but avatars show its rest as their T-pose: say so once (``rest_warning``), loudly."""
        expect = {("LeftUpperArm", "LeftHand"): (1, 0, 0), ("RightUpperArm", "RightHand"): (-1, 0, 0),
                  ("LeftUpperLeg", "LeftFoot"): (0, -1, 0), ("RightUpperLeg", "RightFoot"): (0, -1, 0),
                  ("Hips", "Head"): (0, 1, 0)}
        names = self.skeleton.names
        for (a, b), d in expect.items():
            v = rest_pos[bone_to_joint[b]] - rest_pos[bone_to_joint[a]]
            cos = float(np.dot(v, d) / max(np.linalg.norm(v), 1e-9))
            if cos < np.cos(np.radians(30)):
                self.rest_warning = (f"the skeleton's rest pose is not a T-pose facing +Z (from {names[bone_to_joint[a]]!r} "
                                     f"to {names[bone_to_joint[b]]!r} points {np.round(v / max(np.linalg.norm(v), 1e-9), 2).tolist()}, "
                                     f"expected {list(d)}): avatars will look bent; re-export the BVH with a T-pose rest")
                log.warning("%s", self.rest_warning)
                return

    def retarget(self, pose: Pose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.retarget_arrays(pose.root_position, pose.local_rotations)

    def retarget_arrays(self, root_position: np.ndarray, local_rotations: np.ndarray):
        """Per frame: one gather per chain link, one mirror, no allocation."""
        local_rotations = np.asarray(local_rotations)
        if local_rotations.shape != (self.skeleton.num_joints, 4):
            raise ValueError(f"retarget: expected local rotations of shape ({self.skeleton.num_joints}, 4), "
                             f"got {local_rotations.shape}")
        self._rot_in[:-1] = local_rotations
        np.take(self._rot_in, self._chain[:, 0], axis=0, out=self.bone_rots)
        for k in range(1, self._chain.shape[1]):  # chain depth (1 for our skeleton), not joints
            np.take(self._rot_in, self._chain[:, k], axis=0, out=self._link)
            quat_mul_into(self.bone_rots, self._link, out=self._acc)
            self.bone_rots[:] = self._acc
        self.bone_rots *= _QMIRROR
        self.bone_rots += 0.0  # -0.0 -> 0.0 (cosmetic, for tools that print the stream)
        np.add(root_position, self._root_shift, out=self.root_pos)
        self.root_pos *= self._root_scale
        self.root_pos += 0.0
        self.root_rot[:] = self.bone_rots[0]  # the Hips are the root joint: local rotation = global rotation
        return self.root_pos, self.root_rot, self.bone_rots

    def rest(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The T-pose standing at the origin."""
        ident = np.zeros((self.skeleton.num_joints, 4))
        ident[:, 3] = 1.0
        return self.retarget_arrays(np.array([0.0, self.hips_height_cm, 0.0]), ident)

    def unity_fk(self, root_pos: np.ndarray, bone_rots: np.ndarray, bone_positions: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Global positions (B, 3) m and rotations (B, 4) of the Unity bones, as a receiver applying the root,
        the rotations and ``bone_positions`` (default: ours) computes them (the Hips at root + their local position)."""
        bp = self.bone_positions if bone_positions is None else np.asarray(bone_positions, dtype=np.float64)
        return forward_kinematics(UNITY_PARENTS, bp, bone_rots, np.asarray(root_pos) + bp[0])


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
