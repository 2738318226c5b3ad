"""The feet of a motion-feature pose, in torch: what the foot-contact training term measures.

A pose row (standardised motion features, transflower.motion_features' layout) holds the root's
displacement and turn in the previous frame's facing frame, its height, and exp-maps (the Hips' without
its heading). `FootGeometry` runs forward kinematics of the leg chains only, heading-free (root at
(0, root_y, 0)), to get each foot point (toe, heel) about the root, and from two consecutive poses the
horizontal displacement of a foot point in the world (expressed in the first pose's facing frame):

    d = (dx, dz) of the second pose  +  R(dyaw) p_second  -  p_first        (xz only, cm per frame)

which is what `benchmarks.metrics.kinematics` slides on (the same lowest foot point, its world speed).
Differentiable, batched over any leading axes; the geometry (skeleton offsets, scaler) is data the
trainer hands over (`TransflowerLive.set_foot_geometry`), not learned.
"""
from __future__ import annotations

import torch
import torch.nn as nn

FOOT_POINTS = ("RightToe", "RightHeel", "LeftToe", "LeftHeel")


def quat_from_expmap(e: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 4) (x, y, z, w); smooth at 0 (sin(a/2)/a by its series there)."""
    a = torch.linalg.vector_norm(e, dim=-1, keepdim=True)
    small = a < 1e-4
    safe = torch.where(small, torch.ones_like(a), a)
    k = torch.where(small, 0.5 - a * a / 48.0, torch.sin(0.5 * safe) / safe)
    return torch.cat([e * k, torch.cos(0.5 * a)], dim=-1)


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ax, ay, az, aw = a.unbind(-1)
    bx, by, bz, bw = b.unbind(-1)
    return torch.stack([aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw,
                        aw * bw - ax * bx - ay * by - az * bz], dim=-1)


def quat_apply(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate v (..., 3) by unit q (..., 4)."""
    u, w = q[..., :3], q[..., 3:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


class FootGeometry(nn.Module):
    """skeleton: {'names', 'parents', 'offsets'} (features.json's); rotating: joint index of each exp-map;
    mean / std: the motion scaler; fps: frames per second (speeds in m/s)."""

    def __init__(self, skeleton: dict, rotating, mean, std, fps: float):
        super().__init__()
        names = list(skeleton["names"])
        parents = [int(p) for p in skeleton["parents"]]
        self.feet = [names.index(n) for n in FOOT_POINTS]
        chain = set()
        for j in self.feet:
            while j >= 0:
                chain.add(j)
                j = parents[j]
        self.chain = sorted(chain)  # parent first
        self.parents = parents
        slot = {int(j): s for s, j in enumerate(rotating)}
        self.slot = [slot.get(j, -1) for j in range(len(names))]
        self.fps = float(fps)
        self.register_buffer("offsets", torch.as_tensor(skeleton["offsets"], dtype=torch.float32), persistent=False)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32), persistent=False)

    def points(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised poses (..., D) -> foot points about the root, heading-free, (..., 4, 3) cm."""
        u = x * self.std + self.mean
        q_rot = quat_from_expmap(u[..., 4:].reshape(*u.shape[:-1], -1, 3))
        identity = torch.zeros(*u.shape[:-1], 4, dtype=u.dtype, device=u.device)
        identity[..., 3] = 1.0
        grot, gpos = {}, {}
        for j in self.chain:
            q = q_rot[..., self.slot[j], :] if self.slot[j] >= 0 else identity
            p = self.parents[j]
            if p < 0:
                grot[j] = q
                gpos[j] = torch.stack([torch.zeros_like(u[..., 3]), u[..., 3], torch.zeros_like(u[..., 3])], dim=-1)
            else:
                grot[j] = quat_mul(grot[p], q)
                gpos[j] = gpos[p] + quat_apply(grot[p], self.offsets[j].expand_as(gpos[p]))
        return torch.stack([gpos[j] for j in self.feet], dim=-2)

    def step(self, first: torch.Tensor, second: torch.Tensor, about_root: bool = False):
        """Two consecutive standardised poses (..., D) -> (the second pose's foot points (..., 4, 3) cm,
        each point's horizontal world speed from the first to the second (..., 4) m/s[, with about_root: its
        horizontal speed about the root (the legs' own motion, the root's travel left out) (..., 4) m/s])."""
        p0, p1 = self.points(first), self.points(second)
        u1 = second * self.std + self.mean
        dx, dz, dyaw = u1[..., 0:1], u1[..., 1:2], u1[..., 2:3]
        c, s = torch.cos(dyaw), torch.sin(dyaw)
        x1 = c * p1[..., 0] + s * p1[..., 2]  # R(dyaw): the second pose's points in the first's facing frame
        z1 = -s * p1[..., 0] + c * p1[..., 2]
        d = torch.stack([dx + x1 - p0[..., 0], dz + z1 - p0[..., 2]], dim=-1)
        speed = torch.sqrt((d * d).sum(-1) + 1e-8) * self.fps / 100.0
        if not about_root:
            return p1, speed
        r = torch.stack([x1 - p0[..., 0], z1 - p0[..., 2]], dim=-1)
        return p1, speed, torch.sqrt((r * r).sum(-1) + 1e-8) * self.fps / 100.0
