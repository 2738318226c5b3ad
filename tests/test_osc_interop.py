"""Our OSC encoder (bridge/osc.py) against an independent implementation, python-osc (a dev dependency):
python-osc decodes the exact datagrams VmcSender puts on the wire, and re-encoding the decoded messages
with python-osc's builders gives back the same bytes."""
from __future__ import annotations

import socket

import numpy as np
import pytest

pythonosc = pytest.importorskip("pythonosc", reason="python-osc is in the dev extra")
from pythonosc.osc_bundle import OscBundle  # noqa: E402
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder  # noqa: E402
from pythonosc.osc_message import OscMessage  # noqa: E402
from pythonosc.osc_message_builder import OscMessageBuilder  # noqa: E402

from transflower.bridge.osc import encode_message  # noqa: E402
from transflower.skeleton import Pose  # noqa: E402


def capture_datagrams(send, n):
    """Run `send(port)` and return the first `n` UDP datagrams that arrive on that port."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    try:
        send(rx.getsockname()[1])
        return [rx.recv(65536) for _ in range(n)]
    finally:
        rx.close()


def python_osc_reencode(bundle: OscBundle) -> bytes:
    b = OscBundleBuilder(IMMEDIATELY)
    for m in bundle:
        mb = OscMessageBuilder(m.address)
        tags = m.dgram[m.dgram.index(b",") + 1:].split(b"\0")[0].decode()
        for tag, v in zip(tags, m.params):
            mb.add_arg(v, tag)
        b.add_content(mb.build())
    return b.build().dgram


def test_vmc_bundles_decode_in_python_osc():
    from transflower.bridge.vmc import VmcSender
    from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton

    rng = np.random.default_rng(0)
    sk = Skeleton(list(JOINT_NAMES), PARENTS, rng.normal(size=(len(JOINT_NAMES), 3)) * 10)
    q = rng.normal(size=(len(JOINT_NAMES), 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    pose = Pose(7, 1.25, np.array([10.0, 95.0, -20.0]), q)

    sent_bones = []

    def send(port):
        with VmcSender([f"127.0.0.1:{port}"], sk) as s:
            sent_bones.extend(s.sent_bones)  # bones that never rotate are left out by default (one datagram)
            s.send(pose)
            s.send_rest_pose()

    frame, rest = capture_datagrams(send, 2)
    for dgram in (frame, rest):
        assert OscBundle.dgram_is_bundle(dgram)
        bundle = OscBundle(dgram)
        msgs = list(bundle)
        assert all(isinstance(m, OscMessage) for m in msgs)
        addresses = [m.address for m in msgs]
        assert addresses[0] == "/VMC/Ext/Root/Pos" and addresses[-2:] == ["/VMC/Ext/OK", "/VMC/Ext/T"]
        bones = [m for m in msgs if m.address == "/VMC/Ext/Bone/Pos"]
        assert [m.params[0] for m in bones] == sent_bones and bones[0].params[0] == "Hips"
        for m in bones + msgs[:1]:
            assert len(m.params) == 8 and isinstance(m.params[0], str)
            assert all(isinstance(v, float) for v in m.params[1:])  # 'f', never 'i' or 'd' (EVMC4U drops those)
            assert abs(np.linalg.norm(m.params[4:8]) - 1.0) < 1e-5
        assert msgs[-2].params == [1]
        # python-osc rebuilds exactly the bytes we sent
        assert python_osc_reencode(bundle) == dgram
    assert OscBundle(frame).timestamp == 0 or OscBundle(frame).timestamp <= 1e-9  # "immediately"
    assert list(OscBundle(frame))[-1].params[0] == pytest.approx(1.25)


@pytest.mark.parametrize("args", [
    [1, 2.5, "root"], [-(2 ** 31), 2 ** 31 - 1], ["", "abc", "abcd"], [0.0, -0.0, 1e-30], [b"\x00\x01\x02"],
])
def test_single_messages_are_byte_identical(args):
    ours = encode_message("/VMC/Ext/Test", args)
    mb = OscMessageBuilder("/VMC/Ext/Test")
    for a in args:  # explicit tags: python-osc would guess 'h' (int64) for -2**31
        mb.add_arg(a, {bytes: "b", int: "i", float: "f", str: "s"}[type(a)])
    assert ours == mb.build().dgram
    assert OscMessage(ours).params == [pytest.approx(a) if isinstance(a, float) else a for a in args]
