"""Live control (transflower.realtime.control): the validator, the queue and its frame hook, OSC over UDP, fuzzing,
and `transflower live --control` end to end (temperature and hold reach the dancer; the summary counts).

Fakes stand in for the engine where the style API is needed (the style-conditioned model is another
issue's). No timed assertions: waits poll for a condition with a generous timeout."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transflower.bridge.osc import OscBundle, OscMessage, encode, encode_message  # noqa: E402
from transflower.realtime.control import (DEFAULT_CONTROL_PORT, ControlError, ControlInput, parse_control,  # noqa: E402
                              parse_listen_address)
from transflower.errors import UserError  # noqa: E402

STYLES = ["auto", "cha-cha", "rumba", "waltz"]


class FakeEngine:
    """The engine's control contract: temperature, styles, set_style (UserError on unknown), reset()."""

    def __init__(self, styles=STYLES):
        self.temperature = 1.0
        self.styles = list(styles)
        self.style_calls, self.resets = [], 0

    def set_style(self, name_or_weights, blend_s=1.0, strength=1.0):
        if name_or_weights not in self.styles:
            raise UserError(f"unknown style {name_or_weights!r}")
        self.style_calls.append((name_or_weights, blend_s) if strength == 1.0 else (name_or_weights, blend_s, strength))

    def reset(self):
        self.resets += 1

    def set_noise_correlation(self, value, blend_s=1.0):
        self.correlation_calls = getattr(self, "correlation_calls", []) + [(value, blend_s)]


def fake_session(engine=None):
    return SimpleNamespace(engine=engine or FakeEngine(), feats=SimpleNamespace(gain=1.0), hold=False, frame_hooks=[])


