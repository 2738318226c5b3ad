"""BVH read/write and forward kinematics.

`read_bvh` reads any well-formed BVH (arbitrary hierarchy, per-joint channel orders, End Sites; the
root has 6 channels, other joints 3, and joints with 6 channels are tolerated: their position
channels are ignored, the OFFSET is used). End Sites with a non-zero offset become non-rotating
joints named `<parent>_End`; zero-offset End Sites (as `write_bvh` writes them) are dropped.

`write_bvh` writes the root as `Xposition Yposition Zposition Zrotation Xrotation Yrotation`, every
other joint as `Zrotation Xrotation Yrotation` (R = Rz Rx Ry, degrees), and gives each leaf joint a
zero-offset End Site. It writes atomically (temporary file in the same folder, then os.replace).

Root position channels are absolute (cm): `root_positions` is what the file's channels hold, and the
root's OFFSET (kept in skeleton.offsets[0]) is not added by `forward_kinematics`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transflower import kinematics
from transflower.errors import DataError
from transflower.rotations import euler_from_quat, quat_from_euler, quat_normalize
from transflower.skeleton import JOINT_NAMES, ROTATING_JOINTS, Skeleton

log = logging.getLogger(__name__)

_POS = {"xposition": 0, "yposition": 1, "zposition": 2}
_ROT = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}


@dataclass
class BvhMotion:
    skeleton: Skeleton
    fps: float
    root_positions: np.ndarray  # (T, 3) cm
    local_rotations: np.ndarray  # (T, J, 4) quaternions x, y, z, w

    @property
    def num_frames(self) -> int:
        return int(self.root_positions.shape[0])


def forward_kinematics(skeleton: Skeleton, root_positions, local_rotations) -> tuple[np.ndarray, np.ndarray]:
    """Global joint positions (..., T, J, 3) and rotations (..., T, J, 4) of a skeleton's motion
    (`transflower.kinematics.forward_kinematics` with the skeleton's hierarchy)."""
    return kinematics.forward_kinematics(skeleton.parents, skeleton.offsets, local_rotations, root_positions)


# --- reading -----------------------------------------------------------------------------------

class _Tokens:
    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.items: list[tuple[str, int]] = []
        self.motion_line = None
        for n, line in enumerate(lines, start=1):
            stripped = line.strip()
            if stripped.upper() == "MOTION":
                self.motion_line = n
                break
            self.items.extend((tok, n) for tok in stripped.split())
        self.i = 0

    def error(self, what: str, line: int | None = None) -> DataError:
        if line is None:
            line = self.items[self.i][1] if self.i < len(self.items) else (self.motion_line or "end of file")
        return DataError(f"{self.path}: line {line}: {what}")

    def next(self, expected: str) -> tuple[str, int]:
        if self.i >= len(self.items):
            raise self.error(f"unexpected end of hierarchy, expected {expected}")
        tok = self.items[self.i]
        self.i += 1
        return tok

    def expect(self, word: str) -> None:
        tok, line = self.next(repr(word))
        if tok.upper() != word.upper():
            raise self.error(f"expected {word!r}, got {tok!r}", line)

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise self.error(f"expected a number ({what}), got {tok!r}", line) from None

    def peek(self) -> str | None:
        return self.items[self.i][0] if self.i < len(self.items) else None


@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str]
    channel_start: int
    is_end: bool = False


