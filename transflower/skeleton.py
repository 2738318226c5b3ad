"""The skeleton every part of transflower-live agrees on.

Conventions (used everywhere: BVH files, features, the ONNX model's outputs, the bridge):
- Right-handed coordinates, Y up, centimetres. In the rest pose the character faces +Z, so its
  right side is at -X. The rest pose is a T-pose: legs straight down, spine up, arms out sideways.
- Quaternions are (x, y, z, w), as scipy and Unity write them.
- A pose is a root position (3,) plus one *local* rotation per joint (J, 4); a joint's global
  rotation is its parent's global rotation times its local rotation (BVH order).

The joint table below is the fitted skeleton of the tang2018 ballroom capture (23 markers; see
`transflower.tang2018`): `MARKER` gives the source marker index, or a pair whose midpoint is used
for virtual joints. Joints flagged `rotates=False` are markers or end effectors whose local rotation is
always identity: they are not model outputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# name, parent, source marker(s), rotates (is a model output)
JOINT_TABLE: list[tuple[str, str | None, tuple[int, ...], bool]] = [
    ("Hips", None, (7, 16), True),
    ("RightUpLeg", "Hips", (7,), True),
    ("RightLeg", "RightUpLeg", (8,), True),
    ("RightFoot", "RightLeg", (9,), True),
    ("RightToe", "RightFoot", (11,), False),
    ("RightHeel", "RightFoot", (10,), False),
    ("LeftUpLeg", "Hips", (16,), True),
    ("LeftLeg", "LeftUpLeg", (17,), True),
    ("LeftFoot", "LeftLeg", (18,), True),
    ("LeftToe", "LeftFoot", (20,), False),
    ("LeftHeel", "LeftFoot", (19,), False),
    ("Spine", "Hips", (2,), True),
    ("Chest", "Spine", (3, 12), True),
    ("Head", "Chest", (0, 1), True),
    ("HeadMarkerA", "Head", (0,), False),
    ("HeadMarkerB", "Head", (1,), False),
    ("RightArm", "Chest", (3,), True),
    ("RightForeArm", "RightArm", (4,), True),
    ("RightForeArmMarker", "RightForeArm", (5,), False),
    ("RightHand", "RightForeArm", (6,), False),
    ("RightHandMarker", "RightHand", (22,), False),
    ("LeftArm", "Chest", (12,), True),
    ("LeftForeArm", "LeftArm", (13,), True),
    ("LeftForeArmMarkerA", "LeftForeArm", (14,), False),
    ("LeftForeArmMarkerB", "LeftForeArm", (21,), False),
    ("LeftHand", "LeftForeArm", (15,), False),
]

JOINT_NAMES: list[str] = [row[0] for row in JOINT_TABLE]
PARENTS: np.ndarray = np.array(
    [-1 if row[1] is None else JOINT_NAMES.index(row[1]) for row in JOINT_TABLE], dtype=np.int64
)
MARKERS: list[tuple[int, ...]] = [row[2] for row in JOINT_TABLE]
ROTATING_JOINTS: np.ndarray = np.array([i for i, row in enumerate(JOINT_TABLE) if row[3]], dtype=np.int64)


@dataclass
class Skeleton:
    """Joint names, parent indices and rest offsets (J, 3) in cm, in the parent's frame."""

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    rotating: np.ndarray = field(default_factory=lambda: ROTATING_JOINTS.copy())

    def __post_init__(self) -> None:
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        if self.offsets.shape != (len(self.names), 3):
            raise ValueError(f"skeleton offsets: expected shape ({len(self.names)}, 3), got {self.offsets.shape}")
        for j, p in enumerate(self.parents):
            if p >= j:
                raise ValueError(f"skeleton: joint {self.names[j]!r} has parent index {p}; parents must come first")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "parents": self.parents.tolist(), "offsets": self.offsets.round(4).tolist(),
                "rotating": self.rotating.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Skeleton":
        return cls(list(d["names"]), np.array(d["parents"]), np.array(d["offsets"]), np.array(d["rotating"]))


@dataclass
class Pose:
    """One frame of the dance, as the live engine hands it to the bridge.

    root_position: (3,) cm, our frame (right-handed, Y up). local_rotations: (J, 4) quaternions
    (x, y, z, w), one per joint of the skeleton, relative to the parent (T-pose rest = identity).
    """

    frame_index: int
    time: float  # seconds on the engine's clock when the frame was due
    root_position: np.ndarray
    local_rotations: np.ndarray
