"""transflower.bridge.preview: VMC or our poses in -> WebSocket/HTTP out -> a VRM avatar (three-vrm) or a skeleton in headless
Chromium, driven over the DevTools protocol: the avatar's pose matches the sent one, its feet stay on the floor
(for an avatar of other proportions too), the performer controls reach on_control; screenshots in docs/evidence/."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from transflower.bridge.preview import PreviewServer, configure_parser, vmc_frame_positions
from transflower.bridge.retarget import UNITY_BONES, HumanoidRetarget, from_unity_position, synthetic_tpose_skeleton
from transflower.bridge.vmc import VmcReceiver, VmcSender
from transflower.skeleton import Pose

sys.path.insert(0, str(Path(__file__).resolve().parent))

SK = synthetic_tpose_skeleton()
SCREENSHOT_DIR = Path(os.environ.get("TRANSFLOWER_ARTIFACTS", "/tmp/transflower-artifacts"))
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")


def dancing_pose(i: int) -> Pose:
    q = np.tile([0.0, 0.0, 0.0, 1.0], (SK.num_joints, 1))
    q[SK.names.index("RightArm")] = Rotation.from_euler("z", 60 + 5 * i, degrees=True).as_quat()  # right arm lowered
    q[SK.names.index("LeftForeArm")] = Rotation.from_euler("y", 40, degrees=True).as_quat()
    q[SK.names.index("RightUpLeg")] = Rotation.from_euler("x", -25, degrees=True).as_quat()
    return Pose(i, i / 30, np.array([0.0, 93.0, 0.0]), q)


def read_png_rgb(path: Path) -> np.ndarray:
    return read_png_rgba(path)[:, :, :3]


def read_png_rgba(path: Path) -> np.ndarray:
    """A tiny PNG reader (8-bit RGB/RGBA, non-interlaced: what Chromium writes), so the test needs no Pillow.
    (h, w, 4); an RGB file reads as opaque."""
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
    img = out.reshape(h, w, bpp)
    return img if bpp == 4 else np.concatenate([img, np.full((h, w, 1), 255, dtype=np.int64)], axis=2)


def avatar_colours(img: np.ndarray) -> dict:
    """Pixel counts of the default avatar's colours, lit and shaded: classified by hue, not exact colour."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return {"orange": int(((r > 140) & (r > g + 30) & (g > b + 60)).sum()),
            "blue": int(((b > 120) & (b > r + 50) & (g > r + 30)).sum()),
            "skin": int(((r > 130) & (r > g + 15) & (g > b + 8) & (g < b + 50)).sum()),
            "shirt": int(((img.min(axis=2) > 150) & (img.max(axis=2) - img.min(axis=2) < 25)).sum())}


@pytest.fixture
def pipeline():
    server = PreviewServer(port=0, status_fn=lambda: "VMC test stream")
    rx = VmcReceiver(0, on_frame=server.push_vmc)
    server.start()
    tx = VmcSender([("127.0.0.1", rx.port)], SK, bone_positions="skeleton")
    yield server, rx, tx
    tx.close()
    rx.close()
    server.stop()


def test_cli_parser():
    p = argparse.ArgumentParser()
    configure_parser(p)
    a = p.parse_args(["--port", "39540", "--http", "9000", "--avatar", "me.vrm"])
    assert a.port == 39540 and a.http == 9000 and a.avatar == "me.vrm"


def test_avatar_option_errors(tmp_path):
    from transflower.errors import UserError

    with pytest.raises(UserError, match="file not found"):
        PreviewServer(port=0, avatar=tmp_path / "none.vrm")
    (tmp_path / "x.vrm").write_text("hello")
    with pytest.raises(UserError, match="not a VRM"):
        PreviewServer(port=0, avatar=tmp_path / "x.vrm")


def test_vmc_fk_matches_retarget_fk(pipeline):
    server, rx, tx = pipeline
    pose = dancing_pose(2)
    tx.send(pose)
    assert rx.wait_for(packets=2, timeout=2)
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
    assert rx.wait_for(packets=2, timeout=2)
    html = urllib.request.urlopen(server.url, timeout=5).read().decode()
    assert "<canvas" in html and "preview.js" in html and "vrm_bundle.js" in html
    assert b"WebSocket" in urllib.request.urlopen(server.url + "preview.js", timeout=5).read()
    assert b"VRMLoaderPlugin" in urllib.request.urlopen(server.url + "vrm_bundle.js", timeout=5).read()  # no CDN
    assert urllib.request.urlopen(server.url + "avatar.vrm", timeout=5).read()[:4] == b"glTF"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(server.url + "nope", timeout=5)
    snap = json.loads(urllib.request.urlopen(server.url + "pose.json", timeout=5).read())
    assert len(snap["rots"]) == 22 and snap["status"] == "VMC test stream" and snap["bones"] == UNITY_BONES

    async def client():
        from websockets.asyncio.client import connect

        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
            frames = set()
            for i in range(1, 6):
                tx.send(dancing_pose(i))
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                while msg["type"] != "pose":
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                frames.add(msg["frame"])
            return hello, msg, frames

    hello, msg, frames = asyncio.run(client())
    assert hello["type"] == "hello" and hello["parents"][0] == -1 and hello["hips_height"] == pytest.approx(0.93)
    assert len(msg["rots"]) == 22 and len(frames) >= 3


