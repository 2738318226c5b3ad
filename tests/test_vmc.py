"""transflower.bridge.vmc: VMC bundles over UDP to our receiver and to liblo's oscdump; error handling per target."""
from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from transflower.bridge.osc import encode_bundle, encode_message, OscMessage
from transflower.bridge.retarget import UNITY_BONES, HumanoidRetarget, synthetic_tpose_skeleton
from transflower.bridge.vmc import VmcReceiver, VmcSender, parse_target
from transflower.errors import UserError
from transflower.skeleton import Pose

SK = synthetic_tpose_skeleton()
J = SK.num_joints


def a_pose(i: int = 0) -> Pose:
    rng = np.random.default_rng(i)
    q = Rotation.random(J, random_state=int(rng.integers(1 << 31))).as_quat()
    q[~np.isin(np.arange(J), SK.rotating)] = [0, 0, 0, 1]
    return Pose(i, i / 30.0, np.array([10.0 + i, 93.0, -20.0]), q)


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_parse_target():
    assert parse_target("127.0.0.1:39540") == ("127.0.0.1", 39540)
    assert parse_target("studio-pc") == ("studio-pc", 39539)
    assert parse_target(":9000") == ("127.0.0.1", 9000)
    assert parse_target("[::1]:9000") == ("::1", 9000)
    for bad, why in [("host:abc", "not a number"), ("host:0", "outside"), ("host:70000", "outside"), ("", "empty"),
                     ("a:b:c", "IPv6")]:
        with pytest.raises(UserError, match=why):
            parse_target(bad)


def test_unresolvable_host_is_a_user_error():
    with pytest.raises(UserError, match="cannot resolve"):
        VmcSender(["no-such-host.invalid:39539"], SK)


@pytest.mark.parametrize("mode", ["none", "skeleton"])
def test_every_datagram_fits_an_ethernet_mtu(mode):
    """1500-byte MTU - 20 (IPv4) - 8 (UDP) = 1472: larger datagrams fragment, and one lost fragment loses the frame."""
    port = free_udp_port()
    with VmcSender([("127.0.0.1", port)], SK, bone_positions=mode) as s:
        print(f"VMC {mode}: datagrams of {s.datagram_sizes} bytes, bones {len(s.sent_bones)}")
        assert all(n <= 1472 for n in s.datagram_sizes)
        assert s.bundle_size == max(len(bytes(e.buffer)) for e in s.encoders)
        if mode == "none":  # bones that never rotate are left out: one datagram per frame
            assert len(s.encoders) == 1 and "Hips" in s.sent_bones and "Neck" not in s.sent_bones
        else:  # all 22 bones with their positions: two bundles
            assert sorted(s.sent_bones) == sorted(UNITY_BONES) and len(s.encoders) == 2
    # the datagrams really leave at those sizes, and together carry the whole frame
    with VmcReceiver(0) as rx, VmcSender([("127.0.0.1", rx.port)], SK, bone_positions="skeleton") as tx:
        raw_sizes = []
        real = tx.sock.sendto
        tx.sock = type("S", (), {"sendto": lambda self, d, a: (raw_sizes.append(len(d)), real(d, a))[1],
                                 "recvmsg": tx.sock.recvmsg, "close": tx.sock.close})()
        tx.send(a_pose(2))
        assert rx.wait_for(packets=2, timeout=2.0)
        assert max(raw_sizes) <= 1472 and len(rx.latest().bones) == 22


def test_loopback_values():
    with VmcReceiver(0) as rx, VmcSender([("127.0.0.1", rx.port)], SK) as tx:
        pose = a_pose(3)
        assert tx.send(pose) == 1
        assert rx.wait_for(frames=1, timeout=2.0)
        f = rx.latest()
        exp_root, exp_rot, exp_bones = HumanoidRetarget(SK).retarget(pose)
        assert sorted(f.bones) == sorted(tx.sent_bones)
        np.testing.assert_allclose(f.root_position, exp_root, atol=1e-6)
        np.testing.assert_allclose(f.bones["Hips"][0], [0, 0.93, 0], atol=1e-6)  # the hip height rides on the Hips
        # Root/Pos carries no rotation by default: the Hips bone has it (receivers that apply both would double it)
        np.testing.assert_allclose(f.root_rotation, [0, 0, 0, 1], atol=1e-6)
        for b, name in enumerate(UNITY_BONES):
            if name in f.bones:
                np.testing.assert_allclose(f.bones[name][1], exp_bones[b], atol=1e-6)
                np.testing.assert_allclose(f.bones[name][0], tx.retarget.bone_positions[b] if b == 0 else 0, atol=1e-6)
            else:  # left out: its rotation is identity in every pose
                np.testing.assert_allclose(exp_bones[b], [0, 0, 0, 1])
        assert f.ok == 1 and f.time == pytest.approx(0.1, abs=1e-6)
        assert f.malformed == 0 and f.rejected == 0
        for i in range(1, 40):
            tx.send(a_pose(i))
        assert rx.wait_for(frames=40, timeout=2.0)
        assert rx.latest().time == pytest.approx(39 / 30, abs=1e-6)


