"""`transflower view`: a browser preview of a VMC stream (a VRM avatar, or a skeleton), and `PreviewServer`
for in-process use (`transflower live --preview`).

One local port serves the page (HTTP GET /, /preview.js, /vrm_bundle.js: three.js + @pixiv/three-vrm bundled
from npm, /avatar.vrm, /pose.json) and a WebSocket (/ws). Over the WebSocket the server sends a "hello"
(bone names, parents, the stream's rest offsets and hip height, the style names, the control values) and
then one "pose" per frame: the floor-level root and the 22 bones' local rotations, in Unity's frame
(left-handed, Y up, metres, x y z w) exactly as VMC carries them. The page applies them through
three-vrm's normalized humanoid (identity rest rotations, the convention VSeeFace and Unity use), moving
the avatar's hips by the root scaled to the avatar's own hip height, so any VRM keeps its proportions
and its feet on the floor: it doubles as an independent receiver.

Performer controls on the page (style buttons and strength, temperature, noise correlation, gain, hold,
reset) send
``{"control": "/transflower/temperature", "args": [0.8]}`` back over the WebSocket, with the addresses of
the OSC control input; the server validates them and calls ``on_control(address, args)``.

``?overlay`` on the page address (``PreviewServer.overlay_url``) shows the avatar alone on a transparent page
(no telemetry, controls or floor), for an OBS Browser Source.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import mimetypes
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from transflower.bridge.retarget import UNITY_BONES, UNITY_PARENTS, HumanoidRetarget, forward_kinematics, synthetic_tpose_skeleton
from transflower.control_spec import CONTROLS
from transflower.errors import UserError
from transflower.skeleton import Pose, Skeleton

__all__ = ["PreviewServer", "configure_parser", "run", "vmc_frame_positions", "CONTROL_ADDRESSES"]

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).with_name("preview")
DEFAULT_AVATAR = STATIC_DIR / "default_avatar.vrm"
_STATIC_FILES = {"/": "index.html", "/index.html": "index.html", "/preview.js": "preview.js",
                 "/vrm_bundle.js": "vrm_bundle.js"}
# the OSC control input's addresses and the argument types the page sends (transflower.control_spec)
CONTROL_ADDRESSES: dict[str, str] = {p.address: p.page_args for p in CONTROLS if p.page_args is not None}
NO_ARGUMENT_TOO = {p.address for p in CONTROLS if p.kind == "number" and p.bare}  # correlation bare: the presets again
CONTROL_RANGES = {p.address: [p.lo, p.hi] for p in CONTROLS if p.kind == "number"}  # sent in the hello for the sliders
B = len(UNITY_BONES)
_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def vmc_frame_positions(frame) -> np.ndarray:
    """Global joint positions (22, 3), Unity frame, metres, from a VmcFrame as a receiver applying every received
    position and rotation computes them (missing bones: identity, zero offset; the Hips above Root/Pos)."""
    offsets = np.zeros((B, 3))
    rots = np.zeros((B, 4))
    rots[:, 3] = 1.0
    for b, name in enumerate(UNITY_BONES):
        got = frame.bones.get(name)
        if got is not None:
            offsets[b], rots[b] = got
    n = np.linalg.norm(rots, axis=1, keepdims=True)
    rots = np.where(n > 1e-6, rots / np.maximum(n, 1e-12), np.array([0.0, 0.0, 0.0, 1.0]))
    pos, _ = forward_kinematics(UNITY_PARENTS, offsets, rots, frame.root_position + offsets[0])
    return pos


def _check_control(address, args) -> tuple | None:
    """(address, args) with args converted, or None when it is not one of CONTROL_ADDRESSES with the right types."""
    types = CONTROL_ADDRESSES.get(address) if isinstance(address, str) else None
    if types is not None and address in NO_ARGUMENT_TOO and args == []:
        return address, ()
    if types is None or not isinstance(args, list) or len(args) != len(types):
        return None
    out = []
    for t, a in zip(types, args):
        if t == "f" and isinstance(a, (int, float)) and not isinstance(a, bool) and np.isfinite(a):
            out.append(float(a))
        elif t == "i" and (isinstance(a, bool) or (isinstance(a, (int, float)) and float(a).is_integer())):
            out.append(int(a))
        elif t == "s" and isinstance(a, str) and 0 < len(a) <= 200:
            out.append(a)
        else:
            return None
    return address, tuple(out)


class PreviewServer:
    """Serve the preview page and push pose frames to every connected browser at ``fps``.

    Feed it from any thread: ``push_pose`` (our poses: the live loop, allocation- and lock-free: a triple buffer
    with a sequence number), ``push_unity`` (an already retargeted frame) or ``push_vmc`` (a VmcReceiver frame).
    ``status_fn`` (optional) returns a status line for the page; ``set_values(dict)`` publishes the current
    control values (shown on the page); ``styles`` names the style buttons; ``on_control(address, args)`` gets
    the page's control messages (called on the server's thread; None: ignored). ``avatar``: a .vrm file (default:
    the built-in plain dancer). ``port=0`` picks a free port (see ``.port`` / ``.url`` after ``start()``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, fps: float = 30.0,
                 status_fn: Callable[[], str] | None = None, *, avatar: str | Path | None = None,
                 on_control: Callable[[str, tuple], None] | None = None, styles=(), skeleton: Skeleton | None = None):
        self.host, self.port, self.fps = host, port, float(fps)
        self.status_fn = status_fn
        self.on_control = on_control
        self.styles = [str(s) for s in (styles or [])]
        self.avatar = Path(avatar) if avatar else DEFAULT_AVATAR
        if avatar is not None:
            try:
                head = self.avatar.read_bytes()[:4]
            except FileNotFoundError:
                raise UserError(f"--avatar {avatar}: file not found") from None
            except OSError as e:
                raise UserError(f"--avatar {avatar}: cannot read it ({e.strerror or e})") from None
            if head != b"glTF":
                raise UserError(f"--avatar {avatar}: not a VRM (expected a binary glTF file starting with 'glTF')")
        self._values: dict = {}
        self._lock = threading.Lock()  # guards the layout/hello and values, never taken by push_pose
        self._retargets: dict[int, HumanoidRetarget] = {}
        self._layout_version = 0
        self._set_layout(HumanoidRetarget(skeleton or synthetic_tpose_skeleton()))
        # triple buffer of frames: [root (3), root_rot (4), rots (B*4), t]; the writer publishes an index
        self._frames = np.zeros((3, 7 + 4 * B + 1))
        self._frames[:, 3] = 1.0
        self._frames[:, 7 + 3:7 + 4 * B:4] = 1.0
        self._seq = 0  # frames pushed; the latest lives in _frames[_seq % 3]
        self._read = np.zeros(7 + 4 * B + 1)
        self._clients: set = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.messages_sent = 0
        self.controls_received = 0
        self.controls_rejected = 0

    # ----------------------------------------------------------------------------------- feeding
    def _set_layout(self, r: HumanoidRetarget | None, rest: np.ndarray | None = None, hips: float | None = None) -> None:
        with self._lock:
            self._rest = (r.bone_positions if r is not None else rest).round(5).tolist()
            self._hips_height = float(r.hips_height_m if r is not None else hips)
            self._layout_version += 1

    def push_unity(self, root_pos: np.ndarray, root_rot: np.ndarray, bone_rots: np.ndarray, t: float = 0.0) -> None:
        """A retargeted frame (Unity frame, ``UNITY_BONES`` order). No allocation, no lock."""
        buf = self._frames[(self._seq + 1) % 3]
        buf[0:3] = root_pos
        buf[3:7] = root_rot
        buf[7:7 + 4 * B] = bone_rots.reshape(-1)
        buf[-1] = t
        self._seq += 1  # publish (one store; the reader re-checks it after copying)

    def push_pose(self, pose: Pose, skeleton: Skeleton) -> None:
        r = self._retargets.get(id(skeleton))
        if r is None:  # once per skeleton, not per frame
            r = self._retargets[id(skeleton)] = HumanoidRetarget(skeleton)
            self._set_layout(r)
        root_pos, _, bone_rots = r.retarget(pose)
        self.push_unity(root_pos, _IDENTITY, bone_rots, pose.time)  # as the stream: the Hips carry the orientation

    def push_vmc(self, frame) -> None:
        """A VmcReceiver frame (any VMC sender): rotations as received; rest offsets from its bone positions when
        it sends them (else our figure's), the hip height from its Hips position."""
        rots = np.tile([0.0, 0.0, 0.0, 1.0], (B, 1))
        rest = np.array(self._rest)
        has_positions = False
        for b, name in enumerate(UNITY_BONES):
            got = frame.bones.get(name)
            if got is not None:
                rots[b] = got[1]
                if b > 0 and np.any(got[0] != 0):
                    rest[b] = got[0]
                    has_positions = True
        hips = frame.bones.get("Hips")
        hips_h = float(hips[0][1]) if hips is not None and hips[0][1] > 0.1 else self._hips_height
        if hips is not None:
            rest[0] = hips[0]
        if has_positions or abs(hips_h - self._hips_height) > 1e-6:
            if not np.allclose(rest, self._rest, atol=1e-5) or abs(hips_h - self._hips_height) > 1e-6:
                self._set_layout(None, rest, hips_h)
        self.push_unity(frame.root_position, frame.root_rotation, rots, frame.time)

    def set_values(self, values: dict) -> None:
        """Current control values to show on the page (e.g. {"temperature": 0.8, "style": "waltz", "hold": 0})."""
        with self._lock:
            self._values = dict(values)

    def _latest(self) -> tuple[int, np.ndarray]:
        while True:
            seq = self._seq
            self._read[:] = self._frames[seq % 3]
            if self._seq - seq < 2:  # the writer did not come round to this buffer while we copied it
                return seq, self._read

    def hello(self) -> dict:
        with self._lock:
            return {"type": "hello", "bones": UNITY_BONES, "parents": [int(p) for p in UNITY_PARENTS],
                    "rest": self._rest, "hips_height": self._hips_height, "avatar": "avatar.vrm",
                    "styles": self.styles, "controls": {a: t for a, t in CONTROL_ADDRESSES.items()},
                    "ranges": {a: list(r) for a, r in CONTROL_RANGES.items()},
                    "values": dict(self._values), "layout": self._layout_version}

    def snapshot(self) -> dict:
        seq, f = self._latest()
        with self._lock:
            values, layout = dict(self._values), self._layout_version
        return {"type": "pose", "frame": seq, "t": round(float(f[-1]), 4), "root": np.round(f[0:3], 5).tolist(),
                "root_rot": np.round(f[3:7], 6).tolist(), "rots": np.round(f[7:7 + 4 * B], 6).reshape(B, 4).tolist(),
                "status": self._status(seq), "values": values, "layout": layout, "fps": self.fps}

    def _status(self, seq: int) -> str:
        if self.status_fn is not None:
            try:
                return str(self.status_fn())
            except Exception as e:  # a status bug must not break the stream
                return f"status unavailable ({e})"
        return "live" if seq else "waiting for poses"

    # ---------------------------------------------------------------------------------- serving
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def overlay_url(self) -> str:
        """The page as a streaming overlay: the avatar alone on a transparent background (OBS Browser Source)."""
        return self.url + "?overlay"

    def urls_text(self) -> str:
        """The page and overlay addresses, as `view` and `live --preview` print them."""
        return f"{self.url}  (overlay for OBS, transparent: {self.overlay_url})"

    def start(self) -> "PreviewServer":
        self._thread = threading.Thread(target=self._thread_main, name="PreviewServer", daemon=True)
        self._thread.start()
        self._started.wait(10.0)
        if self._error is not None:
            err = self._error
            raise UserError(f"preview: cannot serve HTTP on {self.host}:{self.port}: {getattr(err, 'strerror', None) or err}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop_event is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:  # the loop closed in between (a failed start): nothing left to stop
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> "PreviewServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._error = e
            self._started.set()

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        async with serve(self._ws_handler, self.host, self.port, process_request=self._http,
                         compression=None, ping_interval=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._started.set()
            await self._broadcast_loop()

    def _http(self, connection, request):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None  # go on with the WebSocket handshake
        if path == "/pose.json":
            body = json.dumps({**self.hello(), **self.snapshot()}).encode()
            ctype = "application/json"
        elif path == "/avatar.vrm":
            try:
                body = self.avatar.read_bytes()
            except OSError:
                return Response(500, "Internal Server Error", Headers([("Content-Type", "text/plain")]), b"avatar unreadable\n")
            ctype = "model/gltf-binary"
        elif path in _STATIC_FILES:
            f = STATIC_DIR / _STATIC_FILES[path]
            try:
                body = f.read_bytes()
            except OSError:
                return Response(500, "Internal Server Error", Headers([("Content-Type", "text/plain")]), b"missing page file\n")
            ctype = (mimetypes.guess_type(f.name)[0] or "application/octet-stream") + "; charset=utf-8"
        else:
            return Response(404, "Not Found", Headers([("Content-Type", "text/plain")]), b"not found\n")
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                           ("Connection", "close")])
        return Response(200, "OK", headers, body)

    async def _ws_handler(self, ws) -> None:
        self._clients.add(ws)
        try:
            await ws.send(json.dumps(self.hello()))
            await ws.send(json.dumps(self.snapshot()))
            async for text in ws:
                self._handle_page_message(text)
        except Exception:
            pass
        finally:
            self._clients.discard(ws)

    def _handle_page_message(self, text) -> None:
        try:
            msg = json.loads(text)
        except (TypeError, ValueError):
            msg = None
        checked = _check_control(msg.get("control"), msg.get("args", [])) if isinstance(msg, dict) else None
        if checked is None:
            self.controls_rejected += 1
            log.debug("preview: ignored a page message %.200r", text)
            return
        self.controls_received += 1
        if self.on_control is not None:
            try:
                self.on_control(*checked)
            except Exception as e:  # noqa: BLE001  a control handler bug must not close the page
                log.warning("preview: control %s failed: %s", checked[0], e)

    async def _broadcast_loop(self) -> None:
        period = 1.0 / max(self.fps, 1.0)
        sent_seq, sent_layout = -1, 0
        next_status = 0.0
        next_t = time.monotonic()
        while not self._stop_event.is_set():
            now = time.monotonic()
            seq = self._seq
            if self._clients and (seq != sent_seq or now >= next_status):
                msgs = []
                if self._layout_version != sent_layout:  # a new skeleton or sender: the page re-reads the layout
                    sent_layout = self._layout_version
                    msgs.append(json.dumps(self.hello()))
                msgs.append(json.dumps(self.snapshot()))
                sent_seq = seq
                next_status = now + 0.5  # status refreshes twice a second even without new poses
                for ws in list(self._clients):
                    try:
                        for m in msgs:
                            await asyncio.wait_for(ws.send(m), timeout=period)
                        self.messages_sent += 1
                    except Exception:
                        self._clients.discard(ws)
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -period:  # fell behind (a slow client): do not try to catch up
                next_t = time.monotonic()
                delay = 0.0
            try:
                await asyncio.wait_for(self._stop_event.wait(), timeout=max(delay, 0.0))
            except asyncio.TimeoutError:
                pass