def wait_until(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()


# ------------------------------------------------------------------------------------- validator
@pytest.mark.parametrize("address,args,expected", [
    ("/transflower/temperature", (0.5,), ("temperature", 0.5)),
    ("/transflower/temperature", (2,), ("temperature", 2.0)),       # an int is fine
    ("/transflower/temperature", [0],  ("temperature", 0.0)),       # a list (from the preview's JSON) too
    ("/transflower/gain", (16.0,), ("gain", 16.0)),
    ("/transflower/gain", (0,), ("gain", 0.0)),
    ("/transflower/style", ("rumba",), ("style", "rumba")),
    ("/transflower/style", ("auto",), ("style", "auto")),
    ("/transflower/style", (3,), ("style", "waltz")),               # an index in the model's list
    ("/transflower/style_strength", (2,), ("style_strength", 2.0)),
    ("/transflower/style_strength", (0.0,), ("style_strength", 0.0)),
    ("/transflower/correlation", (0.8,), ("correlation", 0.8)),
    ("/transflower/correlation", (0,), ("correlation", 0.0)),
    ("/transflower/correlation", (), ("correlation", None)),        # no argument: back to the presets
    ("/transflower/hold", (1,), ("hold", 1)),
    ("/transflower/hold", (0.0,), ("hold", 0)),                     # TouchOSC toggles send floats
    ("/transflower/hold", (True,), ("hold", 1)),                    # OSC T
    ("/transflower/hold", (), ("hold", -1)),                        # no argument: toggle
    ("/transflower/reset", (), ("reset", None)),
    ("/transflower/reset", (1.0,), ("reset", None)),                # a button press
    ("/transflower/reset", (0.0,), None),                           # its release: nothing to do
])
def test_valid_messages(address, args, expected):
    assert parse_control(address, args, STYLES) == expected


@pytest.mark.parametrize("address,args,styles,why", [
    ("/transflower/temperature", (2.5,), STYLES, "outside 0..2"),
    ("/transflower/temperature", (-0.1,), STYLES, "outside 0..2"),
    ("/transflower/temperature", (float("nan"),), STYLES, "outside"),
    ("/transflower/temperature", (float("inf"),), STYLES, "outside"),
    ("/transflower/temperature", ("hot",), STYLES, "expected a number"),
    ("/transflower/temperature", (True,), STYLES, "expected a number"),
    ("/transflower/temperature", (), STYLES, "expected one number"),
    ("/transflower/temperature", (0.5, 0.5), STYLES, "expected one number"),
    ("/transflower/gain", (17.0,), STYLES, "outside 0..16"),
    ("/transflower/style", ("tango",), STYLES, "unknown style 'tango'"),
    ("/transflower/style", (4,), STYLES, "index 0..3"),
    ("/transflower/style", (1.0,), STYLES, "style name or an index"),
    ("/transflower/style", ("waltz",), [], "no style input"),
    ("/transflower/style_strength", (4.5,), STYLES, "outside 0..4"),
    ("/transflower/style_strength", (-1,), STYLES, "outside 0..4"),
    ("/transflower/style_strength", ("max",), STYLES, "expected a number"),
    ("/transflower/style_strength", (2.0,), [], "no style input"),
    ("/transflower/style", ("auto",), [], "no style input"),
    ("/transflower/correlation", (0.99,), STYLES, "outside 0..0.95"),
    ("/transflower/correlation", (-0.1,), STYLES, "outside 0..0.95"),
    ("/transflower/correlation", ("smooth",), STYLES, "expected a number"),
    ("/transflower/correlation", (0.5, 0.5), STYLES, "expected one number"),
    ("/transflower/hold", (2,), STYLES, "expected 0 or 1"),
    ("/transflower/hold", ("on",), STYLES, "expected 0 or 1"),
    ("/transflower/reset", (1, 2), STYLES, "expected no argument"),
    ("/transflower/energy", (0.5,), STYLES, "model has no energy input"),
    ("/transflower/tempo", (0.5,), STYLES, "unknown address"),
    ("/VMC/Ext/Bone/Pos", ("Hips",), STYLES, "unknown address"),
    ("/transflower/temperature", "0.5", STYLES, "must be a list"),
    (None, (), STYLES, "expected a string"),
])
def test_refused_messages_say_why(address, args, styles, why):
    with pytest.raises(ControlError, match=why.replace("(", r"\(").replace(".", r"\.")):
        parse_control(address, args, styles)


def test_listen_address():
    assert parse_listen_address("39550") == ("127.0.0.1", 39550)   # this machine only, unless told
    assert parse_listen_address("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_listen_address("localhost:0") == ("localhost", 0)
    for bad in ("", "abc", "host:", ":39550", "1.2.3.4:70000"):
        with pytest.raises(UserError, match="--control"):
            parse_listen_address(bad)
    assert DEFAULT_CONTROL_PORT not in (39539, 39540)  # the VMC marionette and performer ports


# ---------------------------------------------------------------------------- queue and frame hook
def test_changes_apply_at_the_next_frame_and_are_counted(caplog):
    s = fake_session()
    c = ControlInput(styles=s.engine.styles)
    assert c.submit("/transflower/temperature", (0.5,)) is None
    assert c.submit("/transflower/gain", (4.0,)) is None
    assert c.on_control("/transflower/style", ["rumba"]) is None  # the preview page's path
    assert c.submit("/transflower/hold", (1,), source="midi") is None
    assert c.submit("/transflower/reset", ()) is None
    assert s.engine.temperature == 1.0 and c.applied == 0  # nothing changes between frames
    with caplog.at_level("INFO", logger="transflower.control"):
        c.apply(s)
    assert s.engine.temperature == 0.5 and s.feats.gain == 4.0 and s.hold is True
    assert s.engine.style_calls == [("rumba", 1.0)] and s.engine.resets == 1
    assert c.applied == 5 and c.errors == 0 and not c.pending
    assert "temperature 0.50 (osc)" in caplog.text and "style rumba (preview)" in caplog.text and "hold on (midi)" in caplog.text
    assert c.status_text() == "T 0.50 style rumba gain 4 HOLD"
    c.submit("/transflower/hold", ())  # toggle
    c.apply(s)
    assert s.hold is False and c.status_text() == "T 0.50 style rumba gain 4"


def test_refused_and_failed_changes_are_counted_not_applied():
    s = fake_session()
    c = ControlInput(styles=s.engine.styles)
    assert "outside 0..2" in c.submit("/transflower/temperature", (9.0,))
    assert "unknown address" in c.on_control("/nope", [])
    c.styles.append("tango")  # the validator's list says yes, the engine says no: a failure at apply time
    c.submit("/transflower/style", ("tango",))
    c.apply(s)
    assert s.engine.temperature == 1.0 and s.engine.style_calls == [] and c.style == "auto"
    assert c.applied == 0 and c.errors == 3 and "tango" in c.last_error


def test_style_strength_reweights_the_current_style_and_later_ones():
    s = fake_session()
    c = ControlInput(styles=s.engine.styles, style="rumba")
    c.submit("/transflower/style_strength", (2.5,))
    c.apply(s)
    assert s.engine.style_calls == [("rumba", 1.0, 2.5)] and c.style_strength == 2.5
    assert c.status_text() == "T 1.00 style rumba x2.5"
    c.submit("/transflower/style", ("waltz",))  # a later style keeps the strength
    c.apply(s)
    assert s.engine.style_calls[-1] == ("waltz", 1.0, 2.5)


def test_correlation_overrides_the_presets_until_sent_without_an_argument():
    s = fake_session()
    c = ControlInput(styles=s.engine.styles, style="waltz")
    c.submit("/transflower/correlation", (0.7,))
    c.apply(s)
    assert s.engine.correlation_calls == [(0.7, 1.0)] and c.correlation == 0.7
    assert c.status_text() == "T 1.00 style waltz rho 0.70"
    c.submit("/transflower/correlation", ())
    c.apply(s)
    assert s.engine.correlation_calls[-1] == (None, 1.0) and c.correlation is None
    assert c.status_text() == "T 1.00 style waltz" and c.applied == 2


def test_a_model_without_styles_refuses_style_and_hides_it_from_the_status():
    s = fake_session(FakeEngine(styles=[]))
    c = ControlInput(styles=[])
    assert "no style input" in c.submit("/transflower/style", ("auto",))
    assert c.status_text() == "T 1.00"


def test_a_flood_within_one_frame_is_bounded():
    c = ControlInput()
    for _ in range(1100):
        c.submit("/transflower/temperature", (0.5,))
    assert len(c.pending) == 1024 and c.errors == 1100 - 1024


# ----------------------------------------------------------------------------------- OSC over UDP
def test_osc_over_udp_bundles_and_garbage():
    s = fake_session()
    c = ControlInput(styles=s.engine.styles)
    port = c.listen_osc("127.0.0.1", 0)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tx.sendto(encode_message("/transflower/temperature", [0.25]), ("127.0.0.1", port))
        tx.sendto(encode(OscBundle(elements=[OscMessage("/transflower/style", ["waltz"]),
                                             OscMessage("/transflower/hold", [1])])), ("127.0.0.1", port))
        tx.sendto(b"\xff garbage", ("127.0.0.1", port))
        tx.sendto(encode_message("/transflower/gain", ["loud"]), ("127.0.0.1", port))
        assert wait_until(lambda: len(c.pending) == 3 and c.errors == 2)
    finally:
        tx.close()
        c.close()
    c.apply(s)
    assert s.engine.temperature == 0.25 and s.engine.style_calls == [("waltz", 1.0)] and s.hold is True
    assert c.applied == 3 and c.errors == 2


def test_port_in_use_is_a_user_error():
    c1, c2 = ControlInput(), ControlInput()
    port = c1.listen_osc("127.0.0.1", 0)
    try:
        with pytest.raises(UserError, match=f"--control 127.0.0.1:{port}: cannot listen"):
            c2.listen_osc("127.0.0.1", port)
    finally:
        c1.close()
        c2.close()


@pytest.mark.skipif(shutil.which("oscsend") is None, reason="oscsend (liblo-tools) is not installed")
def test_oscsend_reaches_the_queue():
    c = ControlInput(styles=STYLES)
    port = c.listen_osc("127.0.0.1", 0)
    try:
        subprocess.run(["oscsend", "localhost", str(port), "/transflower/temperature", "f", "0.75"], check=True, timeout=10)
        subprocess.run(["oscsend", "localhost", str(port), "/transflower/style", "s", "cha-cha"], check=True, timeout=10)
        subprocess.run(["oscsend", "localhost", str(port), "/transflower/reset"], check=True, timeout=10)
        assert wait_until(lambda: len(c.pending) == 3)
    finally:
        c.close()
    assert list(c.pending) == [("temperature", 0.75, "osc"), ("style", "cha-cha", "osc"), ("reset", None, "osc")]


# ------------------------------------------------------------------------------------------- fuzz
words = st.sampled_from(["temperature", "gain", "style", "hold", "reset", "energy", "tempo", "", "style/x"])
osc_args = st.lists(st.one_of(st.integers(-2 ** 31, 2 ** 31 - 1), st.floats(width=32),
                              st.sampled_from(STYLES + ["tango", ""]),
                              st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8), st.binary(max_size=8)),
                    max_size=3)
messages = st.builds(lambda w, a: OscMessage("/transflower/" + w, a), words, osc_args)
packets = st.one_of(messages, st.builds(lambda ms: OscBundle(elements=ms), st.lists(messages, max_size=4)))


def _check_consistent(c, s, sent):
    queued = len(c.pending)
    c.apply(s)  # never raises
    assert 0.0 <= s.engine.temperature <= 2.0 and 0.0 <= s.feats.gain <= 16.0
    assert s.engine.style_calls == [] or s.engine.style_calls[-1][0] in STYLES
    assert c.applied == queued and c.applied + c.errors <= sent


@given(st.lists(packets, max_size=6))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_wellformed_packets_never_break_control(pkts):
    s = fake_session()
    c = ControlInput(styles=s.engine.styles)
    sent = 0
    for p in pkts:
        c.handle_packet(encode(p), "fuzz")
        sent += 1 if isinstance(p, OscMessage) else len(p.elements)
    _check_consistent(c, s, sent)


@given(st.lists(st.binary(max_size=64), max_size=8))
@settings(max_examples=500, deadline=None)
def test_fuzz_garbage_bytes_are_counted(blobs):
    s = fake_session()
    c = ControlInput(styles=s.engine.styles)
    for b in blobs:
        c.handle_packet(b, "fuzz")  # never raises
    _check_consistent(c, s, sent=len(blobs) * 64)  # a random blob is at most a handful of messages


@given(st.text(max_size=30), st.lists(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                                                st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)),
                                      max_size=3))
