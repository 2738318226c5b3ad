"""Vectorised rotation maths (numpy only).

Every function accepts any leading batch shape. Quaternions are (x, y, z, w), as scipy and Unity
write them; rotation matrices act on column vectors (v' = R @ v); Euler angles are in radians.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def _as_float(a) -> np.ndarray:
    a = np.asarray(a)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def identity_quat(shape: tuple[int, ...] = ()) -> np.ndarray:
    q = np.zeros(tuple(shape) + (4,))
    q[..., 3] = 1.0
    return q


def quat_normalize(q) -> np.ndarray:
    q = _as_float(q)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / np.maximum(n, _EPS)


def quat_mul(a, b) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    a = _as_float(a)
    b = _as_float(b)
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_conj(q) -> np.ndarray:
    q = _as_float(q)
    return np.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def quat_inv(q) -> np.ndarray:
    q = _as_float(q)
    return quat_conj(q) / np.maximum(np.sum(q * q, axis=-1, keepdims=True), _EPS)


def quat_apply(q, v) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    q = _as_float(q)
    v = _as_float(v)
    u = q[..., :3]
    w = q[..., 3:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_canonical(q) -> np.ndarray:
    """The same rotation with w >= 0."""
    q = _as_float(q)
    return np.where(q[..., 3:] < 0, -q, q)


def quat_continuous(q, axis: int = 0) -> np.ndarray:
    """Flip signs along `axis` (time) so consecutive quaternions have a non-negative dot product."""
    q = np.moveaxis(_as_float(q).copy(), axis, 0)
    if q.shape[0] > 1:
        dots = np.sum(q[1:] * q[:-1], axis=-1)
        flips = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)
        q[1:] *= flips[..., None]
    return np.moveaxis(q, 0, axis)


def matrix_from_quat(q) -> np.ndarray:
    q = quat_normalize(q)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    m = np.stack(
        [
            1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quat_from_matrix(m) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions with w >= 0 (Shepperd's method)."""
    m = _as_float(m)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    tr = m00 + m11 + m22
    # four candidate solutions; pick the numerically best per element
    cands = np.stack(
        [
            np.stack([1 + 2 * m00 - tr, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], -1),
            np.stack([m[..., 0, 1] + m[..., 1, 0], 1 + 2 * m11 - tr, m[..., 1, 2] + m[..., 2, 1], m[..., 0, 2] - m[..., 2, 0]], -1),
            np.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m22 - tr, m[..., 1, 0] - m[..., 0, 1]], -1),
            np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1], 1 + tr], -1),
        ],
        axis=-2,
    )
    diag = np.stack([m00, m11, m22, tr], axis=-1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    return quat_canonical(quat_normalize(q))


def quat_from_axis_angle(axis, angle) -> np.ndarray:
    axis = _as_float(axis)
    angle = _as_float(angle)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), _EPS)
    half = 0.5 * angle[..., None]
    return np.concatenate([axis * np.sin(half), np.cos(half)], axis=-1)


def quat_from_expmap(e) -> np.ndarray:
    """Exponential map (axis * angle, (..., 3)) -> unit quaternion. Exact at angle 0."""
    e = _as_float(e)
    theta = np.linalg.norm(e, axis=-1, keepdims=True)
    half = 0.5 * theta
    small = theta < 1e-6
    safe = np.where(small, 1.0, theta)
    # sin(theta/2)/theta, Taylor series near 0
    k = np.where(small, 0.5 - theta * theta / 48.0, np.sin(half) / safe)
    return np.concatenate([e * k, np.cos(half)], axis=-1)


def expmap_from_quat(q) -> np.ndarray:
    """Unit quaternion -> exponential map with angle in [0, pi]."""
    q = quat_canonical(quat_normalize(q))
    v = q[..., :3]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    w = np.clip(q[..., 3:], -1.0, 1.0)
    theta = 2.0 * np.arctan2(s, w)  # in [0, pi] since w >= 0
    small = s < 1e-6
    safe = np.where(small, 1.0, s)
    # theta / s -> 2 / w as s -> 0 (w -> 1)
    k = np.where(small, 2.0 / np.maximum(w, _EPS) * (1.0 + s * s / 3.0), theta / safe)
    return v * k


