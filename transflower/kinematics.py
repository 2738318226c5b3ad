"""Forward kinematics: the one place joint positions come from local rotations (numpy).

`forward_kinematics(parents, offsets, local_rotations, root_positions)`: p_j = p_parent + G_parent * offset_j,
G_j = G_parent * L_j, with the root at `root_positions` (its own offset is not added, as BVH files are
read here). Vectorised over any leading axes (frames, dancers) and over each hierarchy level (a handful of
numpy steps per call, not one per joint). Works in either frame (ours in cm, Unity's in m): the conversion
commutes with FK. The compiled per-frame forms for the live path's leg chains are in `transflower.kernels`.
"""
from __future__ import annotations

import numpy as np

from transflower.rotations import quat_apply, quat_mul


def depth_levels(parents) -> list[np.ndarray]:
    """The joints grouped by depth in the hierarchy, root level first (each parent before its children)."""
    parents = np.asarray(parents)
    depth = np.zeros(len(parents), dtype=np.intp)
    for j, p in enumerate(parents):  # once per hierarchy, not per frame
        depth[j] = 0 if p < 0 else depth[p] + 1
    return [np.flatnonzero(depth == d) for d in range(int(depth.max()) + 1)] if len(parents) else []


def forward_kinematics(parents, offsets, local_rotations, root_positions) -> tuple[np.ndarray, np.ndarray]:
    """Global positions (..., J, 3) and rotations (..., J, 4) from local rotations (..., J, 4) (x, y, z, w)
    and root positions (..., 3)."""
    parents = np.asarray(parents)
    local_rotations = np.asarray(local_rotations, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    J = len(parents)
    if local_rotations.shape[-2:] != (J, 4) or offsets.shape != (J, 3):
        raise ValueError(f"forward_kinematics: expected local rotations (..., {J}, 4) and offsets ({J}, 3), "
                         f"got {local_rotations.shape} and {offsets.shape}")
    root_positions = np.broadcast_to(np.asarray(root_positions, dtype=np.float64), local_rotations.shape[:-2] + (3,))
    pos = np.empty(local_rotations.shape[:-1] + (3,))
    rot = np.empty_like(local_rotations)
    for level in depth_levels(parents):
        par = parents[level]
        root = par < 0
        if root.any():
            rot[..., level[root], :] = local_rotations[..., level[root], :]
            pos[..., level[root], :] = root_positions[..., None, :]
        kids, kp = level[~root], par[~root]
        if len(kids):
            rot[..., kids, :] = quat_mul(rot[..., kp, :], local_rotations[..., kids, :])
            pos[..., kids, :] = pos[..., kp, :] + quat_apply(rot[..., kp, :], offsets[kids])
    return pos, rot
