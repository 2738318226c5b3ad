"""transflower.bridge.osc: exact OSC 1.0 encoding (checked against hand-written bytes), round trips, fuzzing."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transflower.bridge.osc import (FrameEncoder, OscBundle, OscDecodeError, OscMessage, decode, encode, encode_bundle,
                        encode_message, iter_messages)


def test_message_bytes_are_exact():
    b = encode_message("/VMC/Ext/OK", [1])
    assert b == b"/VMC/Ext/OK\x00" + b",i\x00\x00" + b"\x00\x00\x00\x01"
    b = encode_message("/a", ["root", 1.5, -2])
    assert b == b"/a\x00\x00" + b",sfi\x00\x00\x00\x00" + b"root\x00\x00\x00\x00" + struct.pack(">f", 1.5) + struct.pack(">i", -2)
    assert len(encode_message("/abc", [])) == 8 + 4  # "/abc\0" -> 8, "," -> 4


def test_ints_and_floats_are_not_confused():
    m = decode(encode_message("/x", [1, 1.0, np.float32(2.0), np.int64(3)]))
    assert m.typetags == "iffi"
    with pytest.raises(TypeError):
        encode_message("/x", [True])
    with pytest.raises(ValueError):
        encode_message("/x", [2 ** 31])


def test_bundle_layout_and_nesting():
    inner = encode_bundle([OscMessage("/b", (2,))], timetag=5)
    b = encode_bundle([OscMessage("/a", (1.0,)), inner])
    assert b[:8] == b"#bundle\x00" and struct.unpack(">Q", b[8:16])[0] == 1
    n = struct.unpack(">i", b[16:20])[0]
    assert n == len(encode_message("/a", [1.0]))
    p = decode(b)
    assert isinstance(p, OscBundle) and p.timetag == 1
    assert p.elements[0] == OscMessage("/a", (1.0,), "f")
    assert p.elements[1].timetag == 5 and p.elements[1].elements[0].args == (2,)
    assert [m.address for m in iter_messages(p)] == ["/a", "/b"]


def test_decodes_extended_tags_from_other_senders():
    raw = (b"/x\x00\x00" + b",hdTFNIb\x00\x00\x00\x00" + struct.pack(">q", -5) + struct.pack(">d", 0.25)
           + struct.pack(">i", 3) + b"abc\x00")
    m = decode(raw)
    assert m.args == (-5, 0.25, True, False, None, math.inf, b"abc")


@pytest.mark.parametrize("raw, why", [
    (b"", "empty"),
    (b"/ab", "multiple of 4"),
    (b"/abc", "NUL"),
    (b"xyz\x00", "neither"),
    (b"/a\x00\x00,ff\x00" + b"\x00" * 4, "truncated"),
    (b"/a\x00\x00,q\x00\x00", "unsupported type tag"),
    (b"/a\x00\x00i\x00\x00\x00", "must start with ','"),
    (b"/a\x00\x01,\x00\x00\x00", "padding"),
    (b"/a\x00\x00,\x00\x00\x00\x00\x00\x00\x00", "trailing"),
    (b"/a\x00\x00,b\x00\x00\x7f\xff\xff\xff", "blob size"),
    (b"/a\x00\x00,s\x00\x00abcd", "NUL"),
    (b"#bundle\x00" + b"\x00" * 8 + b"\x7f\xff\xff\xf0", "element size"),
    (b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x00", "element size"),
    (b"#bundle\x00" + b"\x00" * 8 + b"\xff\xff\xff\xfc" + b"/a\x00\x00", "element size"),
    (b"#bundle\x00" + b"\x00" * 4, "truncated"),
    (b"#bundlX\x00" + b"\x00" * 8, "#bundle"),
    (b"/\xff\xfe\x00,\x00\x00\x00", "UTF-8"),
])
def test_malformed_inputs_raise_clear_errors(raw, why):
    with pytest.raises(OscDecodeError, match=why):
        decode(raw)


def test_deep_nesting_and_huge_packets_are_refused():
    b = encode_message("/a", [])
    for _ in range(20):
        b = encode_bundle([b])
    with pytest.raises(OscDecodeError, match="nested"):
        decode(b)
    with pytest.raises(OscDecodeError, match="larger"):
        decode(b"/a\x00\x00" + b"\x00" * 70000)
    with pytest.raises(OscDecodeError):
        decode(12345)


def test_frame_encoder_matches_generic_encoder():
    msgs = [("/VMC/Ext/Root/Pos", "sfffffff", ["root"] + [None] * 7),
            ("/VMC/Ext/Bone/Pos", "sfffffff", ["LeftUpperArm", 0.1, 0.2, 0.3, None, None, None, None]),
            ("/VMC/Ext/OK", "i", [1]), ("/VMC/Ext/T", "f", [None])]
    enc = FrameEncoder(msgs)
    assert enc.num_slots == 12
    vals = np.arange(12, dtype=np.float64) / 7
    out = bytes(enc.encode(vals))
    it = iter(vals.astype(np.float32).tolist())
    expected = encode_bundle([OscMessage(a, [next(it) if x is None else x for x in args], tags) for a, tags, args in msgs])
    assert out == expected
    with pytest.raises(ValueError):
        enc.encode(np.zeros(3))


# ------------------------------------------------------------------------------------- properties
f32 = st.floats(width=32, allow_nan=False)
args_st = st.lists(st.one_of(st.integers(-2 ** 31, 2 ** 31 - 1), f32,
                             st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
                             st.binary(max_size=20)), max_size=8)
address_st = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30).map(lambda s: "/" + s)
message_st = st.builds(lambda a, args: OscMessage(a, args), address_st, args_st)
packet_st = st.recursive(message_st, lambda kids: st.builds(lambda t, els: OscBundle(t, els), st.integers(0, 2 ** 64 - 1),
                                                             st.lists(kids, max_size=4)), max_leaves=12)


def _normalise(p):
    if isinstance(p, OscMessage):
        return ("m", p.address, tuple(p.args))
    return ("b", p.timetag, tuple(_normalise(e) for e in p.elements))


@given(packet_st)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip(packet):
    b = encode(packet)
    assert len(b) % 4 == 0
    assert _normalise(decode(b)) == _normalise(packet)
    assert encode(decode(b)) == b


@given(st.binary(max_size=300))
@settings(max_examples=1000, deadline=None)
def test_random_bytes_only_raise_decode_error(raw):
    try:
        decode(raw)
    except OscDecodeError:
        pass


@given(packet_st, st.data())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_truncated_and_mutated_packets_only_raise_decode_error(packet, data):
    b = bytearray(encode(packet))
    cut = data.draw(st.integers(0, len(b)))
    try:
        decode(bytes(b[:cut]))
    except OscDecodeError:
        pass
    if b:
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(b) - 1))
            b[i] = data.draw(st.integers(0, 255))
        try:
            decode(bytes(b))
        except OscDecodeError:
            pass