@settings(max_examples=500, deadline=None)
def test_fuzz_preview_json_args(address, args):
    s = fake_session()
    c = ControlInput(styles=s.engine.styles)
    reply = c.on_control(address, args)
    assert reply is None or isinstance(reply, str)
    _check_consistent(c, s, sent=1)


# ---------------------------------------------------------------------------------- end to end
def test_live_run_takes_temperature_and_hold_over_osc(tiny_onnx, tmp_path):
    """`live --control`: /transflower/temperature 0.5 (sent by oscsend when installed) and /transflower/hold 1
    (our encoder) reach the running dancer; the summary counts 2 applied, 1 refused (garbage); after the
    hold the received VMC poses stop changing."""
    from transflower.bridge.vmc import VmcReceiver
    from transflower.realtime.live import LiveSession, _parser

    frames = []  # (time, root position, bone rotations) of every received VMC frame
    rx = VmcReceiver(port=0, on_frame=lambda f: frames.append(
        (f.time, f.root_position, np.array([f.bones[k][1] for k in sorted(f.bones)]))))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = tmp_path / "summary.json"
    # --fps 20 (the model's): no interpolation, so the hold shows from its first frame (at 60 fps the output
    # still glides into the held pose over one model frame)
    args = _parser().parse_args(["--model", str(tiny_onnx), "--demo", "--duration", "3", "--seed", "1", "--fps", "20",
                                 "--osc", f"127.0.0.1:{rx.port}", "--control", "127.0.0.1:0",
                                 "--summary-json", str(out), "--status-interval", "0.2"])
    seen = {}

    def on_frame(session, tick, lat):
        port = session.controls.port
        # ">=" with a flag, not "==": on a loaded machine the clock may skip the very frame (late policy)
        if tick.frame_index >= 10 and "sent_t" not in seen:
            seen["sent_t"] = True
            if shutil.which("oscsend"):
                subprocess.run(["oscsend", "127.0.0.1", str(port), "/transflower/temperature", "f", "0.5"], check=True, timeout=10)
            else:
                tx.sendto(encode_message("/transflower/temperature", [0.5]), ("127.0.0.1", port))
            tx.sendto(b"not osc", ("127.0.0.1", port))
        if tick.frame_index >= 25 and "sent_hold" not in seen:
            seen["sent_hold"] = True
            tx.sendto(encode_message("/transflower/hold", [1]), ("127.0.0.1", port))
        if session.hold and "hold_t" not in seen:
            seen["hold_t"] = tick.deadline - session.clock.t0  # the first frame sent held
        seen["temperature"] = session.engine.temperature

    try:
        session = LiveSession(args, on_frame=on_frame)
        assert session.run() == 0
        rx.wait_for(frames=session.frames_sent + 1, timeout=2.0)
    finally:
        tx.close()
        rx.close()
    s = json.loads(out.read_text())
    assert s["control_messages"] == 2 and s["control_errors"] == 1
    assert seen["temperature"] == 0.5 and "hold_t" in seen
    assert "T 0.50" in session._status_text and "HOLD" in session._status_text
    live = [f for f in frames if f[0] < 3.0 - 1e-6]  # not the 0.5 s easing into the standing pose after the end
    before = [f for f in live if f[0] < seen["hold_t"] - 1e-6]
    held = [f for f in live if f[0] >= seen["hold_t"] - 1e-6]
    assert len(before) > 20 and len(held) > 20
    assert not all(np.allclose(f[2], before[0][2]) for f in before)  # it danced before
    for t, root, rots in held:  # and froze after
        assert np.array_equal(root, held[0][1]) and np.array_equal(rots, held[0][2]), t