def expmap_continuous(e, axis: int = 0) -> np.ndarray:
    """Exp-maps (..., 3) made continuous along `axis` (time): each vector takes, of the equivalent
    representations e + 2*pi*k*e/|e| (k = -1, 0, 1: the same rotation), the one nearest the previous
    frame's, so a joint turning through 180 degrees does not jump by 2*pi in feature space."""
    e = np.moveaxis(_as_float(e).copy(), axis, 0)
    for t in range(1, e.shape[0]):
        cur, prev = e[t], e[t - 1]
        theta = np.linalg.norm(cur, axis=-1, keepdims=True)
        unit = cur / np.maximum(theta, _EPS)
        best, best_d = cur, np.linalg.norm(cur - prev, axis=-1, keepdims=True)
        for k in (-1.0, 1.0):
            cand = cur + 2.0 * np.pi * k * unit
            d = np.linalg.norm(cand - prev, axis=-1, keepdims=True)
            take = d < best_d
            best, best_d = np.where(take, cand, best), np.where(take, d, best_d)
        e[t] = best
    return np.moveaxis(e, 0, axis)


_AXES = {"X": 0, "Y": 1, "Z": 2}


def _axis_quat(axis: str, angle: np.ndarray) -> np.ndarray:
    q = np.zeros(angle.shape + (4,))
    q[..., _AXES[axis]] = np.sin(0.5 * angle)
    q[..., 3] = np.cos(0.5 * angle)
    return q


def quat_from_euler(angles, order: str = "ZXY") -> np.ndarray:
    """Intrinsic Euler angles (radians, (..., 3), in the order given) -> quaternion.

    As BVH uses them: channels "Zrotation Xrotation Yrotation" give R = Rz(a0) @ Rx(a1) @ Ry(a2).
    (scipy: Rotation.from_euler(order.upper(), angles).)
    """
    angles = _as_float(angles)
    order = order.upper()
    if len(order) != 3 or any(c not in _AXES for c in order):
        raise ValueError(f"Euler order must be three of X, Y, Z, got {order!r}")
    q = _axis_quat(order[0], angles[..., 0])
    for i in (1, 2):
        q = quat_mul(q, _axis_quat(order[i], angles[..., i]))
    return q


def euler_from_quat(q, order: str = "ZXY") -> np.ndarray:
    """Quaternion -> intrinsic Euler angles (radians) in `order` (Tait-Bryan: three distinct axes).

    The inverse of quat_from_euler; at gimbal lock the third angle is set to 0.
    """
    order = order.upper()
    if len(order) != 3 or any(c not in _AXES for c in order):
        raise ValueError(f"Euler order must be three of X, Y, Z, got {order!r}")
    m = matrix_from_quat(q)
    i, j, k = (_AXES[c] for c in order)
    if len({i, j, k}) != 3:
        raise ValueError(f"euler_from_quat supports Tait-Bryan orders (three distinct axes), got {order!r}")
    # Tait-Bryan: R = R_i(a) R_j(b) R_k(c); sign of the permutation
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    sb = np.clip(sign * m[..., i, k], -1.0, 1.0)
    b = np.arcsin(sb)
    cb = np.sqrt(np.maximum(1 - sb * sb, 0.0))
    lock = cb < 1e-7
    a = np.arctan2(-sign * m[..., j, k], m[..., k, k])
    c = np.arctan2(-sign * m[..., i, j], m[..., i, i])
    # gimbal lock: c = 0, a absorbs the rest
    a_lock = np.arctan2(sign * m[..., k, j], m[..., j, j])
    a = np.where(lock, a_lock, a)
    c = np.where(lock, 0.0, c)
    return np.stack([a, b, c], axis=-1)


