"""MIDI control (transflower.realtime.midi): map validation, the mapper on mido Message objects (no port needed),
the missing-extra message, port choice, and a virtual port where the machine has an ALSA sequencer."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from transflower.realtime.control import ControlInput
from transflower.realtime.midi import (DEFAULT_MAP, INSTALL_HINT, MidiMapper, list_midi_inputs, load_midi_map, parse_midi_map,
                           resolve_port)
from transflower.errors import UserError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "midi_map_example.yaml"


def msg(kind, **kw):
    """A mido Message when mido is installed, else a stand-in with the same attributes."""
    try:
        import mido

        return mido.Message(kind, **kw)
    except ImportError:
        return SimpleNamespace(type=kind, channel=kw.pop("channel", 0), **kw)


def test_the_docs_example_is_the_built_in_map():
    assert load_midi_map(EXAMPLE) == load_midi_map(None) == parse_midi_map(DEFAULT_MAP)


def test_mapper_cc_and_notes():
    m = MidiMapper(load_midi_map(EXAMPLE))
    assert m.controls(msg("control_change", control=1, value=0)) == [("/transflower/temperature", (0.0,))]
    assert m.controls(msg("control_change", control=1, value=127)) == [("/transflower/temperature", (1.5,))]
    (addr, (v,)), = m.controls(msg("control_change", control=7, value=32))
    assert addr == "/transflower/gain" and abs(v - 4.0 * 32 / 127) < 1e-12
    assert m.controls(msg("note_on", note=36, velocity=100)) == [("/transflower/reset", ())]
    assert m.controls(msg("note_on", note=37, velocity=1)) == [("/transflower/hold", ())]  # toggle
    assert m.controls(msg("note_on", note=42, velocity=90, channel=9)) == [("/transflower/style", ("rumba",))]
    assert m.controls(msg("note_on", note=36, velocity=0)) == []   # a note-off in disguise
    assert m.controls(msg("note_off", note=36)) == []
    assert m.controls(msg("control_change", control=2, value=64)) == []  # unmapped
    assert m.controls(msg("pitchwheel", pitch=100)) == []


def test_a_correlation_knob_and_a_preset_pad():
    m = MidiMapper(parse_midi_map({"cc": {71: {"param": "correlation", "min": 0.0, "max": 0.9}},
                                   "notes": {46: {"correlation": "preset"}, 47: {"correlation": 0.5}}}))
    assert m.controls(msg("control_change", control=71, value=127)) == [("/transflower/correlation", (0.9,))]
    assert m.controls(msg("note_on", note=46, velocity=100)) == [("/transflower/correlation", ())]
    assert m.controls(msg("note_on", note=47, velocity=100)) == [("/transflower/correlation", (0.5,))]


def test_channel_filter_and_switch_cc():
    m = MidiMapper(parse_midi_map({"channel": 2, "cc": {64: {"param": "hold"}}, "notes": {50: {"hold": 0}}}))
    assert m.controls(msg("control_change", control=64, value=127, channel=1)) == [("/transflower/hold", (1,))]
    assert m.controls(msg("control_change", control=64, value=10, channel=1)) == [("/transflower/hold", (0,))]
    assert m.controls(msg("control_change", control=64, value=127, channel=0)) == []  # channel 1, not 2
    assert m.controls(msg("note_on", note=50, velocity=5, channel=1)) == [("/transflower/hold", (0,))]


def test_mapped_messages_drive_the_control_input():
    """CC 1 -> temperature, pad 37 twice -> hold on then off, pad 43 -> waltz: through the same queue as OSC."""
    c = ControlInput(styles=["auto", "cha-cha", "rumba", "waltz"])
    m = MidiMapper(load_midi_map(None))
    for message in (msg("control_change", control=1, value=127), msg("note_on", note=37, velocity=100),
                    msg("note_on", note=43, velocity=100)):
        for address, args in m.controls(message):
            assert c.submit(address, args, source="midi") is None
    styles = []
    session = SimpleNamespace(engine=SimpleNamespace(temperature=1.0, set_style=lambda s, blend_s, **kw: styles.append(s)),
                              feats=None, hold=False)
    c.apply(session)
    assert session.engine.temperature == 1.5 and session.hold is True and styles == ["waltz"] and c.applied == 3


@pytest.mark.parametrize("cfg,why", [
    ([1, 2], "expected a mapping"),
    ({"knobs": {}}, "unknown keys"),
    ({"channel": 17}, "channel: expected all or 1..16"),
    ({"cc": {128: {"param": "temperature"}}}, "not a MIDI number"),
    ({"cc": {1: {"param": "tempo"}}}, "cc 1: expected {param: temperature | gain | style_strength | correlation | hold"),
    ({"cc": {1: {"param": "correlation", "max": 1.0}}}, "max 1 is outside the correlation range 0..0.95"),
    ({"notes": {36: {"correlation": "smooth"}}}, "correlation: expected a number"),
    ({"cc": {1: {"param": "temperature", "max": 3}}}, "max 3 is outside the temperature range 0..2"),
    ({"cc": {1: {"param": "gain", "min": "low"}}}, "cc 1: min: expected a number"),
    ({"cc": {1: {"param": "hold", "max": 1}}}, "takes no min/max"),
    ({"cc": {1: {"param": "gain", "curve": "log"}}}, "unknown keys"),
    ({"notes": {36: "explode"}}, "notes 36: expected reset, hold"),
    ({"notes": {36: {"style": 3}}}, "style: expected a style name"),
    ({"notes": {36: {"hold": 2}}}, "hold: expected 0 or 1"),
    ({"notes": {36: {"temperature": 9}}}, "temperature 9 is outside 0..2"),
])
def test_bad_maps_name_the_field(cfg, why):
    with pytest.raises(UserError) as e:
        parse_midi_map(cfg, "map.yaml")
    assert str(e.value).startswith("map.yaml") and why in str(e.value)


def test_map_file_errors(tmp_path):
    with pytest.raises(UserError, match="--midi-map .*nope.yaml: file not found"):
        load_midi_map(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cc: {1: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_midi_map(bad)


def test_port_choice():
    names = ["Midi Through:Midi Through Port-0 14:0", "nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0"]
    assert resolve_port("1", names) == names[1]
    assert resolve_port("nanokontrol", names) == names[1]
    assert resolve_port(names[0], names) == names[0]
    with pytest.raises(UserError, match="matches no port .*0: Midi Through"):
        resolve_port("launchpad", names)
    with pytest.raises(UserError, match="matches several ports"):
        resolve_port("midi", names)


def test_missing_extra_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "mido", None)  # import mido -> ImportError
    with pytest.raises(UserError) as e:
        list_midi_inputs()
    assert str(e.value).startswith(INSTALL_HINT) and "\n" not in str(e.value)


def test_list_midi_cli(capsys):
    """Lists the ports, or says in one line why it cannot (no extra / no MIDI system): exit 2, no traceback."""
    from transflower.cli import main

    rc = main(["live", "--list-midi"])
    captured = capsys.readouterr()
    if rc == 0:
        assert captured.out.strip()
    else:
        assert rc == 2 and ("midi" in captured.err.lower()) and "Traceback" not in captured.err


def test_midi_map_without_midi_is_refused(tmp_path):
    from transflower.cli import main

    assert main(["live", "--midi-map", str(EXAMPLE), "--demo", "--duration", "1"]) == 2


@pytest.mark.skipif(not os.path.exists("/dev/snd/seq"),
                    reason="no ALSA sequencer (/dev/snd/seq) on this machine: python-rtmidi cannot open virtual ports")
def test_virtual_port_end_to_end():
    mido = pytest.importorskip("mido")
    pytest.importorskip("rtmidi")
    from transflower.realtime.midi import MidiInput

    c = ControlInput(styles=["auto", "cha-cha", "rumba", "waltz"])
    with mido.open_output("transflower-test-out", virtual=True) as out:
        midi = MidiInput("transflower-test-out", load_midi_map(None), c)
        try:
            out.send(mido.Message("control_change", control=1, value=127))
            out.send(mido.Message("note_on", note=36, velocity=100))
            end = time.monotonic() + 5
            while len(c.pending) < 2 and time.monotonic() < end:
                time.sleep(0.01)
        finally:
            midi.close()
    assert list(c.pending) == [("temperature", 1.5, "midi"), ("reset", None, "midi")]