def _parse_hierarchy(tk: _Tokens) -> tuple[list[_Joint], int]:
    tk.expect("HIERARCHY")
    tok, line = tk.next("ROOT")
    if tok.upper() != "ROOT":
        raise tk.error(f"expected 'ROOT', got {tok!r}", line)
    joints: list[_Joint] = []
    nchan = 0

    def parse_joint(parent: int, end_site: bool) -> None:
        nonlocal nchan
        if end_site:
            tk.expect("Site")
            name = f"{joints[parent].name}_End"
        else:
            name, _ = tk.next("a joint name")
        tk.expect("{")
        tk.expect("OFFSET")
        offset = np.array([tk.number("OFFSET x"), tk.number("OFFSET y"), tk.number("OFFSET z")])
        channels: list[str] = []
        if not end_site:
            tk.expect("CHANNELS")
            tok, line = tk.next("the channel count")
            try:
                count = int(tok)
            except ValueError:
                raise tk.error(f"expected the channel count (an integer), got {tok!r}", line) from None
            if count not in (0, 3, 6):
                raise tk.error(f"joint {name!r} has {count} channels; expected 3 or 6", line)
            for _ in range(count):
                ch, line = tk.next("a channel name")
                if ch.lower() not in _POS and ch.lower() not in _ROT:
                    raise tk.error(f"unknown channel {ch!r} for joint {name!r}", line)
                channels.append(ch.lower())
        index = len(joints)
        joints.append(_Joint(name, parent, offset, channels, nchan, is_end=end_site))
        nchan += len(channels)
        while True:
            tok, line = tk.next("'JOINT', 'End Site' or '}'")
            up = tok.upper()
            if up == "}":
                return
            if end_site:
                raise tk.error(f"expected '}}' closing the End Site, got {tok!r}", line)
            if up == "JOINT":
                parse_joint(index, False)
            elif up == "END":
                parse_joint(index, True)
            else:
                raise tk.error(f"expected 'JOINT', 'End Site' or '}}', got {tok!r}", line)

    parse_joint(-1, False)
    if tk.peek() is not None:
        raise tk.error(f"unexpected {tk.peek()!r} after the root joint's closing brace")
    return joints, nchan


