"""The motion feature definition (numpy only; the live path imports it).

Per frame t, D = 4 + 3 * len(skeleton.rotating) float32 values:
    [root_dx, root_dz]  root (Hips) displacement from frame t-1 to t, in cm/frame, expressed in the
                        body's facing frame of frame t-1 (x: the facing frame's +X, z: forward)
    root_dyaw           heading change from t-1 to t, rad/frame, wrapped to [-pi, pi)
    root_y              root height, cm
    <joint>_e{x,y,z}    exp-map of each rotating joint's local rotation (skeleton.rotating order);
                        for the Hips (the root) the heading is removed first, so it holds tilt only.
                        Kept continuous over time (`expmap_continuous`): a joint turning through 180
                        degrees keeps its branch instead of jumping by 2*pi (any norm decodes).
Frame 0's velocities are 0. Heading ("yaw") is the angle about +Y of the Hips' forward axis (+Z)
projected on the ground; yaw 0 faces +Z, and yaw increases turning +Z towards +X.

`MotionIntegrator` inverts this one frame at a time (the live engine's path); `MotionFeatures.decode`
runs the same integrator over a whole clip, so both give identical results.
"""
from __future__ import annotations

import numpy as np

from transflower.rotations import (expmap_continuous, expmap_from_quat, quat_from_expmap, quat_from_yaw, quat_mul,
                                   split_yaw, wrap_angle)
from transflower.skeleton import Skeleton

ROOT_FEATURES = ["root_dx", "root_dz", "root_dyaw", "root_y"]


def resample_motion(root: np.ndarray, rots: np.ndarray, fps_in: float, fps_out: float):
    """Resample root positions (linear) and local rotations (slerp) to a new frame rate."""
    if abs(fps_in - fps_out) < 1e-6:
        return root, rots
    from transflower.rotations import quat_slerp

    T = root.shape[0]
    n_out = int(np.floor((T - 1) * fps_out / fps_in)) + 1
    t = np.arange(n_out) * fps_in / fps_out
    i0 = np.clip(np.floor(t).astype(int), 0, T - 1)
    i1 = np.clip(i0 + 1, 0, T - 1)
    w = (t - i0)[:, None]
    root_out = root[i0] * (1 - w) + root[i1] * w
    rots_out = quat_slerp(rots[i0], rots[i1], w)  # w (N, 1) broadcasts over joints
    return root_out, rots_out


def features_from_bvh(path, fps: float) -> np.ndarray:
    """A BVH file -> its motion features at `fps` (a seed clip for generate and live)."""
    from transflower.bvh import read_bvh

    motion = read_bvh(path)
    root, rots = resample_motion(motion.root_positions, motion.local_rotations, motion.fps, fps)
    return MotionFeatures(motion.skeleton).encode(root, rots)


