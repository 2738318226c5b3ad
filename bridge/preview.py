"""`transflower view`: a browser preview of a VMC stream (a 3D skeleton), and `PreviewServer` for in-process use.

One local port serves both the page (HTTP GET /, /preview.js, /pose.json) and a WebSocket (/ws) that
pushes joint positions at frame rate. Joint positions come from forward kinematics over Unity's
humanoid hierarchy: from received VMC bone transforms (`transflower view`), or from our poses
retargeted in-process (`PreviewServer.push_pose`, used by `transflower live --preview`).
Positions on the wire are Unity-frame metres (left-handed, Y up); the page converts for drawing.
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

from bridge.retarget import UNITY_BONES, UNITY_PARENTS, HumanoidRetarget, forward_kinematics
from transflower.errors import UserError
from transflower.skeleton import Pose, Skeleton

__all__ = ["PreviewServer", "configure_parser", "run", "vmc_frame_positions"]

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).with_name("preview")
_STATIC_FILES = {"/": "index.html", "/index.html": "index.html", "/preview.js": "preview.js"}


def vmc_frame_positions(frame) -> np.ndarray:
    """Global joint positions (22, 3), Unity frame, metres, from a VmcFrame (missing bones: identity, zero offset).

    The Hips sit at Root/Pos position + the Hips local position; Root/Pos rotation is not composed in
    (our stream carries the Hips global rotation there, which the Hips Bone/Pos already applies).
    """
    B = len(UNITY_BONES)
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


class PreviewServer:
    """Serve the preview page and push skeleton frames to every connected browser at ``fps``.

    Feed it from any thread: ``push_positions``, ``push_pose`` (our poses, e.g. from the live engine)
    or ``push_vmc`` (a VmcReceiver frame). ``status_fn`` (optional) returns a status line for the page.
    ``port=0`` picks a free port (see ``.port`` / ``.url`` after ``start()``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, fps: float = 30.0,
                 status_fn: Callable[[], str] | None = None):
        self.host, self.port, self.fps = host, port, float(fps)
        self.status_fn = status_fn
        self._lock = threading.Lock()
        self._payload: dict | None = None
        self._version = 0
        self._frames = 0
        self._retargets: dict[int, HumanoidRetarget] = {}
        self._clients: set = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.messages_sent = 0

    # ----------------------------------------------------------------------------------- feeding
    def push_positions(self, positions: np.ndarray, parents=UNITY_PARENTS, names=UNITY_BONES, t: float | None = None) -> None:
        """Joint positions (N, 3) in Unity-frame metres, with parent indices (-1: root)."""
        positions = np.asarray(positions, dtype=np.float64)
        payload = {"joints": np.round(positions, 4).tolist(), "parents": [int(p) for p in parents],
                   "names": list(names), "t": None if t is None else float(t)}
        with self._lock:
            self._frames += 1
            payload["frame"] = self._frames
            self._payload = payload
            self._version += 1

    def push_pose(self, pose: Pose, skeleton: Skeleton) -> None:
        r = self._retargets.get(id(skeleton))
        if r is None:
            r = self._retargets[id(skeleton)] = HumanoidRetarget(skeleton)
        root_pos, _, bone_rots = r.retarget(pose)
        pos, _ = r.unity_fk(root_pos, bone_rots)
        self.push_positions(pos, t=pose.time)

    def push_vmc(self, frame) -> None:
        self.push_positions(vmc_frame_positions(frame), t=frame.time)

    def snapshot(self) -> dict:
        with self._lock:
            p = dict(self._payload) if self._payload else {"joints": [], "parents": [], "names": [], "frame": 0, "t": None}
        p["status"] = self._status()
        p["fps"] = self.fps
        return p

    def _status(self) -> str:
        if self.status_fn is not None:
            try:
                return str(self.status_fn())
            except Exception as e:  # a status bug must not break the stream
                return f"status unavailable ({e})"
        return "live" if self._payload else "waiting for poses"

    # ---------------------------------------------------------------------------------- serving
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

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
            body = json.dumps(self.snapshot()).encode()
            ctype = "application/json"
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
            await ws.send(json.dumps(self.snapshot()))
            async for _ in ws:  # the page sends nothing we need; wait for it to close
                pass
        except Exception:
            pass
        finally:
            self._clients.discard(ws)

    async def _broadcast_loop(self) -> None:
        period = 1.0 / max(self.fps, 1.0)
        sent_version = -1
        next_status = 0.0
        next_t = time.monotonic()
        while not self._stop_event.is_set():
            now = time.monotonic()
            with self._lock:
                version = self._version
            if self._clients and (version != sent_version or now >= next_status):
                msg = json.dumps(self.snapshot())
                sent_version = version
                next_status = now + 0.5  # status refreshes twice a second even without new poses
                for ws in list(self._clients):
                    try:
                        await asyncio.wait_for(ws.send(msg), timeout=period)
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


def run(args: argparse.Namespace) -> int:
    from bridge.vmc import VmcReceiver

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

    server = PreviewServer(args.http_host, args.http, args.fps, status_fn=status)
    rx = VmcReceiver(args.port, args.bind, on_frame=server.push_vmc)
    try:
        server.start()
        print(f"preview: {server.url}  (VMC on UDP {args.bind}:{rx.port}; Ctrl+C to stop)", flush=True)
        if args.open:
            import webbrowser

            webbrowser.open(server.url)
        while True:
            time.sleep(0.5)
    finally:
        server.stop()
        rx.close()