def test_push_pose_allocates_nothing_per_frame():
    """The live loop calls sender.send and preview.push_pose every frame: no new arrays once warmed up."""
    import tracemalloc

    server = PreviewServer(port=0)
    pose = dancing_pose(1)
    with VmcSender([("127.0.0.1", 9)], SK) as tx:
        for _ in range(5):  # warm up (first calls build the retarget and caches)
            tx.send(pose)
            server.push_pose(pose, SK)
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for i in range(200):
            pose.time = i / 30
            tx.send(pose)
            server.push_pose(pose, SK)
        now, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"per-frame send + push_pose: net {now - base} B after 200 frames, peak +{peak - base} B")
    assert now - base < 4096 and peak - base < 8192  # no array per frame (a 22x4 float64 array alone is 704 B)


def test_page_controls_are_validated_before_the_callback():
    got = []
    server = PreviewServer(port=0, on_control=lambda a, args: got.append((a, args)))
    for msg in ['{"control": "/transflower/temperature", "args": [0.8]}', '{"control": "/transflower/style", "args": ["waltz"]}',
                '{"control": "/transflower/hold", "args": [1]}', '{"control": "/transflower/reset", "args": []}',
                '{"control": "/transflower/gain", "args": [2]}',
                '{"control": "/transflower/correlation", "args": [0.5]}', '{"control": "/transflower/correlation", "args": []}',
                # ignored: unknown address, wrong types or counts, not JSON, NaN
                '{"control": "/transflower/tempo", "args": [1.0]}', '{"control": "/transflower/temperature", "args": ["hot"]}',
                '{"control": "/transflower/reset", "args": [1]}', 'nonsense', '{"control": "/transflower/gain", "args": [NaN]}',
                '{"control": "/transflower/hold", "args": [0.5]}', '[1, 2]',
                '{"control": "/transflower/correlation", "args": ["smooth"]}']:
        server._handle_page_message(msg)
    assert got == [("/transflower/temperature", (0.8,)), ("/transflower/style", ("waltz",)), ("/transflower/hold", (1,)),
                   ("/transflower/reset", ()), ("/transflower/gain", (2.0,)), ("/transflower/correlation", (0.5,)),
                   ("/transflower/correlation", ())]
    assert server.controls_rejected == 8


# ------------------------------------------------------------------------------- headless Chromium
def crouch(knee: float = 50.0) -> Pose:
    from test_vmc_receivers import crouch_pose

    return crouch_pose(knee, yaw_deg=25.0)


@pytest.fixture
def browser_factory(tmp_path):
    from cdp import Browser

    opened = []

    def open_(url):
        b = Browser(url, tmp_path / f"profile{len(opened)}")
        opened.append(b)
        return b

    yield open_
    for b in opened:
        b.close()


def wait_applied(b, server, frame_no):
    return b.wait_for(f"window.__tf.ready && window.__tf.appliedFrame >= {frame_no}", 40)


@needs_chromium
def test_vrm_avatar_matches_the_sent_pose_with_feet_on_the_floor(browser_factory):
    server = PreviewServer(port=0, status_fn=lambda: "live test").start()
    try:
        b = browser_factory(server.url)
        r = HumanoidRetarget(SK)
        for k, pose in enumerate([dancing_pose(4), crouch(50.0)]):
            server.push_pose(pose, SK)
            wait_applied(b, server, server._seq)
            bones = b.eval("window.__tf.bones()")
            root_pos, _, bone_rots = [a.copy() for a in r.retarget(pose)]
            expected = from_unity_position(r.unity_fk(root_pos, bone_rots)[0]) / 100  # glTF frame, metres
            for i, name in enumerate(UNITY_BONES):  # the default avatar has the dancer's proportions: exact
                np.testing.assert_allclose(bones[name], expected[i], atol=2e-3, err_msg=name)
            feet = min(bones["LeftToes"][1], bones["RightToes"][1])
            print(f"pose {k}: lowest toes joint {100 * feet:+.2f} cm")
            assert abs(feet) < 0.005
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shot = b.screenshot(SCREENSHOT_DIR / "preview_vrm.png")  # docs/evidence/preview_vrm.png is one of these
        px = avatar_colours(read_png_rgb(shot))
        print(f"screenshot {shot}: {px}")
        # a dressed figure: skin, a light shirt, the right shoe orange and the left one blue
        assert px["skin"] > 300 and px["shirt"] > 1500 and px["orange"] > 40 and px["blue"] > 40
    finally:
        server.stop()


