"""bridge.preview: VMC in -> FK -> WebSocket/HTTP out; a headless Chromium screenshot shows the skeleton."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from bridge.preview import PreviewServer, configure_parser, vmc_frame_positions
from bridge.retarget import UNITY_BONES, HumanoidRetarget, synthetic_tpose_skeleton
from bridge.vmc import VmcReceiver, VmcSender
from transflower.skeleton import Pose

SK = synthetic_tpose_skeleton()
SCREENSHOT_DIR = Path(os.environ.get("TRANSFLOWER_ARTIFACTS", "/tmp/transflower-artifacts"))


def dancing_pose(i: int) -> Pose:
    q = np.tile([0.0, 0.0, 0.0, 1.0], (SK.num_joints, 1))
    q[SK.names.index("RightArm")] = Rotation.from_euler("z", 60 + 5 * i, degrees=True).as_quat()  # right arm lowered
    q[SK.names.index("LeftForeArm")] = Rotation.from_euler("y", 40, degrees=True).as_quat()
    q[SK.names.index("RightUpLeg")] = Rotation.from_euler("x", -25, degrees=True).as_quat()
    return Pose(i, i / 30, np.array([0.0, 93.0, 0.0]), q)


def read_png_rgb(path: Path) -> np.ndarray:
    """A tiny PNG reader (8-bit RGB/RGBA, non-interlaced: what Chromium writes), so the test needs no Pillow."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, hdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int64)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:
            cur = np.zeros(stride, dtype=np.int64)
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                else:  # Paeth
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + pred) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)[:, :, :3]


@pytest.fixture
def pipeline():
    server = PreviewServer(port=0, status_fn=lambda: "VMC test stream")
    rx = VmcReceiver(0, on_frame=server.push_vmc)
    server.start()
    tx = VmcSender([("127.0.0.1", rx.port)], SK)
    yield server, rx, tx
    tx.close()
    rx.close()
    server.stop()


def test_cli_parser():
    p = argparse.ArgumentParser()
    configure_parser(p)
    a = p.parse_args(["--port", "39540", "--http", "9000"])
    assert a.port == 39540 and a.http == 9000


def test_vmc_fk_matches_retarget_fk(pipeline):
    server, rx, tx = pipeline
    pose = dancing_pose(2)
    tx.send(pose)
    assert rx.wait_for(frames=1, timeout=2)
    got = vmc_frame_positions(rx.latest())
    r = HumanoidRetarget(SK)
    root_pos, _, bone_rots = r.retarget(pose)
    expected, _ = r.unity_fk(root_pos, bone_rots)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    hand = got[UNITY_BONES.index("RightHand")]
    assert hand[0] > 0 and hand[1] < got[UNITY_BONES.index("RightUpperArm")][1]  # lowered, on the right (+X)


def test_http_and_websocket(pipeline):
    server, rx, tx = pipeline
    tx.send(dancing_pose(0))
    assert rx.wait_for(frames=1, timeout=2)
    html = urllib.request.urlopen(server.url, timeout=5).read().decode()
    assert "<canvas" in html and "preview.js" in html
    assert b"WebSocket" in urllib.request.urlopen(server.url + "preview.js", timeout=5).read()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(server.url + "nope", timeout=5)
    snap = json.loads(urllib.request.urlopen(server.url + "pose.json", timeout=5).read())
    assert len(snap["joints"]) == 22 and snap["status"] == "VMC test stream"

    async def client():
        from websockets.asyncio.client import connect

        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            frames = set()
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            frames.add(first["frame"])
            for i in range(1, 6):
                tx.send(dancing_pose(i))
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                frames.add(msg["frame"])
            return msg, frames

    msg, frames = asyncio.run(client())
    assert len(msg["joints"]) == 22 and msg["parents"][0] == -1 and len(frames) >= 3


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")
def test_screenshot_shows_skeleton(pipeline, tmp_path):
    server, rx, tx = pipeline
    for i in range(5):
        tx.send(dancing_pose(i))
    assert rx.wait_for(frames=5, timeout=2)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    png = SCREENSHOT_DIR / "preview.png"
    if png.exists():
        png.unlink()
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", f"--screenshot={png}",
           "--window-size=640,480", server.url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert png.is_file(), r.stdout[-2000:] + r.stderr[-2000:]
    img = read_png_rgb(png)
    assert img.shape[:2] == (480, 640)
    orange = (np.abs(img - [0xff, 0x8c, 0x1a]).sum(axis=2) < 60)
    blue = (np.abs(img - [0x36, 0xc5, 0xf0]).sum(axis=2) < 60)
    background = (np.abs(img - [0x12, 0x14, 0x1a]).sum(axis=2) < 12)
    print(f"screenshot {png}: orange {orange.sum()} px, blue {blue.sum()} px, background {background.mean():.2f}")
    assert orange.sum() > 300 and blue.sum() > 100
    assert background.mean() > 0.7
    ys, xs = np.nonzero(orange)
    assert 100 < xs.mean() < 540 and 60 < ys.mean() < 460  # roughly centred
