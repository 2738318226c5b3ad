"""The dancers' bodies: motion features from the engine -> root + joint rotations -> the outputs (sinks).

For N dancers at once, into buffers made at start-up (a frame allocates nothing):
    body(features (N, D))   integrate root velocity / heading and exp-maps (transflower.kernels.integrate,
                            the streaming inverse of transflower.motion_features), keep each dancer within
                            the stage radius, lift sunk feet (transflower.floor)
    blend(alpha)            --fps other than the model's: slerp / lerp between the two newest model frames
    send(frame, t, sinks)   every dancer's pose to each output (transflower.bridge.sinks: VMC, the preview, a recorder)

VMC targets (`dancer_targets`): `--osc` once per dancer, or one HOST:PORT for dancer 0 and consecutive ports
for the others; a single dancer sends to every `--osc` target.
"""
from __future__ import annotations

import numpy as np

from transflower.errors import UserError


def dancer_targets(osc: list[str] | None, dancers: int) -> list[list[str]]:
    """--osc values -> the target list of each dancer."""
    from transflower.bridge.vmc import parse_target

    osc = list(osc or ["127.0.0.1:39539"])
    if dancers == 1:
        return [osc]
    if len(osc) == dancers:
        return [[t] for t in osc]
    if len(osc) == 1:
        host, port = parse_target(osc[0])
        if port + dancers - 1 > 65535:
            raise UserError(f"--osc {osc[0]}: {dancers} consecutive ports from {port} pass 65535")
        return [[f"{host}:{port + i}"] for i in range(dancers)]
    raise UserError(f"--osc given {len(osc)} times for --dancers {dancers}: give it once per dancer, "
                    "or once (HOST:PORT, consecutive ports for the others)")


class Crowd:
    def __init__(self, skeleton, dancers: int, stage_radius: float = 150.0, floor: bool = True, interpolate: bool = False):
        from transflower import kernels
        from transflower.floor import FloorClamp
        from transflower.motion_features import MotionFeatures
        from transflower.skeleton import Pose

        self._integrate, self._slerp = kernels.integrate, kernels.slerp_into
        self.skeleton, self.n = skeleton, int(dancers)
        J, N = skeleton.num_joints, self.n
        self.rotating = np.asarray(MotionFeatures(skeleton).rotating, np.int64)
        self.radius = float(stage_radius)
        self.position, self.yaw = np.zeros((N, 3)), np.zeros(N)
        self.root, self.rots = np.zeros((N, 3)), np.zeros((N, J, 4))
        self.rots[..., 3] = 1.0
        self.floor = FloorClamp(skeleton) if floor else None
        self.interpolate = interpolate
        if interpolate:  # the previous model frame, and what is sent (between the two)
            self.prev_root, self.prev_rots = self.root.copy(), self.rots.copy()
            self.out_root, self.out_rots = self.root.copy(), self.rots.copy()
            self._flat = (self.out_rots.reshape(-1, 4), self.prev_rots.reshape(-1, 4), self.rots.reshape(-1, 4))
        else:
            self.out_root, self.out_rots = self.root, self.rots
        self.poses = [Pose(0, 0.0, self.out_root[i], self.out_rots[i]) for i in range(N)]

    def body(self, features: np.ndarray) -> None:
        """The next model frame of every dancer from its motion features (N, D)."""
        if self.interpolate:
            np.copyto(self.prev_root, self.root)
            np.copyto(self.prev_rots, self.rots)
        self._integrate(features, self.position, self.yaw, self.rotating, self.radius, self.root, self.rots)
        if self.floor is not None:
            self.floor.apply(self.root, self.rots)

    def hold(self) -> None:
        """The first model frame: nothing to interpolate from yet."""
        np.copyto(self.prev_root, self.root)
        np.copyto(self.prev_rots, self.rots)

    def blend(self, alpha: float) -> None:
        np.multiply(self.prev_root, 1.0 - alpha, out=self.out_root)
        self.out_root += alpha * self.root
        self._slerp(self._flat[0], self._flat[1], self._flat[2], alpha)

    def send(self, frame_index: int, t: float, sinks) -> None:
        """This frame's poses (stamped with its index and time) to every sink (transflower.bridge.sinks), in order."""
        for pose in self.poses:
            pose.frame_index, pose.time = frame_index, t
        for sink in sinks:
            sink.send(self.poses)
