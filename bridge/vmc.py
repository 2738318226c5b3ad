"""VMC (Virtual Motion Capture protocol) over UDP: the live engine's output, and a receiver.

Per frame, one OSC bundle (one UDP datagram of at most 1472 bytes; split into consecutive bundles of
whole messages if a layout would not fit) holding, in order:
  /VMC/Ext/Root/Pos  s "root", 3 f position (m, the avatar's floor-level root), 4 f rotation (x, y, z, w)
  /VMC/Ext/Bone/Pos  s <HumanBodyBones name>, 3 f local position (m), 4 f local rotation
                     (the Hips' position is the hip height above the root; see VmcSender's bone_positions)
  /VMC/Ext/OK        i 1
  /VMC/Ext/T         f time (s)
Only float32 and int32 arguments (EVMC4U drops ints where it expects floats; uOSC cannot skip doubles).

The sender never raises or blocks once constructed: send errors (ICMP "port unreachable", EAGAIN,
unreachable networks) are counted per target, and a target that comes back simply receives again.
On Linux the socket's error queue (IP_RECVERR) attributes ICMP errors to the target that caused them.
"""
from __future__ import annotations

import errno
import logging
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from transflower.bridge.osc import FrameEncoder, OscDecodeError, OscMessage, decode, encode_message, iter_messages
from transflower.bridge.retarget import UNITY_BONES, HumanoidRetarget, neutral_bone_rotations
from transflower.errors import UserError
from transflower.skeleton import Pose, Skeleton