def make_default_vrm():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_default_vrm", Path(__file__).resolve().parents[1] / "scripts" / "make_default_vrm.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    return mk


def test_default_avatar_is_the_scripts_small_dressed_vrm():
    """The committed default avatar is exactly what the script writes (deterministic), small, VRM 1.0 with the 22
    humanoid bones and no node rotations, dressed in separate materials, its parts closed and wound outward with
    unit normals that agree."""
    import struct

    from transflower.bridge.preview import DEFAULT_AVATAR

    mk = make_default_vrm()
    data = mk.build()
    assert data == mk.build() == DEFAULT_AVATAR.read_bytes() and len(data) < 400_000
    n = struct.unpack("<I", data[12:16])[0]
    gltf = json.loads(data[20:20 + n])
    blob = data[20 + n + 8:]
    vrm = gltf["extensions"]["VRMC_vrm"]
    assert vrm["specVersion"] == "1.0" and len(vrm["humanoid"]["humanBones"]) == 22
    assert not any("rotation" in node for node in gltf["nodes"])
    assert {"skin", "shirt", "trousers", "hair"} <= {m["name"] for m in gltf["materials"]}

    def read(i):
        acc = gltf["accessors"][i]
        view = gltf["bufferViews"][acc["bufferView"]]
        return np.frombuffer(blob, np.float32, acc["count"] * 3, view["byteOffset"]).reshape(-1, 3)

    head = next(m for m in gltf["meshes"] if m["name"] == "Head")
    assert len(head["primitives"]) >= 4  # skin, hair, eyes, lips: a face, not a box
    for mesh in gltf["meshes"]:
        for prim in mesh["primitives"]:
            pos, nrm = read(prim["attributes"]["POSITION"]), read(prim["attributes"]["NORMAL"])
            np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=2e-3)
            acc = gltf["accessors"][prim["indices"]]
            tri = np.frombuffer(blob, np.uint16, acc["count"], gltf["bufferViews"][acc["bufferView"]]["byteOffset"])
            a, b, c = (pos[tri.reshape(-1, 3)[:, k]].astype(float) for k in range(3))
            face = np.cross(b - a, c - a)
            assert np.einsum("ij,ij->i", a, face).sum() / 6 > 0, mesh["name"]  # closed and wound outward: volume > 0
            big = np.linalg.norm(face, axis=1) > 1e-7  # the winding agrees with the shading normals
            agree = np.einsum("ij,ij->i", face[big], nrm[tri.reshape(-1, 3)[big]].sum(axis=1)) > 0
            assert agree.mean() > 0.98, (mesh["name"], prim["material"], agree.mean())


@needs_chromium
def test_avatar_of_other_proportions_keeps_them_and_its_feet_on_the_floor(browser_factory, tmp_path):
    mk = make_default_vrm()
    avatar = tmp_path / "long_arms_short_legs.vrm"
    avatar.write_bytes(mk.build(leg=0.8, arm=1.25, torso=0.9))
    server = PreviewServer(port=0, avatar=avatar).start()
    try:
        b = browser_factory(server.url)
        server.push_pose(crouch(0.0), SK)
        wait_applied(b, server, server._seq)
        rest = b.eval("window.__tf.bones()")
        for knee in (50.0, 80.0):
            server.push_pose(crouch(knee), SK)
            wait_applied(b, server, server._seq)
            bones = b.eval("window.__tf.bones()")
            feet = min(bones["LeftToes"][1], bones["RightToes"][1])
            print(f"knee {knee:.0f}: other avatar's lowest toes joint {100 * feet:+.2f} cm")
            assert abs(feet) < 0.005
            for name, parent in (("LeftLowerLeg", "LeftUpperLeg"), ("LeftHand", "LeftLowerArm"), ("Head", "Neck")):
                own = np.linalg.norm(np.subtract(rest[name], rest[parent]))
                assert np.linalg.norm(np.subtract(bones[name], bones[parent])) == pytest.approx(own, abs=1e-4)
        thigh = np.linalg.norm(np.subtract(rest["LeftLowerLeg"], rest["LeftUpperLeg"]))
        assert thigh == pytest.approx(0.8 * 0.42, abs=1e-3)  # really the short-legged avatar
    finally:
        server.stop()


