"""Keep the dancer's feet out of the floor.

The model samples root height and leg rotations as separate features, so a sampled pose can put a
foot below the ground (y = 0) though no training pose does. `FloorClamp` runs forward kinematics of
the leg chains only and lifts the root by the depth of the lowest foot joint. It never pulls the body
down, so jumps stay jumps. Used per frame by the live loop (every dancer of a crowd in one call) and
over whole clips by `generate`. The kinematics is a compiled kernel (transflower.kernels) writing into
buffers kept between calls: a frame allocates nothing.
"""
from __future__ import annotations

import numpy as np

from transflower.skeleton import Skeleton

FOOT_JOINTS = ("RightToe", "RightHeel", "LeftToe", "LeftHeel")


class FloorClamp:
    def __init__(self, skeleton: Skeleton, floor_y: float = 0.0):
        from transflower import kernels

        self._kernel, self._lift = kernels.lowest_foot, kernels.lift_feet
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
        self.parents = np.ascontiguousarray(skeleton.parents, dtype=np.int64)
        self.offsets = np.ascontiguousarray(skeleton.offsets, dtype=np.float64)
        J = len(self.parents)
        self._grot, self._gpos = np.zeros((J, 4)), np.zeros((J, 3))
        self._low = np.zeros(0)
        self.lifts = 0  # frames that needed a lift

    def lowest_foot(self, root_positions: np.ndarray, local_rotations: np.ndarray) -> np.ndarray:
        """Height of the lowest foot joint per frame: root (..., 3), local rotations (..., J, 4).
        Returns a view of a buffer the next call overwrites."""
        shape = np.shape(local_rotations)[:-2]
        J = len(self.parents)
        root = np.ascontiguousarray(root_positions, dtype=np.float64).reshape(-1, 3)
        rots = np.ascontiguousarray(local_rotations, dtype=np.float64).reshape(-1, J, 4)
        if self._low.shape[0] != root.shape[0]:
            self._low = np.zeros(root.shape[0])
        self._kernel(root, rots, self.chain, self.parents, self.offsets, self.feet, self._grot, self._gpos, self._low)
        return self._low.reshape(shape)

    def apply(self, root_positions: np.ndarray, local_rotations: np.ndarray) -> None:
        """Lift root_positions[..., 1] in place wherever a foot is below the floor."""
        root, rots = root_positions, local_rotations
        live = (isinstance(root, np.ndarray) and root.ndim == 2 and root.dtype == np.float64 and root.flags.c_contiguous
                and rots.dtype == np.float64 and rots.flags.c_contiguous and rots.ndim == 3)
        if not live:  # whole clips, other shapes or dtypes: through a float64 copy
            low = self.lowest_foot(root, rots)
            lift = np.maximum(self.floor_y - low, 0.0)
            self.lifts += int(np.count_nonzero(lift))
            root[..., 1] += lift
            return
        if self._low.shape[0] != root.shape[0]:
            self._low = np.zeros(root.shape[0])
        self.lifts += self._lift(root, rots, self.chain, self.parents, self.offsets, self.feet, self._grot, self._gpos,
                                 self._low, self.floor_y)