def test_options_and_attach():
    from transflower.realtime.control import attach_controls
    from transflower.realtime.live import _parser

    p = _parser()
    assert p.parse_args([]).control is None                          # off by default
    assert p.parse_args(["--control"]).control == str(DEFAULT_CONTROL_PORT)
    assert p.parse_args(["--control", "0.0.0.0:9100"]).control == "0.0.0.0:9100"
    s = fake_session()
    s.preview = None
    assert attach_controls(s, p.parse_args([])) is None and s.frame_hooks == []
    s.preview = SimpleNamespace()  # --preview alone: the page's buttons need the handler, no OSC port
    c = attach_controls(s, p.parse_args(["--preview"]))
    assert s.preview.on_control == c.on_control and c.port is None and s.frame_hooks == [c.apply]
    s = fake_session()
    c = attach_controls(s, p.parse_args(["--control", "127.0.0.1:0", "--input-gain", "2"]))
    try:
        assert s.frame_hooks == [c.apply] and c.port > 0 and c.gain == 2.0 and c.styles == STYLES
    finally:
        c.close()


def test_config_file_takes_control_options(tmp_path):
    from transflower.realtime.live import apply_config_file, _parser

    cfg = tmp_path / "live.yaml"
    cfg.write_text("control: 9100\nmidi: nano\nmidi-map: map.yaml\n")
    args = _parser().parse_args(["--config", str(cfg)])
    apply_config_file(args)
    assert (args.control, args.midi, args.midi_map) == ("9100", "nano", "map.yaml")


def test_preview_buttons_reach_the_running_dancer(tiny_onnx, receiver):
    """--preview alone wires the page's handler (PreviewServer.on_control, issue 13's page sends into it)."""
    from transflower.realtime.live import LiveSession, _parser

    args = _parser().parse_args(["--model", str(tiny_onnx), "--demo", "--duration", "1.5", "--preview",
                                 "--preview-port", "0", "--osc", f"127.0.0.1:{receiver.port}", "--status-interval", "0"])
    replies = []

    def on_frame(session, tick, lat):
        if tick.frame_index == 5:
            replies.append(session.preview.on_control("/transflower/temperature", [0.25]))
            replies.append(session.preview.on_control("/transflower/temperature", ["warm"]))

    session = LiveSession(args, on_frame=on_frame)
    assert session.run() == 0
    assert replies[0] is None and "expected a number" in replies[1]
    assert session.engine.temperature == 0.25
    s = session.summary(None, None)
    assert s.control_messages == 1 and s.control_errors == 1