def read_bvh(path) -> BvhMotion:
    """Read a BVH file. Raises DataError (naming the file and line) if it is missing or corrupt."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"{path}: cannot read BVH file: {e.strerror or e}") from None
    lines = text.splitlines()
    tk = _Tokens(path, lines)
    joints, nchan = _parse_hierarchy(tk)
    if tk.motion_line is None:
        raise DataError(f"{path}: no MOTION section (file truncated?)")

    # MOTION header
    n = tk.motion_line  # 1-based line of "MOTION"; lines[n] is the next line

    def header(prefix: str) -> tuple[str, int]:
        nonlocal n
        while n < len(lines) and not lines[n].strip():
            n += 1
        if n >= len(lines):
            raise DataError(f"{path}: line {n + 1}: unexpected end of file, expected '{prefix} ...'")
        line = lines[n].strip()
        n += 1
        if not line.lower().startswith(prefix.lower()):
            raise DataError(f"{path}: line {n}: expected '{prefix} ...', got {line[:40]!r}")
        return line[len(prefix):].strip(), n

    value, ln = header("Frames:")
    try:
        num_frames = int(value)
        if num_frames < 0:
            raise ValueError
    except ValueError:
        raise DataError(f"{path}: line {ln}: expected a frame count after 'Frames:', got {value!r}") from None
    value, ln = header("Frame Time:")
    try:
        frame_time = float(value)
        if not frame_time > 0:
            raise ValueError
    except ValueError:
        raise DataError(f"{path}: line {ln}: expected a positive frame time after 'Frame Time:', got {value!r}") from None

    data = np.empty((num_frames, nchan))
    f = 0
    while f < num_frames:
        if n >= len(lines):
            raise DataError(f"{path}: file truncated: expected {num_frames} frames, found {f}")
        line = lines[n]
        n += 1
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != nchan:
            raise DataError(f"{path}: line {n}: frame {f}: expected {nchan} channel values, got {len(parts)}")
        try:
            data[f] = [float(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise DataError(f"{path}: line {n}: frame {f}: non-numeric value {bad!r}") from None
        f += 1
    if not np.all(np.isfinite(data)):
        raise DataError(f"{path}: motion data contains non-finite values (nan/inf)")
    for rest in lines[n:]:
        if rest.strip():
            log.warning("%s: ignoring extra data after %d frames (line %d)", path, num_frames, n + 1)
            break

    return _build_motion(path, joints, data, 1.0 / frame_time)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _build_motion(path: Path, joints: list[_Joint], data: np.ndarray, fps: float) -> BvhMotion:
    T = data.shape[0]
    # drop zero-offset End Sites; keep the others as non-rotating joints
    keep = [j for j, jt in enumerate(joints) if not (jt.is_end and np.allclose(jt.offset, 0.0, atol=1e-9))]
    new_index = {old: new for new, old in enumerate(keep)}
    names = [joints[j].name for j in keep]
    parents = np.array([-1 if joints[j].parent < 0 else new_index[joints[j].parent] for j in keep])
    offsets = np.stack([joints[j].offset for j in keep]) if keep else np.zeros((0, 3))

    root = joints[0]
    root_positions = np.tile(root.offset, (T, 1))
    local = np.zeros((T, len(keep), 4))
    local[..., 3] = 1.0
    warned = False
    for new, old in enumerate(keep):
        jt = joints[old]
        rot_cols = [(jt.channel_start + k, _ROT[c]) for k, c in enumerate(jt.channels) if c in _ROT]
        pos_cols = [(jt.channel_start + k, _POS[c]) for k, c in enumerate(jt.channels) if c in _POS]
        if pos_cols:
            if old == 0:
                for col, axis in pos_cols:
                    root_positions[:, axis] = data[:, col]
            elif not warned:
                vals = np.zeros((T, 3)) + jt.offset
                for col, axis in pos_cols:
                    vals[:, axis] = data[:, col]
                if np.abs(vals - jt.offset).max(initial=0.0) > 1e-3:
                    log.warning("%s: joint %r has position channels that differ from its OFFSET; they are ignored",
                                path, jt.name)
                    warned = True
        if rot_cols:
            if len(rot_cols) != 3 or len({a for _, a in rot_cols}) != 3:
                raise DataError(f"{path}: joint {jt.name!r}: expected three distinct rotation channels, "
                                f"got {jt.channels}")
            order = "".join(a for _, a in rot_cols)
            angles = np.radians(data[:, [c for c, _ in rot_cols]])
            local[:, new] = quat_from_euler(angles, order)

    if names == JOINT_NAMES:
        rotating = ROTATING_JOINTS.copy()
    else:
        has_child = np.zeros(len(keep), dtype=bool)
        for p in parents[1:]:
            has_child[p] = True
        has_rot = np.array([any(c in _ROT for c in joints[old].channels) for old in keep])
        rotating = np.nonzero(has_child & has_rot)[0]
    try:
        skeleton = Skeleton(names, parents, offsets, rotating)
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
    return BvhMotion(skeleton, float(fps), root_positions, quat_normalize(local))


# --- writing -----------------------------------------------------------------------------------

def _atomic_write_text(path: Path, text: str) -> None:
    from transflower.atomic import write_text_atomic

    write_text_atomic(path, text)


def write_bvh(path, motion: BvhMotion) -> None:
    """Write `motion` to `path` atomically (see the module docstring for the channel layout)."""
    sk = motion.skeleton
    J = sk.num_joints
    T = motion.num_frames
    lr = np.asarray(motion.local_rotations, dtype=np.float64)
    rp = np.asarray(motion.root_positions, dtype=np.float64)
    if lr.shape != (T, J, 4) or rp.shape != (T, 3):
        raise ValueError(f"write_bvh: expected root_positions (T, 3) and local_rotations (T, {J}, 4), "
                         f"got {rp.shape} and {lr.shape}")
    children: list[list[int]] = [[] for _ in range(J)]
    for j in range(1, J):
        children[sk.parents[j]].append(j)

    out = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        ind = "  " * depth
        kind = "ROOT" if sk.parents[j] < 0 else "JOINT"
        o = sk.offsets[j]
        out.append(f"{ind}{kind} {sk.names[j]}")
        out.append(f"{ind}{{")
        out.append(f"{ind}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        if sk.parents[j] < 0:
            out.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            out.append(f"{ind}  CHANNELS 3 Zrotation Xrotation Yrotation")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            out.append(f"{ind}  End Site")
            out.append(f"{ind}  {{")
            out.append(f"{ind}    OFFSET 0.000000 0.000000 0.000000")
            out.append(f"{ind}  }}")
        out.append(f"{ind}}}")

    if J == 0:
        raise ValueError("write_bvh: empty skeleton")
    if sk.parents[0] >= 0 or np.any(sk.parents[1:] < 0):
        raise ValueError("write_bvh: the skeleton must have exactly one root, joint 0")
    emit(0, 0)
    out.append("MOTION")
    out.append(f"Frames: {T}")
    out.append(f"Frame Time: {1.0 / motion.fps:.8f}")
    euler = np.degrees(euler_from_quat(lr, "ZXY")).reshape(T, J * 3)
    values = np.concatenate([rp, euler], axis=1)
    if T:
        fmt = " ".join(["%.6f"] * values.shape[1])
        body = "\n".join(fmt % tuple(row) for row in values)
        out.append(body)
    _atomic_write_text(Path(path), "\n".join(out) + "\n")