class MotionFeatures:
    def __init__(self, skeleton: Skeleton):
        self.skeleton = skeleton
        self.rotating = np.asarray(skeleton.rotating, dtype=np.int64)
        if self.rotating.size == 0 or self.rotating[0] != 0:
            raise ValueError("MotionFeatures: the root (joint 0) must be a rotating joint")
        self.names = list(ROOT_FEATURES) + [f"{skeleton.names[j]}_e{a}" for j in self.rotating for a in "xyz"]

    @property
    def dim(self) -> int:
        return len(self.names)

    def encode(self, root_positions, local_rotations) -> np.ndarray:
        """(T, 3) root positions (cm) and (T, J, 4) local rotations -> (T, D) float32 features."""
        root = np.asarray(root_positions, dtype=np.float64)
        local = np.asarray(local_rotations, dtype=np.float64)
        T = root.shape[0]
        J = self.skeleton.num_joints
        if root.shape != (T, 3) or local.shape != (T, J, 4):
            raise ValueError(f"encode: expected root_positions (T, 3) and local_rotations (T, {J}, 4), "
                             f"got {root.shape} and {local.shape}")
        yaw, hips_rest = split_yaw(local[:, 0])
        out = np.zeros((T, self.dim), dtype=np.float64)
        if T > 1:
            d = root[1:] - root[:-1]
            c, s = np.cos(yaw[:-1]), np.sin(yaw[:-1])
            # world = Ry(yaw) @ local  =>  local = Ry(-yaw) @ world
            out[1:, 0] = c * d[:, 0] - s * d[:, 2]
            out[1:, 1] = s * d[:, 0] + c * d[:, 2]
            out[1:, 2] = wrap_angle(yaw[1:] - yaw[:-1])
        out[:, 3] = root[:, 1]
        rots = local[:, self.rotating].copy()
        rots[:, 0] = hips_rest
        out[:, 4:] = expmap_continuous(expmap_from_quat(rots), axis=0).reshape(T, -1)
        return out.astype(np.float32)

    def mirror_permutation(self) -> tuple[np.ndarray, np.ndarray]:
        """(index, sign) so that `features[:, index] * sign` is the left-right mirrored dance.

        Mirroring across the body's sagittal plane (x -> -x): Left* and Right* joints swap; a rotation
        (x, y, z, w) becomes (x, -y, -z, w), so an exp-map (ex, ey, ez) becomes (ex, -ey, -ez); root
        sideways velocity and heading change flip sign. Raises ValueError if a Left/Right joint has no partner.
        """
        names = list(self.skeleton.names)
        rot = [names[j] for j in self.rotating]
        partner = []
        for n in rot:
            m = n.replace("Left", "\0").replace("Right", "Left").replace("\0", "Right")
            if m not in rot:
                raise ValueError(f"mirror: joint {n!r} has no rotating partner {m!r}")
            partner.append(rot.index(m))
        index = list(range(4)) + [4 + 3 * partner[k] + a for k in range(len(rot)) for a in range(3)]
        sign = [-1.0, 1.0, -1.0, 1.0] + [1.0, -1.0, -1.0] * len(rot)
        return np.asarray(index), np.asarray(sign, dtype=np.float32)

    def mirror(self, features: np.ndarray) -> np.ndarray:
        index, sign = self.mirror_permutation()
        return (np.asarray(features)[:, index] * sign).astype(np.float32)

    def decode(self, features, start_position=None, start_yaw: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(T, D) features -> (root_positions (T, 3), local_rotations (T, J, 4)).

        start_position: the root's ground position at frame 0 (x, z used; y always comes from the
        features); default (0, y, 0). start_yaw: the heading at frame 0.
        """
        f = np.asarray(features)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"decode: expected features (T, {self.dim}), got {f.shape}")
        T = f.shape[0]
        integ = MotionIntegrator(self, start_position=start_position, start_yaw=start_yaw)
        root = np.empty((T, 3))
        local = np.empty((T, self.skeleton.num_joints, 4))
        for t in range(T):
            root[t], local[t] = integ.step(f[t])
        return root, local


class MotionIntegrator:
    """Streaming inverse of MotionFeatures: state (ground position, yaw), one feature row per step.

    `step` returns preallocated arrays that the next call overwrites: copy them to keep them.
    """

    def __init__(self, features: MotionFeatures, start_position=None, start_yaw: float = 0.0):
        self.features = features
        self._rotating = features.rotating
        J = features.skeleton.num_joints
        self._root = np.zeros(3)
        self._local = np.zeros((J, 4))
        self._local[:, 3] = 1.0
        self.reset(start_position, start_yaw)

    def reset(self, start_position=None, start_yaw: float = 0.0) -> None:
        p = np.zeros(3) if start_position is None else np.asarray(start_position, dtype=np.float64)
        self.position = np.array([p[0], 0.0, p[2]])
        self.yaw = float(start_yaw)

    def step(self, row) -> tuple[np.ndarray, np.ndarray]:
        row = np.asarray(row, dtype=np.float64)
        dx, dz, dyaw, y = float(row[0]), float(row[1]), float(row[2]), float(row[3])
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        self.position[0] += c * dx + s * dz
        self.position[2] += -s * dx + c * dz
        self.yaw = float(wrap_angle(self.yaw + dyaw))
        self._root[0] = self.position[0]
        self._root[1] = y
        self._root[2] = self.position[2]
        q = quat_from_expmap(row[4:].reshape(-1, 3))
        q[0] = quat_mul(quat_from_yaw(self.yaw), q[0])
        self._local[self._rotating] = q
        return self._root, self._local