__all__ = ["DEFAULT_PORT", "MAX_DATAGRAM", "BONE_POSITIONS", "parse_target", "TargetStats", "VmcSender", "VmcFrame", "VmcReceiver"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 39539
ROOT_ADDRESS = "/VMC/Ext/Root/Pos"
BONE_ADDRESS = "/VMC/Ext/Bone/Pos"
OK_ADDRESS = "/VMC/Ext/OK"
TIME_ADDRESS = "/VMC/Ext/T"
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux value; Python does not export it
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``"host:port"``, ``"host"`` or ``":port"`` -> (host, port); raises UserError with the reason."""
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"--osc: empty target {text!r}; expected HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    text = text.strip()
    if text.startswith("["):  # [ipv6]:port
        host, sep, rest = text[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise UserError(f"--osc {text!r}: malformed [IPv6]:PORT")
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    elif text.count(":") == 0:
        host, port_s = text, ""
    else:
        raise UserError(f"--osc {text!r}: write IPv6 addresses as [ADDRESS]:PORT")
    host = host or "127.0.0.1"
    if port_s == "":
        port = default_port
    else:
        try:
            port = int(port_s)
        except ValueError:
            raise UserError(f"--osc {text!r}: port {port_s!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise UserError(f"--osc {text!r}: port {port} is outside 1..65535")
    return host, port


@dataclass
class TargetStats:
    host: str
    port: int
    address: tuple[str, int]  # the resolved IPv4 (ip, port)
    sent: int = 0  # datagrams handed to the kernel
    failed: int = 0  # sends that raised (EAGAIN, unreachable, ...)
    refused: int = 0  # ICMP errors reported afterwards (nobody listening, host unreachable)
    errors: dict = field(default_factory=dict)  # errno name -> count
    last_error: str = ""
    last_error_time: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.last_error_time == 0.0 or time.monotonic() - self.last_error_time > 2.0

    def _count(self, code: int, msg: str) -> None:
        name = errno.errorcode.get(code, str(code))
        self.errors[name] = self.errors.get(name, 0) + 1
        self.last_error = msg
        self.last_error_time = time.monotonic()


_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])
MAX_DATAGRAM = 1472  # a 1500-byte Ethernet MTU less the IPv4 and UDP headers: no IP fragmentation on a LAN
BONE_POSITIONS = ("none", "skeleton")


class VmcSender:
    """Send poses as VMC bundles to one or more UDP targets (one non-blocking socket).

    ``targets``: (host, port) pairs or "host:port" strings. Host names are resolved once, here; a name
    that does not resolve is a UserError. ``root_rotation``: what Root/Pos carries as rotation,
    ``"identity"`` (default: the Hips bone carries the body's orientation, so receivers that apply Root/Pos
    rotation to the avatar's root *and* the Hips rotation to its hips do not turn it twice) or ``"hips"``.

    ``bone_positions``: what the Bone/Pos position fields carry besides the Hips (which always carry the
    hip height above the floor-level root):
      ``"none"`` (default) zeros, and bones whose rotation never changes are left out: receivers apply
      rotations only and keep the avatar's own proportions (EVMC4U: untick Bone Position Synchronize);
      ``"skeleton"`` our skeleton's rest offsets for all 22 bones: receivers that apply them (EVMC4U's
      default) reshape the avatar to the dancer's proportions.
    A frame is one bundle when it fits ``max_datagram`` bytes, else consecutive bundles of whole messages
    (Root/Pos first, OK and T last), each within it. ``bone_map``: see ``transflower.bridge.retarget.resolve_bone_map``.
    """

    def __init__(self, targets: Iterable = (("127.0.0.1", DEFAULT_PORT),), skeleton: Skeleton | None = None,
                 *, root_rotation: str = "identity", bone_positions: str = "none", bone_map=None,
                 max_datagram: int = MAX_DATAGRAM):
        if skeleton is None:
            raise ValueError("VmcSender needs the skeleton the poses are expressed in")
        if root_rotation not in ("hips", "identity"):
            raise ValueError(f"root_rotation must be 'hips' or 'identity', got {root_rotation!r}")
        if bone_positions not in BONE_POSITIONS:
            raise UserError(f"--bone-positions {bone_positions!r}: expected one of {', '.join(BONE_POSITIONS)}")
        self.root_rotation = root_rotation
        self.bone_positions = bone_positions
        self.retarget = HumanoidRetarget(skeleton, bone_map)
        self.targets: list[TargetStats] = []
        for t in targets:
            host, port = parse_target(t) if isinstance(t, str) else (str(t[0]), int(t[1]))
            if not 0 < port < 65536:
                raise UserError(f"OSC target {host}:{port}: port outside 1..65535")
            try:
                infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
            except (socket.gaierror, UnicodeError) as e:
                raise UserError(f"OSC target {host}:{port}: cannot resolve {host!r} to an IPv4 address ({e})") from None
            self.targets.append(TargetStats(host, port, infos[0][4][:2]))
        if not self.targets:
            raise UserError("no OSC targets given")
        self._by_address = {t.address: t for t in self.targets}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self._errqueue = True
        try:
            self.sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
        except OSError:
            self._errqueue = False
        if self._errqueue:  # a queued ICMP error raises POLLERR: one cheap poll per frame, no exception
            self._err_poll = select.poll()
            self._err_poll.register(self.sock, select.POLLERR)
        for addr in {t.address for t in self.targets}:  # allow sending to broadcast addresses too
            if addr[0].endswith(".255"):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)

        r = self.retarget
        if bone_positions == "skeleton":
            sent = np.arange(len(UNITY_BONES))
            positions = r.bone_positions
        else:
            sent = np.flatnonzero(~r.static | (np.arange(len(UNITY_BONES)) == 0))  # the Hips always
            positions = np.zeros_like(r.bone_positions)
            positions[0] = r.bone_positions[0]
        self.sent_bones = [UNITY_BONES[b] for b in sent]
        self._sent_index = sent
        messages = [(ROOT_ADDRESS, "sfffffff", ["root"] + [None] * 7)]
        for b in sent:
            messages.append((BONE_ADDRESS, "sfffffff", [UNITY_BONES[b], *map(float, positions[b]), None, None, None, None]))
        messages.append((OK_ADDRESS, "i", [1]))
        messages.append((TIME_ADDRESS, "f", [None]))
        self.encoders, self._slices = self._pack(messages, int(max_datagram))
        self.encoder = self.encoders[0]
        self.datagram_sizes = [e.size for e in self.encoders]
        self.bundle_size = max(self.datagram_sizes)
        nb = len(sent)
        self._values = np.zeros(7 + 4 * nb + 1, dtype=np.float64)
        self._bone_block = self._values[7:7 + 4 * nb].reshape(nb, 4)
        # the last frame sent (Unity frame), for ease_to_neutral
        self.last_root_pos = np.zeros(3)
        self.last_bone_rots = np.tile([0.0, 0.0, 0.0, 1.0], (len(UNITY_BONES), 1))
        self.last_time = 0.0
        self.frames_sent = 0
        self._closed = False

    @staticmethod
    def _pack(messages, max_datagram: int):
        """Greedy split of the frame's messages into bundles of at most ``max_datagram`` bytes."""
        groups, sizes = [[]], [16]  # "#bundle\0" + timetag
        for m in messages:
            n = 4 + len(encode_message(m[0], [0.0 if a is None else a for a in m[2]], m[1]))
            if sizes[-1] + n > max_datagram and groups[-1]:
                groups.append([])
                sizes.append(16)
            if sizes[-1] + n > max_datagram:
                raise ValueError(f"VMC message {m[0]} {m[2][0]!r} alone exceeds {max_datagram} bytes")
            groups[-1].append(m)
            sizes[-1] += n
        encoders, slices, start = [], [], 0
        for g in groups:
            e = FrameEncoder(g)
            encoders.append(e)
            slices.append(slice(start, start + e.num_slots))
            start += e.num_slots
        return encoders, slices

    # ------------------------------------------------------------------------------------ sending
    def send(self, pose: Pose) -> int:
        """Retarget and send one frame to every target. Returns how many targets took the whole frame."""
        root_pos, root_rot, bone_rots = self.retarget.retarget(pose)
        return self.send_unity(root_pos, root_rot, bone_rots, pose.time)

    def send_unity(self, root_pos: np.ndarray, root_rot: np.ndarray, bone_rots: np.ndarray, t: float) -> int:
        """Send an already retargeted frame (Unity frame: m, (x, y, z, w), ``UNITY_BONES`` order)."""
        v = self._values
        v[0:3] = root_pos
        v[3:7] = root_rot if self.root_rotation == "hips" else _IDENTITY
        np.take(bone_rots, self._sent_index, axis=0, out=self._bone_block)
        v[-1] = t
        self.last_root_pos[:] = root_pos
        self.last_bone_rots[:] = bone_rots
        self.last_time = t
        if self._closed:
            return 0
        self._drain_errors()
        ok = len(self.targets)
        for enc, sl in zip(self.encoders, self._slices):
            ok = min(ok, self._send_datagram(enc.encode(v[sl])))
        self.frames_sent += 1
        return ok

    def send_rest_pose(self, t: float = 0.0) -> int:
        """Send the T-pose (identity rotations) standing at the origin, feet on the floor."""
        root_pos, root_rot, bone_rots = self.retarget.rest()
        return self.send_unity(root_pos, root_rot, bone_rots, t)

    def ease_to_neutral(self, duration_s: float = 0.5, fps: float = 30.0, sleep=time.sleep, clock=time.monotonic) -> int:
        """Ease from the last frame sent into a relaxed standing pose (arms down), paced at ``fps`` over
        ``duration_s``: the end of a stream viewers see instead of a snap to the T-pose. The dancer keeps its
        place and facing; the root settles to standing height. Returns the frames sent (blocks ~duration_s)."""
        from transflower.rotations import quat_from_yaw, quat_slerp, split_yaw

        n = max(1, int(round(duration_s * fps)))
        start_rots = self.last_bone_rots.copy()
        start_root = self.last_root_pos.copy()
        target = neutral_bone_rotations()
        yaw, _ = split_yaw(start_rots[0])  # keep the facing: only the Hips' tilt goes
        target[0] = quat_from_yaw(yaw)
        end_root = start_root.copy()
        end_root[1] = 0.0
        t0, clock0 = self.last_time, clock()
        for i in range(1, n + 1):
            u = i / n
            s = u * u * (3.0 - 2.0 * u)  # smoothstep: no velocity jump at either end
            rots = quat_slerp(start_rots, target, s)
            root = start_root + s * (end_root - start_root)
            self.send_unity(root, rots[0], rots, t0 + i / fps)
            delay = clock0 + i / fps - clock()  # absolute deadlines: no drift
            if delay > 0 and i < n:
                sleep(delay)
        return n

    def _leg_length_m(self) -> float:
        return self.retarget.hips_height_m

    def send_packet(self, data) -> int:
        """Send raw bytes to every target as one datagram; never raises (errors are counted per target)."""
        if self._closed:
            return 0
        self._drain_errors()
        ok = self._send_datagram(data)
        self.frames_sent += 1
        return ok

    def _send_datagram(self, data) -> int:
        ok = 0
        for t in self.targets:
            for attempt in (0, 1):
                try:
                    self.sock.sendto(data, t.address)
                    t.sent += 1
                    ok += 1
                    break
                except OSError as e:
                    code = e.errno or 0
                    if code == errno.ECONNREFUSED and attempt == 0 and self._errqueue:
                        # a pending ICMP error of an earlier datagram (maybe another target's): attribute it, retry
                        self._drain_errors()
                        continue
                    t.failed += 1
                    t._count(code, f"{t.host}:{t.port}: {e.strerror or e}")
                    break
        return ok

    def _drain_errors(self) -> None:
        if not self._errqueue or not self._err_poll.poll(0):
            return
        for _ in range(64):
            try:
                _, anc, _, addr = self.sock.recvmsg(1, 256, _MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            code = errno.ECONNREFUSED
            for level, _type, cdata in anc:
                if len(cdata) >= 4:
                    code = int.from_bytes(cdata[:4], sys.byteorder)  # sock_extended_err.ee_errno
            t = self._by_address.get(tuple(addr[:2])) if addr else None
            if t is not None:
                t.refused += 1
                t._count(code, f"{t.host}:{t.port}: {errno.errorcode.get(code, code)} (ICMP)")

    # ------------------------------------------------------------------------------------- status
    def status(self) -> dict:
        self._drain_errors()
        return {
            "frames": self.frames_sent, "bundle_bytes": sum(self.datagram_sizes), "datagrams": len(self.datagram_sizes),
            "targets": [{"target": f"{t.host}:{t.port}", "sent": t.sent, "failed": t.failed, "refused": t.refused,
                         "errors": dict(t.errors), "last_error": t.last_error, "healthy": t.healthy}
                        for t in self.targets],
        }

    def status_line(self) -> str:
        """One line for the live loop's log, e.g. ``VMC 1800 frames, 1812 B: 127.0.0.1:39539 ok, ...``."""
        s = self.status()
        parts = []
        for t, st in zip(self.targets, s["targets"]):
            if st["healthy"]:
                parts.append(f"{st['target']} ok")
            else:
                parts.append(f"{st['target']} {st['last_error'].split(': ', 1)[-1]} "
                             f"({st['failed'] + st['refused']} errors)")
        return f"VMC {s['frames']} frames, {s['bundle_bytes']} B/frame: " + ", ".join(parts)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.sock.close()

    def __enter__(self) -> "VmcSender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------- receiver
@dataclass
class VmcFrame:
    """The latest state a VmcReceiver has seen (a snapshot copy)."""

    root_position: np.ndarray  # (3,) m, Unity frame
    root_rotation: np.ndarray  # (4,)
    bones: dict  # HumanBodyBones name -> (local position (3,), local rotation (4,))
    time: float  # /VMC/Ext/T
    ok: int  # /VMC/Ext/OK
    packets: int  # datagrams received so far (valid or not)
    frames: int  # bundles with at least one Bone/Pos or Root/Pos
    malformed: int  # datagrams that are not valid OSC
    rejected: int  # VMC messages with the wrong argument types (ignored, like other receivers do)
    received_at: float  # time.monotonic() of the last datagram


class VmcReceiver:
    """Listen for VMC on UDP in a background thread; keep the latest bone transforms and counters.

    ``on_frame(frame: VmcFrame)`` (optional) is called from the receiver thread after every valid
    frame. Port 0 picks a free port (see ``.port``). Use as a context manager or call ``close()``.
    """

    def __init__(self, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
                 on_frame: Callable[[VmcFrame], None] | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as e:
            self.sock.close()
            raise UserError(f"cannot listen for VMC on UDP {host}:{port}: {e.strerror or e}") from None
        try:  # bursts of ~1.8 KB datagrams overflow the default buffer quickly
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        except OSError:
            pass
        self.sock.settimeout(0.1)
        self.host, self.port = self.sock.getsockname()[:2]
        self.on_frame = on_frame
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.root_position = np.zeros(3)
        self.root_rotation = np.array([0.0, 0.0, 0.0, 1.0])
        self.bones: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.time = 0.0
        self.ok = 0
        self.packets = 0
        self.frames = 0
        self.malformed = 0
        self.rejected = 0
        self.received_at = 0.0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"VmcReceiver:{self.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                self._handle(data)
            except Exception as e:  # a callback bug must not kill the receiver
                log.exception("VmcReceiver: error handling a packet: %s", e)

    def _handle(self, data: bytes) -> None:
        try:
            packet = decode(data)
        except OscDecodeError as e:
            with self._cond:
                self.packets += 1
                self.malformed += 1
                self.last_error = str(e)
                self.received_at = time.monotonic()
                self._cond.notify_all()
            return
        got_pose = False
        with self._cond:
            self.packets += 1
            self.received_at = time.monotonic()
            for m in iter_messages(packet):
                got_pose |= self._apply(m)
            if got_pose:
                self.frames += 1
            self._cond.notify_all()
            frame = self._snapshot() if (got_pose and self.on_frame is not None) else None
        if frame is not None:
            self.on_frame(frame)

    def _apply(self, m: OscMessage) -> bool:
        a = m.address
        if a == BONE_ADDRESS or a == ROOT_ADDRESS:
            if not m.typetags.startswith("sfffffff"):  # VMC 2.1 Root/Pos may append scale + offset
                self.rejected += 1
                return False
            pos = np.array(m.args[1:4], dtype=np.float64)
            rot = np.array(m.args[4:8], dtype=np.float64)
            if a == ROOT_ADDRESS:
                self.root_position, self.root_rotation = pos, rot
            else:
                self.bones[m.args[0]] = (pos, rot)
            return True
        if a == TIME_ADDRESS:
            if m.typetags != "f":
                self.rejected += 1
            else:
                self.time = float(m.args[0])
        elif a == OK_ADDRESS:
            if not m.typetags or m.typetags[0] != "i":
                self.rejected += 1
            else:
                self.ok = int(m.args[0])
        return False  # other addresses (blendshapes, cameras, ...) are ignored

    def _snapshot(self) -> VmcFrame:
        return VmcFrame(self.root_position.copy(), self.root_rotation.copy(),
                        {k: (p.copy(), r.copy()) for k, (p, r) in self.bones.items()},
                        self.time, self.ok, self.packets, self.frames, self.malformed, self.rejected,
                        self.received_at)

    def latest(self) -> VmcFrame:
        with self._lock:
            return self._snapshot()

    def wait_for(self, packets: int | None = None, frames: int | None = None, timeout: float = 2.0) -> bool:
        """Block until at least ``packets`` datagrams / ``frames`` pose bundles have arrived (or timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (packets is not None and self.packets < packets) or (frames is not None and self.frames < frames):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        self.sock.close()

    def __enter__(self) -> "VmcReceiver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