def sixd_from_matrix(m) -> np.ndarray:
    """Rotation matrix -> 6D representation (the first two columns, concatenated)."""
    m = _as_float(m)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def matrix_from_sixd(d) -> np.ndarray:
    """6D representation -> rotation matrix by Gram-Schmidt (Zhou et al. 2019)."""
    d = _as_float(d)
    a1, a2 = d[..., :3], d[..., 3:6]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), _EPS)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), _EPS)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def quat_between(u, v) -> np.ndarray:
    """Shortest-arc rotation taking direction u to direction v (..., 3). Antiparallel: 180 degrees
    about an axis perpendicular to u."""
    u = _as_float(u)
    v = _as_float(v)
    u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), _EPS)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)
    c = np.cross(u, v)
    d = np.sum(u * v, axis=-1, keepdims=True)
    q = np.concatenate([c, 1.0 + d], axis=-1)
    anti = (1.0 + d[..., 0]) < 1e-9
    if np.any(anti):
        # any axis perpendicular to u
        alt = np.cross(u, np.array([1.0, 0.0, 0.0]))
        small = np.linalg.norm(alt, axis=-1, keepdims=True) < 1e-6
        alt = np.where(small, np.cross(u, np.array([0.0, 1.0, 0.0])), alt)
        alt = alt / np.maximum(np.linalg.norm(alt, axis=-1, keepdims=True), _EPS)
        q_anti = np.concatenate([alt, np.zeros(alt.shape[:-1] + (1,))], axis=-1)
        q = np.where(anti[..., None], q_anti, q)
    return quat_normalize(q)