@needs_chromium
def test_performer_controls_reach_the_callback(browser_factory):
    got = []
    server = PreviewServer(port=0, on_control=lambda a, args: got.append((a, args)), styles=["cha-cha", "rumba", "waltz"])
    server.set_values({"temperature": 0.8, "style": "rumba", "hold": 0, "gain": 1.0})
    server.start()
    try:
        server.push_pose(dancing_pose(1), SK)
        b = browser_factory(server.url)
        b.wait_for("document.querySelectorAll('#styles button').length === 3 && window.__tf.pose")
        assert "style rumba" in b.eval("document.getElementById('values').textContent")  # the current values shown
        assert b.eval("document.querySelector('#styles button.active').textContent") == "rumba"
        # the sliders take their ranges from the server's hello (transflower.control_spec), not the page
        from transflower.bridge.preview import CONTROL_RANGES

        for address, slider in (("/transflower/gain", "gain"), ("/transflower/temperature", "temperature"),
                                ("/transflower/style_strength", "style-strength")):
            lo, hi = CONTROL_RANGES[address]
            assert b.eval(f"[Number(document.getElementById('{slider}').min), Number(document.getElementById('{slider}').max)]") == [lo, hi]
        b.click('#styles button[data-style="waltz"]')
        b.click("#hold")
        b.click("#reset")
        b.click("#temperature")  # the middle of the track: 1.0 on a 0..2 slider
        b.click("#style-strength")  # the middle of 0..4: 2
        b.click("#correlation")  # the middle of 0..0.95
        b.click("#correlation-preset")  # back to the styles' presets: no argument
        deadline = time.monotonic() + 10
        while len(got) < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got[:3] == [("/transflower/style", ("waltz",)), ("/transflower/hold", (1,)), ("/transflower/reset", ())]
        assert got[3][0] == "/transflower/temperature" and got[3][1][0] == pytest.approx(1.0, abs=0.1)
        assert got[4][0] == "/transflower/style_strength" and got[4][1][0] == pytest.approx(2.0, abs=0.3)
        assert got[5][0] == "/transflower/correlation" and got[5][1][0] == pytest.approx(0.475, abs=0.1)
        assert got[6] == ("/transflower/correlation", ())
        b.eval("document.activeElement.blur()")  # a slider under the performer's hand is not overwritten
        server.set_values({"temperature": 0.5, "style": "waltz", "style_strength": 1.5, "correlation": 0.6, "hold": 1,
                           "gain": 1.0})
        b.wait_for("document.getElementById('values').textContent.includes('temperature 0.50')", 10)
        b.wait_for("document.getElementById('style-strength-value').textContent === '1.50'", 10)
        b.wait_for("document.getElementById('correlation-value').textContent === '0.60'", 10)
        server.set_values({"temperature": 0.5, "style": "waltz", "correlation": None, "hold": 1, "gain": 1.0})
        b.wait_for("document.getElementById('values').textContent.includes('correlation preset')", 10)
        assert b.eval("document.getElementById('correlation-value').textContent") == "preset"
        assert b.eval("document.querySelector('#styles button.active').textContent") == "waltz"
    finally:
        server.stop()