def test_refused_target_is_counted_and_comes_back():
    dead_port = free_udp_port()
    with VmcReceiver(0) as rx, VmcSender([("127.0.0.1", dead_port), ("127.0.0.1", rx.port)], SK) as tx:
        for i in range(10):
            assert tx.send(a_pose(i)) >= 1
            time.sleep(0.005)
        assert rx.wait_for(frames=10, timeout=2.0)
        st = tx.status()
        dead, live = st["targets"]
        assert dead["refused"] + dead["failed"] >= 5 and "ECONNREFUSED" in dead["errors"]
        assert live["refused"] == 0 and live["failed"] == 0 and live["sent"] == 10
        assert "ECONNREFUSED" in tx.status_line()
        # the target comes back: it receives again
        with VmcReceiver(dead_port) as back:
            for i in range(5):
                tx.send(a_pose(i))
            assert back.wait_for(frames=5, timeout=2.0)


def test_send_errors_never_raise():
    class Flaky:
        def __init__(self, code):
            self.code = code

        def sendto(self, data, addr):
            raise OSError(self.code, "simulated")

        def recvmsg(self, *a):
            raise BlockingIOError

        def close(self):
            pass

    with VmcSender([("127.0.0.1", free_udp_port())], SK) as tx:
        for code in (errno.EAGAIN, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED):
            real = tx.sock
            tx.sock = Flaky(code)
            assert tx.send(a_pose()) == 0
            tx.sock = real
        t = tx.status()["targets"][0]
        assert t["failed"] == 4 and set(t["errors"]) >= {"EAGAIN", "ENETUNREACH", "EHOSTUNREACH"}
    # a real address nobody routes to (TEST-NET-1): may raise ENETUNREACH offline, must not propagate
    with VmcSender(["192.0.2.1:39539"], SK) as tx:
        t0 = time.perf_counter()
        for _ in range(5):
            tx.send(a_pose())
        assert time.perf_counter() - t0 < 0.5


def test_receiver_counts_and_survives_malformed_packets():
    with VmcReceiver(0) as rx, VmcSender([("127.0.0.1", rx.port)], SK) as tx:
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        good = bytes(tx.encoder.buffer)
        bad = [b"", b"garbage!", good[:-3], good[:101], b"#bundle\x00" + b"\x00" * 8 + b"\x7f\xff\xff\xff",
               good[:20] + b"\xff" * 40 + good[60:]]
        for b in bad:
            raw.sendto(b, ("127.0.0.1", rx.port))
        # decodable OSC but the wrong VMC types (an int where floats belong, a double): ignored, counted
        raw.sendto(encode_message("/VMC/Ext/Bone/Pos", ["Hips", 1, 2, 3, 0, 0, 0, 1]), ("127.0.0.1", rx.port))
        raw.sendto(encode_bundle([OscMessage("/VMC/Ext/T", ("x",)), OscMessage("/other", (1,))]), ("127.0.0.1", rx.port))
        assert rx.wait_for(packets=len(bad) + 2, timeout=2.0)
        f = rx.latest()
        assert f.malformed >= len(bad) - 1  # b"" may not even arrive as a datagram on some stacks
        assert f.rejected == 2 and f.frames == 0 and f.bones == {}
        tx.send(a_pose(1))
        assert rx.wait_for(frames=1, timeout=2.0)
        assert len(rx.latest().bones) == len(tx.sent_bones)
        raw.close()


@pytest.mark.skipif(shutil.which("oscdump") is None, reason="liblo's oscdump not installed (apt-get install liblo-tools)")
def test_oscdump_reads_our_bundles():
    port = free_udp_port()
    proc = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(0.4)
        pose = a_pose(5)
        with VmcSender([("127.0.0.1", port)], SK, bone_positions="skeleton") as tx:  # two bundles per frame
            for _ in range(3):
                tx.send(pose)
                time.sleep(0.05)
            _, _, exp_bones = tx.retarget.retarget(pose)
            exp_pos = tx.retarget.bone_positions
        time.sleep(0.3)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
    lines = [ln for ln in out.splitlines() if "/VMC/" in ln]
    assert len(lines) >= 3 * (3 + len(tx.sent_bones)), out[:2000]
    hips = [ln for ln in lines if '/VMC/Ext/Bone/Pos sfffffff "Hips"' in ln]
    assert hips, out[:2000]
    vals = [float(x) for x in hips[0].split('"Hips"')[1].split()]
    np.testing.assert_allclose(vals, np.concatenate([exp_pos[0], exp_bones[0]]), atol=2e-6)
    arm = [ln for ln in lines if '"RightUpperArm"' in ln][0]
    b = UNITY_BONES.index("RightUpperArm")
    np.testing.assert_allclose([float(x) for x in arm.split('"RightUpperArm"')[1].split()],
                               np.concatenate([exp_pos[b], exp_bones[b]]), atol=2e-6)
    assert any("/VMC/Ext/OK i 1" in ln for ln in lines)
    assert any("/VMC/Ext/T f 0.166667" in ln for ln in lines)
    assert any('/VMC/Ext/Root/Pos sfffffff "root"' in ln for ln in lines)
