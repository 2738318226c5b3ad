"""unity_client (C#): compiled with Mono's mcs outside Unity, fed by our VmcSender over UDP."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from transflower.bridge.osc import OscMessage, encode_bundle, encode_message
from transflower.bridge.retarget import UNITY_BONES, synthetic_tpose_skeleton
from transflower.bridge.vmc import VmcSender
from transflower.skeleton import Pose

ROOT = Path(__file__).resolve().parents[1] / "unity_client"
RUNTIME = sorted((ROOT / "Runtime").glob("*.cs"))
PURE = [p for p in RUNTIME if p.name != "TransflowerVmcReceiver.cs"]  # no UnityEngine dependency
STUB = ROOT / "Tests~" / "UnityStub" / "UnityEngine.cs"
HARNESS = ROOT / "Tests~" / "Harness" / "VmcHarness.cs"

pytestmark = pytest.mark.skipif(shutil.which("mcs") is None or shutil.which("mono") is None,
                                reason="Mono's mcs/mono not installed (apt-get install mono-mcs)")
SK = synthetic_tpose_skeleton()


def mcs(out: Path, sources, target="exe"):
    r = subprocess.run(["mcs", f"-target:{target}", f"-out:{out}", "-warnaserror-", *map(str, sources)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    return mcs(tmp_path_factory.mktemp("mono") / "VmcHarness.exe", [*PURE, HARNESS])


def test_package_layout():
    import json

    pkg = json.loads((ROOT / "package.json").read_text())
    assert pkg["name"] == "com.transflower.live-receiver" and "unity" in pkg
    asmdefs = list((ROOT / "Runtime").glob("*.asmdef"))
    assert len(asmdefs) == 1 and json.loads(asmdefs[0].read_text())["name"]
    for p in [*RUNTIME, *asmdefs, ROOT / "package.json", ROOT / "README.md", ROOT / "Runtime", ROOT / "LICENSE",
              ROOT / "CHANGELOG.md"]:
        assert p.exists(), p
        assert Path(str(p) + ".meta").is_file(), f"{p.name}.meta missing (git packages are immutable: Unity ignores assets without one)"
    assert "MIT License" in (ROOT / "LICENSE").read_text() and pkg["license"] == "MIT"
    assert f"## [{pkg['version']}]" in (ROOT / "CHANGELOG.md").read_text()  # the changelog names the current version
    assert "using UnityEngine" not in "".join(p.read_text() for p in PURE)


def test_monobehaviour_compiles_against_stub(tmp_path):
    mcs(tmp_path / "Runtime.dll", [*RUNTIME, STUB], target="library")


def test_receives_our_stream_and_survives_malformed_packets(harness, tmp_path):
    tx_probe = VmcSender([("127.0.0.1", 9)], SK)
    good_file = tmp_path / "good.bin"
    tx_probe.send_rest_pose(0.5)
    good_file.write_bytes(bytes(tx_probe.encoder.buffer))
    tx_probe.close()

    bad = [b"garbage!", b"#bundle\x00" + b"\x00" * 8 + b"\x7f\xff\xff\xff", b"/VMC/Ext/Bone/Pos\x00\x00\x00,sff\x00\x00\x00\x00" + b"\x00" * 4,
           good_file.read_bytes()[:-3], good_file.read_bytes()[:200],
           b"/a\x00\x00,b\x00\x00\x7f\xff\xff\xff", b"/a\x00\x00,q\x00\x00"]
    wrong_types = [encode_message("/VMC/Ext/Bone/Pos", ["Hips", 1, 2, 3, 0, 0, 0, 1]),
                   encode_bundle([OscMessage("/VMC/Ext/T", ("x",)), OscMessage("/VMC/Ext/Blend/Val", ("A", 1.0))])]
    n_good = 30
    expected = n_good + len(bad) + len(wrong_types) + 1
    proc = subprocess.Popen(["mono", str(harness), str(expected), "10", str(good_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), line
        port = int(line.split()[1])
        rng = np.random.default_rng(7)
        q = Rotation.random(SK.num_joints, random_state=3).as_quat()
        q[~np.isin(np.arange(SK.num_joints), SK.rotating)] = [0, 0, 0, 1]
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with VmcSender([("127.0.0.1", port)], SK) as tx:
            for i in range(n_good):
                tx.send(Pose(i, i / 30, np.array([5.0, 90.0, 1.0]) + rng.normal(size=3), q))
                time.sleep(1 / 120)
            for b in bad + wrong_types:
                raw.sendto(b, ("127.0.0.1", port))
                time.sleep(0.002)
            final = Pose(99, 3.3, np.array([12.0, 91.0, -7.0]), q)
            tx.send(final)
            root_pos, root_rot, bone_rots = [a.copy() for a in tx.retarget.retarget(final)]
            if tx.root_rotation == "identity":  # the default: Root/Pos carries position only
                root_rot = np.array([0.0, 0.0, 0.0, 1.0])
            bone_pos = tx.retarget.bone_positions
            sent_bones = tx.sent_bones
        raw.close()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    vals = {}
    bones = {}
    for ln in out.splitlines():
        k, _, rest = ln.partition(" ")
        if k == "BONE":
            name, *nums = rest.split()
            bones[name] = np.array(nums, dtype=float)
        else:
            vals[k] = rest
    assert int(vals["PACKETS"]) == expected, out
    assert int(vals["POSES"]) == n_good + 1, out
    assert int(vals["MALFORMED"]) == len(bad), out
    assert int(vals["REJECTED"]) == 2, out
    assert int(vals["SAMPLED"]) > 0
    np.testing.assert_allclose(np.array(vals["ROOT"].split(), dtype=float), np.concatenate([root_pos, root_rot]), atol=1e-6)
    assert float(vals["TIME"]) == pytest.approx(3.3, abs=1e-6) and vals["OK"] == "1"
    assert sorted(bones) == sorted(sent_bones)
    for b, name in enumerate(UNITY_BONES):
        if name in bones:
            np.testing.assert_allclose(bones[name], np.concatenate([bone_pos[b] if b == 0 else np.zeros(3), bone_rots[b]]),
                                       atol=1e-6, err_msg=name)
    # hips placement: scaled by 0.744 / 0.93 = 0.8 with the streamed hip height; the avatar's own offset without
    scale, *hp = map(float, vals["ROOTMATH"].split())
    turn = Rotation.from_euler("y", 90, degrees=True)
    assert scale == pytest.approx(0.8, abs=1e-5)
    np.testing.assert_allclose(hp, 0.8 * (np.array([0.1, -0.05, 0.2]) + turn.apply([0, 0.93, 0])), atol=1e-5)
    scale, *hp = map(float, vals["ROOTMATH0"].split())
    np.testing.assert_allclose(hp, np.array([0.1, -0.05, 0.2]) + turn.apply([0, 0.744, 0.02]), atol=1e-5)
    assert scale == 1.0
    # jitter buffer: half way between identity and 90 deg about Y is 45 deg
    jy, jw, jt = map(float, vals["JITTER"].split())
    assert jy == pytest.approx(np.sin(np.pi / 8), abs=1e-5) and jw == pytest.approx(np.cos(np.pi / 8), abs=1e-5)
    assert jt == pytest.approx(10 + 0.5 / 30, abs=1e-4)
    fuzz = vals["FUZZ"].split()
    assert fuzz[-1] == "0" and int(fuzz[fuzz.index("malformed") + 1]) > 5000, vals["FUZZ"]