@needs_chromium
def test_overlay_is_the_avatar_alone_on_a_transparent_page(browser_factory):
    """?overlay, as an OBS Browser Source shows it (the page's default background transparent): alpha 0 everywhere
    but the avatar (no telemetry, controls, floor grid), the avatar opaque; the normal page is opaque all over."""
    server = PreviewServer(port=0, status_fn=lambda: "live test").start()
    try:
        server.push_pose(dancing_pose(4), SK)
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shots, boxes = {}, {}
        for mode, query in (("normal", ""), ("overlay", "?overlay")):
            b = browser_factory(server.url + query)
            wait_applied(b, server, server._seq)
            assert b.eval("window.__tf.overlay") == (mode == "overlay")
            bones = b.eval("window.__tf.bones()")
            head_top = np.add(bones["Head"], [0.0, 0.3, 0.0]).tolist()  # the joints, and the head above its joint
            boxes[mode] = np.array([b.eval(f"window.__tf.toScreen({json.dumps(p)})") for p in [*bones.values(), head_top]])
            shots[mode] = read_png_rgba(b.screenshot(SCREENSHOT_DIR / f"preview_{mode}.png", transparent=True))
            if mode == "overlay":
                assert b.eval("window.__tf.clearAlpha") == 0
                assert b.eval("document.getElementById('view3d').getContext('webgl2').getContextAttributes().alpha")
                for part in ("hud", "controls"):
                    assert b.eval(f"getComputedStyle(document.getElementById('{part}')).display") == "none"
        assert (shots["normal"][..., 3] == 255).all()  # the normal page: an opaque background
        alpha = shots["overlay"][..., 3]
        h, w = alpha.shape
        joints = np.round(boxes["overlay"]).astype(int)
        print(f"overlay: {(alpha > 0).sum()} of {alpha.size} px drawn, joints x {joints[:, 0].min()}..{joints[:, 0].max()}, "
              f"y {joints[:, 1].min()}..{joints[:, 1].max()}")
        for name in ("Hips", "Spine", "Chest", "Head", "RightUpperArm", "LeftUpperLeg"):  # inside the body: opaque
            x, y = np.round(boxes["overlay"][list(bones).index(name)]).astype(int)
            assert alpha[y, x] == 255, name
        # nothing drawn beyond the joints' box (but for the limbs' thickness): no text, panel or floor grid
        margin = 40
        x0, y0 = np.maximum(joints.min(axis=0) - margin, 0)
        x1, y1 = np.minimum(joints.max(axis=0) + margin, [w - 1, h - 1])
        outside = alpha.copy()
        outside[y0:y1 + 1, x0:x1 + 1] = 0
        assert outside.max() == 0 and x0 > 0 and x1 < w - 1  # and there is margin on both sides: it was tested
        for corner in (alpha[:20, :20], alpha[:20, -20:], alpha[-20:, :20], alpha[-20:, -20:]):
            assert corner.max() == 0
        assert (alpha == 255).sum() > 3000
    finally:
        server.stop()


@needs_chromium
def test_telemetry_is_hidden_until_toggled(browser_factory):
    """The raw telemetry (link, status line with the UDP error count, rates) is off the page until the button or
    key T shows it; the toggle hides it again; an overlay never shows it."""
    server = PreviewServer(port=0, status_fn=lambda: "sending 60 fps | udp err 3").start()
    try:
        server.push_pose(dancing_pose(1), SK)
        b = browser_factory(server.url)
        b.wait_for("window.__tf.pose && document.getElementById('status').textContent.includes('udp err 3')")
        shown = "getComputedStyle(document.getElementById('hud')).display !== 'none'"

        def hud_text_px():  # light text pixels where the telemetry sits (top left; the avatar is in the middle)
            img = read_png_rgb(b.screenshot(SCREENSHOT_DIR / "preview_telemetry.png"))[:100, :300]
            return int((img.min(axis=2) > 150).sum())

        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        assert not b.eval(shown) and hud_text_px() == 0  # hidden by default
        b.click("#telemetry-toggle")
        assert b.eval(shown) and b.eval("document.getElementById('telemetry-toggle').classList.contains('active')")
        assert hud_text_px() > 100
        b.press("t")
        assert not b.eval(shown) and hud_text_px() == 0
        b.press("T")
        assert b.eval(shown)
        o = browser_factory(server.overlay_url)
        o.wait_for("window.__tf.pose")
        o.press("t")
        assert not o.eval(shown)
    finally:
        server.stop()


def test_overlay_url_is_printed_with_the_page_url():
    server = PreviewServer(port=8123)
    assert server.overlay_url == "http://127.0.0.1:8123/?overlay"
    assert server.url in server.urls_text() and server.overlay_url in server.urls_text()


@needs_chromium
def test_skeleton_view_still_draws(pipeline, browser_factory):
    server, rx, tx = pipeline
    for i in range(3):
        tx.send(dancing_pose(i))
    assert rx.wait_for(packets=6, timeout=2)
    b = browser_factory(server.url + "?view=skeleton")
    b.wait_for("window.__tf.pose && window.__tf.view() === 'skeleton'")
    time.sleep(0.5)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    img = read_png_rgb(b.screenshot(SCREENSHOT_DIR / "preview_skeleton.png"))
    orange = (np.abs(img - [0xff, 0x8c, 0x1a]).sum(axis=2) < 60)
    blue = (np.abs(img - [0x36, 0xc5, 0xf0]).sum(axis=2) < 60)
    print(f"skeleton view: orange {orange.sum()} px, blue {blue.sum()} px")
    assert orange.sum() > 300 and blue.sum() > 100