# ---------------------------------------------------------------------------------------- CLI
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=39539,
                        help="UDP port to receive VMC on (default 39539; if Unity/VSeeFace already listens there on "
                             "this machine, send the live stream to a second port too: --osc 127.0.0.1:39540)")
    parser.add_argument("--bind", default="0.0.0.0", help="address to receive VMC on (default: all interfaces)")
    parser.add_argument("--http", type=int, default=8765, help="port of the local web page (default 8765)")
    parser.add_argument("--http-host", default="127.0.0.1", help="address to serve the page on (default 127.0.0.1)")
    parser.add_argument("--fps", type=float, default=30.0, help="page update rate (default 30)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.add_argument("--avatar", metavar="FILE.vrm", help="VRM avatar to show (default: the built-in plain dancer; "
                        "add ?view=skeleton to the page address for the skeleton)")


def run(args: argparse.Namespace) -> int:
    from transflower.bridge.vmc import VmcReceiver

    if not 0 < args.fps <= 240:
        raise UserError(f"--fps {args.fps}: expected 1..240")
    state = {"t0": time.monotonic(), "frames0": 0, "rate": 0.0}

    def status() -> str:
        f = rx.latest()
        now = time.monotonic()
        if now - state["t0"] >= 1.0:
            state["rate"] = (f.frames - state["frames0"]) / (now - state["t0"])
            state["t0"], state["frames0"] = now, f.frames
        if f.packets == 0:
            return f"waiting for VMC on UDP {args.bind}:{rx.port}"
        age = now - f.received_at
        bad = f" | {f.malformed} malformed" if f.malformed else ""
        if age > 1.0:
            return f"VMC stream lost {age:.0f} s ago ({f.frames} frames){bad}"
        return f"VMC {state['rate']:.0f} frames/s on UDP {rx.port} ({f.frames} frames){bad}"

    server = PreviewServer(args.http_host, args.http, args.fps, status_fn=status, avatar=getattr(args, "avatar", None))
    rx = VmcReceiver(args.port, args.bind, on_frame=server.push_vmc)
    try:
        server.start()
        print(f"preview: {server.urls_text()}\n  VMC on UDP {args.bind}:{rx.port}; Ctrl+C to stop", flush=True)
        if args.open:
            import webbrowser

            webbrowser.open(server.url)
        while True:
            time.sleep(0.5)
    finally:
        server.stop()
        rx.close()
