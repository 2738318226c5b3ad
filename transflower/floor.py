"""Keep the dancer's feet out of the floor.

The model samples root height and leg rotations as separate features, so a sampled pose can put a
foot below the ground (y = 0) though no training pose does. `FloorClamp` runs forward kinematics of
the leg chains only and lifts the root by the depth of the lowest foot joint. It never pulls the body
down, so jumps stay jumps. Used per frame by the live loop and over whole clips by `generate`.
"""
from __future__ import annotations

import numpy as np

from transflower.rotations import quat_apply, quat_mul
from transflower.skeleton import Skeleton

FOOT_JOINTS = ("RightToe", "RightHeel", "LeftToe", "LeftHeel")


class FloorClamp:
    def __init__(self, skeleton: Skeleton, floor_y: float = 0.0):
        self.floor_y = float(floor_y)
        names = list(skeleton.names)
        feet = [names.index(n) for n in FOOT_JOINTS if n in names]
        # the joints on the way from the root to any foot joint, in parent-first order
        chain = set()
        for j in feet:
            while j >= 0:
                chain.add(j)
                j = int(skeleton.parents[j])
        self.chain = np.array(sorted(chain), dtype=np.int64)
        self.feet = np.array(feet, dtype=np.int64)
        self.parents = skeleton.parents
        self.offsets = skeleton.offsets
        self.lifts = 0  # frames that needed a lift

    def lowest_foot(self, root_positions: np.ndarray, local_rotations: np.ndarray) -> np.ndarray:
        """Height of the lowest foot joint per frame: root (..., 3), local rotations (..., J, 4)."""
        shape = local_rotations.shape[:-2]
        gpos = np.zeros(shape + (len(self.parents), 3))
        grot = np.zeros(shape + (len(self.parents), 4))
        for j in self.chain:
            p = self.parents[j]
            if p < 0:
                grot[..., j, :] = local_rotations[..., j, :]
                gpos[..., j, :] = root_positions
            else:
                grot[..., j, :] = quat_mul(grot[..., p, :], local_rotations[..., j, :])
                gpos[..., j, :] = gpos[..., p, :] + quat_apply(grot[..., p, :], self.offsets[j])
        return gpos[..., self.feet, 1].min(axis=-1)

    def apply(self, root_positions: np.ndarray, local_rotations: np.ndarray) -> None:
        """Lift root_positions[..., 1] in place wherever a foot is below the floor."""
        depth = self.floor_y - self.lowest_foot(root_positions, local_rotations)
        lift = np.maximum(depth, 0.0)
        self.lifts += int(np.count_nonzero(lift))
        root_positions[..., 1] += lift