def quat_slerp(q0, q1, t) -> np.ndarray:
    """Spherical linear interpolation along the shorter arc; t broadcasts against the batch shape."""
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    t = _as_float(t)[..., None]
    d = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(d < 0, -q1, q1)
    d = np.abs(d)
    close = d > 0.9995
    theta = np.arccos(np.clip(d, -1.0, 1.0))
    s = np.sin(theta)
    safe = np.where(close, 1.0, s)
    w0 = np.where(close, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(close, t, np.sin(t * theta) / safe)
    return quat_normalize(w0 * q0 + w1 * q1)


# --- yaw (heading about +Y) ------------------------------------------------------------------

def yaw_from_quat(q, forward=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Heading angle (radians, about +Y) of the rotated `forward` vector projected on the XZ plane.

    Yaw 0 means facing +Z; positive yaw turns +Z towards +X (a right-handed rotation about +Y).
    """
    f = quat_apply(q, np.broadcast_to(np.asarray(forward, dtype=np.float64), np.shape(q)[:-1] + (3,)))
    return np.arctan2(f[..., 0], f[..., 2])


def quat_from_yaw(yaw) -> np.ndarray:
    yaw = _as_float(yaw)
    q = np.zeros(yaw.shape + (4,))
    q[..., 1] = np.sin(0.5 * yaw)
    q[..., 3] = np.cos(0.5 * yaw)
    return q


def split_yaw(q, forward=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """q = quat_from_yaw(yaw) * rest: returns (yaw, rest), rest having no heading left."""
    yaw = yaw_from_quat(q, forward)
    rest = quat_mul(quat_from_yaw(-yaw), q)
    return yaw, rest


def wrap_angle(a) -> np.ndarray:
    """Wrap to [-pi, pi)."""
    a = _as_float(a)
    return (a + np.pi) % (2.0 * np.pi) - np.pi


# --- weighted Kabsch --------------------------------------------------------------------------

def weighted_kabsch(rest, observed, weights=None) -> np.ndarray:
    """Best rotations R (as quaternions) minimising sum_k w_k |R rest_k - observed_k|^2.

    rest, observed: (..., K, 3) vectors (no centring: these are directions/offsets from a pivot);
    weights: (K,) or (..., K). Returns (..., 4). Uses the SVD with a reflection fix, so a
    degenerate (planar / collinear) set still gives a proper rotation.
    """
    rest = _as_float(rest)
    observed = _as_float(observed)
    rest, observed = np.broadcast_arrays(rest, observed)
    if weights is None:
        weights = np.ones(rest.shape[-2])
    w = np.broadcast_to(_as_float(weights), rest.shape[:-1])
    h = np.einsum("...k,...ki,...kj->...ij", w, observed, rest)  # sum w * obs rest^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    s = np.ones(h.shape[:-1])
    s[..., 2] = d
    r = (u * s[..., None, :]) @ vt
    return quat_from_matrix(r)


# --- scalar forms ---------------------------------------------------------------------------------
# The same maths on plain floats, for per-frame loops: `transflower.kernels` compiles these with numba
# (tests/test_kernels.py checks them against the vectorised forms above).

def quat_mul_scalar(ax, ay, az, aw, bx, by, bz, bw):
    """quat_mul for one pair, as a tuple (x, y, z, w)."""
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


def quat_apply_scalar(qx, qy, qz, qw, vx, vy, vz):
    """quat_apply for one vector, as a tuple (x, y, z)."""
    tx, ty, tz = 2.0 * (qy * vz - qz * vy), 2.0 * (qz * vx - qx * vz), 2.0 * (qx * vy - qy * vx)
    return (vx + qw * tx + (qy * tz - qz * ty), vy + qw * ty + (qz * tx - qx * tz), vz + qw * tz + (qx * ty - qy * tx))


def quat_from_expmap_scalar(ex, ey, ez):
    """quat_from_expmap for one exp-map vector, as a tuple (x, y, z, w)."""
    theta = (ex * ex + ey * ey + ez * ez) ** 0.5
    if theta < 1e-6:
        k = 0.5 - theta * theta / 48.0
    else:
        k = np.sin(0.5 * theta) / theta
    return (ex * k, ey * k, ez * k, np.cos(0.5 * theta))


def wrap_angle_scalar(a):
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def quat_slerp_into(out, q0, q1, t):
    """quat_slerp of (..., 4) unit quaternions into `out` (the same formulas), one scalar t; returns out."""
    for idx in np.ndindex(out.shape[:-1]):
        out[idx] = quat_slerp_scalar(*q0[idx], *q1[idx], t)
    return out


def quat_slerp_scalar(ax, ay, az, aw, bx, by, bz, bw, t):
    """quat_slerp of two unit quaternions (shorter arc; nlerp when nearly equal), as a tuple."""
    d = ax * bx + ay * by + az * bz + aw * bw
    if d < 0.0:
        bx, by, bz, bw, d = -bx, -by, -bz, -bw, -d
    if d > 0.9995:
        w0, w1 = 1.0 - t, t
    else:
        theta = np.arccos(min(d, 1.0))
        s = np.sin(theta)
        w0, w1 = np.sin((1.0 - t) * theta) / s, np.sin(t * theta) / s
    x, y, z, w = w0 * ax + w1 * bx, w0 * ay + w1 * by, w0 * az + w1 * bz, w0 * aw + w1 * bw
    n = max((x * x + y * y + z * z + w * w) ** 0.5, _EPS)
    return (x / n, y / n, z / n, w / n)

# --- allocation-free products for per-frame code ----------------------------------------------

def _hamilton_tensor() -> np.ndarray:
    """T with (a * b)_k = sum_ij a_i b_j T_ijk for quaternions (x, y, z, w)."""
    t = np.zeros((4, 4, 4))
    e = np.eye(4)
    for i in range(4):
        for j in range(4):
            t[i, j] = quat_mul(e[i], e[j])
    return t


HAMILTON = _hamilton_tensor()


def quat_mul_into(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Hamilton product a * b written into `out` (same shapes, float64; `out` must not alias a or b).

    One einsum over a constant bilinear tensor: no temporaries proportional to the batch, so per-frame
    code can call it on preallocated arrays."""
    return np.einsum("...i,...j,ijk->...k", a, b, HAMILTON, out=out)
