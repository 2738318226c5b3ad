"""A small, exact OSC 1.0 encoder/decoder (messages and bundles), plus a precompiled frame encoder.

Encoding: int32 ``i``, float32 ``f``, string ``s`` and blob ``b`` arguments; Python ints become
``i`` and Python floats ``f`` (never ``d``: several VMC receivers cannot skip a double). Bundles nest.

Decoding validates everything (4-byte alignment, sizes, type tags, string terminators and padding,
truncation, absurd sizes, nesting depth) and raises :class:`OscDecodeError` on malformed input; no
other exception escapes :func:`decode`. Besides ``i f s b`` it understands the common extended
tags ``h t d T F N I`` so that packets from other senders decode.

:class:`FrameEncoder` is for the per-frame hot path: the bundle's static bytes (addresses, type tags,
names, size prefixes) are laid out once in a preallocated bytearray and each frame only writes its
float32 values, with one numpy scatter into a big-endian view of that buffer.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np

__all__ = [
    "OscDecodeError", "OscMessage", "OscBundle", "IMMEDIATELY", "MAX_PACKET", "encode_message",
    "encode_bundle", "encode", "decode", "FrameEncoder",
]

IMMEDIATELY = 1  # the OSC timetag meaning "now"
MAX_PACKET = 65536  # larger than any UDP datagram: anything longer is refused outright
MAX_DEPTH = 8  # nested bundles
BUNDLE_TAG = b"#bundle\x00"

_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_I64 = struct.Struct(">q")
_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1


class OscDecodeError(ValueError):
    """A packet that is not valid OSC 1.0 (the message says what and where)."""


@dataclass(frozen=True)
class OscMessage:
    address: str
    args: tuple = ()
    typetags: str = ""  # without the leading comma; filled in by the decoder, optional for encoding

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))


@dataclass(frozen=True)
class OscBundle:
    timetag: int = IMMEDIATELY
    elements: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))


Packet = Union[OscMessage, OscBundle]


# ----------------------------------------------------------------------------------------- encode
def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _osc_string(s: str) -> bytes:
    b = s.encode("utf-8")
    if b"\x00" in b:
        raise ValueError(f"OSC string contains a NUL byte: {s!r}")
    return b + b"\x00" * (_pad4(len(b) + 1) - len(b))


def _osc_blob(b: bytes) -> bytes:
    b = bytes(b)
    return _I32.pack(len(b)) + b + b"\x00" * (_pad4(len(b)) - len(b))


def _infer_tag(a) -> str:
    if isinstance(a, (bool, np.bool_)):
        raise TypeError("OSC: bool arguments are ambiguous; pass int(x) or use T/F explicitly")
    if isinstance(a, (int, np.integer)):
        return "i"
    if isinstance(a, (float, np.floating)):
        return "f"
    if isinstance(a, str):
        return "s"
    if isinstance(a, (bytes, bytearray, memoryview)):
        return "b"
    raise TypeError(f"OSC: cannot encode argument of type {type(a).__name__}")


def encode_message(address: str, args: Sequence = (), typetags: str | None = None) -> bytes:
    """Encode one message. ``typetags`` (e.g. ``"sfff"``) forces the types; by default they are inferred."""
    if not address.startswith("/"):
        raise ValueError(f"OSC address must start with '/': {address!r}")
    args = tuple(args)
    if typetags is None or typetags == "":
        typetags = "".join(_infer_tag(a) for a in args)
    if typetags.startswith(","):
        typetags = typetags[1:]
    if len(typetags) != len(args):
        raise ValueError(f"OSC: {len(typetags)} type tags for {len(args)} arguments")
    out = [_osc_string(address), _osc_string("," + typetags)]
    for tag, a in zip(typetags, args):
        if tag == "i":
            v = int(a)
            if not _INT32_MIN <= v <= _INT32_MAX:
                raise ValueError(f"OSC int32 out of range: {v}")
            out.append(_I32.pack(v))
        elif tag == "f":
            out.append(_F32.pack(float(a)))
        elif tag == "s":
            out.append(_osc_string(str(a)))
        elif tag == "b":
            out.append(_osc_blob(a))
        else:
            raise ValueError(f"OSC: encoding type tag {tag!r} is not supported (only i, f, s, b)")
    return b"".join(out)


def encode_bundle(elements: Sequence[Union[Packet, bytes]], timetag: int = IMMEDIATELY) -> bytes:
    out = [BUNDLE_TAG, _U64.pack(timetag)]
    for e in elements:
        b = e if isinstance(e, (bytes, bytearray)) else encode(e)
        out.append(_I32.pack(len(b)))
        out.append(bytes(b))
    return b"".join(out)


def encode(packet: Packet) -> bytes:
    if isinstance(packet, OscMessage):
        return encode_message(packet.address, packet.args, packet.typetags or None)
    if isinstance(packet, OscBundle):
        return encode_bundle(packet.elements, packet.timetag)
    raise TypeError(f"OSC: cannot encode {type(packet).__name__}")


# ----------------------------------------------------------------------------------------- decode
def _read_string(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise OscDecodeError(f"{what} at byte {pos}: no NUL terminator before byte {end}")
    nxt = _pad4(nul + 1 - pos) + pos
    if nxt > end:
        raise OscDecodeError(f"{what} at byte {pos}: padding runs past the end ({nxt} > {end})")
    if data[nul:nxt].count(0) != nxt - nul:
        raise OscDecodeError(f"{what} at byte {pos}: non-zero padding bytes")
    try:
        s = data[pos:nul].decode("utf-8")
    except UnicodeDecodeError as e:
        raise OscDecodeError(f"{what} at byte {pos}: not UTF-8 ({e.reason})") from None
    return s, nxt


def _need(pos: int, n: int, end: int, what: str) -> None:
    if pos + n > end:
        raise OscDecodeError(f"truncated: {what} at byte {pos} needs {n} bytes, {end - pos} left")


def _decode_message(data: bytes, pos: int, end: int) -> OscMessage:
    address, pos = _read_string(data, pos, end, "address")
    if not address.startswith("/"):
        raise OscDecodeError(f"address must start with '/': {address[:40]!r}")
    if pos == end:  # OSC 1.0 allows a message without a type tag string (very old senders)
        return OscMessage(address, (), "")
    tags, pos = _read_string(data, pos, end, "type tag string")
    if not tags.startswith(","):
        raise OscDecodeError(f"type tag string must start with ',': {tags[:40]!r}")
    tags = tags[1:]
    args: list = []
    for tag in tags:
        if tag == "i":
            _need(pos, 4, end, "int32")
            args.append(_I32.unpack_from(data, pos)[0]); pos += 4
        elif tag == "f":
            _need(pos, 4, end, "float32")
            args.append(_F32.unpack_from(data, pos)[0]); pos += 4
        elif tag == "s" or tag == "S":
            s, pos = _read_string(data, pos, end, "string argument")
            args.append(s)
        elif tag == "b":
            _need(pos, 4, end, "blob size")
            n = _I32.unpack_from(data, pos)[0]; pos += 4
            if n < 0 or n > end - pos:
                raise OscDecodeError(f"blob size {n} at byte {pos - 4} exceeds the {end - pos} bytes left")
            padded = _pad4(n)
            _need(pos, padded, end, "blob data")
            args.append(bytes(data[pos:pos + n])); pos += padded
        elif tag == "h" or tag == "t":
            _need(pos, 8, end, "int64/timetag")
            args.append(_I64.unpack_from(data, pos)[0] if tag == "h" else _U64.unpack_from(data, pos)[0]); pos += 8
        elif tag == "d":
            _need(pos, 8, end, "float64")
            args.append(_F64.unpack_from(data, pos)[0]); pos += 8
        elif tag == "T":
            args.append(True)
        elif tag == "F":
            args.append(False)
        elif tag == "N":
            args.append(None)
        elif tag == "I":
            args.append(float("inf"))
        else:
            raise OscDecodeError(f"unsupported type tag {tag!r} in ',{tags[:40]}'")
    if pos != end:
        raise OscDecodeError(f"message {address[:40]!r}: {end - pos} trailing bytes after the arguments")
    return OscMessage(address, tuple(args), tags)


def _decode(data: bytes, pos: int, end: int, depth: int) -> Packet:
    size = end - pos
    if size <= 0:
        raise OscDecodeError("empty packet")
    if size % 4:
        raise OscDecodeError(f"packet size {size} is not a multiple of 4")
    first = data[pos]
    if first == 0x23:  # '#'
        if data[pos:pos + 8] != BUNDLE_TAG:
            raise OscDecodeError("starts with '#' but is not '#bundle'")
        if depth >= MAX_DEPTH:
            raise OscDecodeError(f"bundles nested deeper than {MAX_DEPTH}")
        _need(pos + 8, 8, end, "bundle timetag")
        timetag = _U64.unpack_from(data, pos + 8)[0]
        pos += 16
        elements = []
        while pos < end:
            _need(pos, 4, end, "bundle element size")
            n = _I32.unpack_from(data, pos)[0]
            pos += 4
            if n <= 0 or n % 4 or n > end - pos:
                raise OscDecodeError(f"bundle element size {n} at byte {pos - 4} is invalid "
                                     f"({end - pos} bytes left; sizes are positive multiples of 4)")
            elements.append(_decode(data, pos, pos + n, depth + 1))
            pos += n
        return OscBundle(timetag, tuple(elements))
    if first == 0x2F:  # '/'
        return _decode_message(data, pos, end)
    raise OscDecodeError(f"packet starts with byte 0x{first:02x}: neither '/' (message) nor '#bundle'")


def decode(data: bytes | bytearray | memoryview) -> Packet:
    """Decode one OSC packet (a message or a bundle). Raises only :class:`OscDecodeError`."""
    try:
        data = bytes(data)
    except Exception as e:  # not bytes-like
        raise OscDecodeError(f"not a bytes-like packet: {type(data).__name__}") from e
    if len(data) > MAX_PACKET:
        raise OscDecodeError(f"packet of {len(data)} bytes is larger than any UDP datagram ({MAX_PACKET})")
    try:
        return _decode(data, 0, len(data), 0)
    except OscDecodeError:
        raise
    except Exception as e:  # defensive: a bug above must still surface as a decode error, never a crash
        raise OscDecodeError(f"malformed packet ({type(e).__name__}: {e})") from e


def iter_messages(packet: Packet):
    """All messages of a packet, depth first (bundles flattened)."""
    if isinstance(packet, OscMessage):
        yield packet
    else:
        for e in packet.elements:
            yield from iter_messages(e)


# ------------------------------------------------------------------------------ precompiled frames
class FrameEncoder:
    """A bundle of fixed layout whose float32 arguments change every frame.

    ``messages`` is a list of ``(address, typetags, args)`` where an argument ``None`` at an ``f`` tag
    is a per-frame slot; every other argument is static. ``encode(values)`` writes the slots in order
    (``values`` has ``num_slots`` floats) and returns a memoryview of the internal buffer (valid until
    the next call; copy it to keep it).
    """

    def __init__(self, messages: Sequence[tuple[str, str, Sequence]], timetag: int = IMMEDIATELY):
        parts: list[bytes] = [BUNDLE_TAG, _U64.pack(timetag)]
        slots: list[int] = []
        offset = 16
        for address, tags, args in messages:
            if len(tags) != len(args):
                raise ValueError(f"{address}: {len(tags)} type tags for {len(args)} arguments")
            static_args = [0.0 if a is None else a for a in args]
            body = encode_message(address, static_args, tags)
            # locate the argument area: after the padded address and type tag strings
            arg_pos = offset + 4 + len(_osc_string(address)) + len(_osc_string("," + tags))
            p = arg_pos
            for tag, a in zip(tags, args):
                if a is None:
                    if tag != "f":
                        raise ValueError(f"{address}: per-frame slots must be float32 ('f'), got {tag!r}")
                    slots.append(p // 4)
                if tag in "if":
                    p += 4
                elif tag == "s":
                    p += len(_osc_string(str(a)))
                elif tag == "b":
                    p += len(_osc_blob(a))
            parts.append(_I32.pack(len(body)))
            parts.append(body)
            offset += 4 + len(body)
        self.buffer = bytearray(b"".join(parts))
        self._words = np.frombuffer(self.buffer, dtype=">f4")  # writable big-endian view
        self._slots = np.asarray(slots, dtype=np.intp)
        self._stage = np.zeros(len(slots), dtype=">f4")  # the frame's values cast once, then scattered: no temporaries
        self.num_slots = len(slots)
        self.size = len(self.buffer)
        self._view = memoryview(self.buffer)

    def encode(self, values: np.ndarray) -> memoryview:
        values = np.asarray(values)
        if values.size != self.num_slots:
            raise ValueError(f"FrameEncoder: expected {self.num_slots} values, got {values.size}")
        np.copyto(self._stage, values.reshape(-1), casting="same_kind")
        self._words[self._slots] = self._stage
        return self._view
