"""Input device listing and choice: host API shown, default marked, `--device` by a part of the name
(ambiguous or unknown -> a clear error listing the candidates). A fake PortAudio gives a Windows-like
device table; a `needs_audio` test checks the same against real PortAudio on a PulseAudio virtual mic."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import transflower.realtime.audio_sources as A
from transflower.errors import UserError

sys.path.insert(0, str(Path(__file__).resolve().parent))


class FakeSoundDevice:
    """query_devices / query_hostapis / default as sounddevice returns them (Windows, one mic under 3 host APIs)."""

    def __init__(self, default_input=1):
        self.hostapis = [{"name": "MME"}, {"name": "Windows DirectSound"}, {"name": "Windows WASAPI"}]
        self.devices = [
            {"name": "Microsoft Sound Mapper - Input", "hostapi": 0, "max_input_channels": 2, "max_output_channels": 0, "default_samplerate": 44100.0},
            {"name": "Microphone (USB Audio)", "hostapi": 0, "max_input_channels": 2, "max_output_channels": 0, "default_samplerate": 44100.0},
            {"name": "Speakers (Realtek)", "hostapi": 0, "max_input_channels": 0, "max_output_channels": 2, "default_samplerate": 44100.0},
            {"name": "Microphone (USB Audio)", "hostapi": 1, "max_input_channels": 2, "max_output_channels": 0, "default_samplerate": 44100.0},
            {"name": "Microphone (USB Audio)", "hostapi": 2, "max_input_channels": 2, "max_output_channels": 0, "default_samplerate": 48000.0},
            {"name": "Stereo Mix (Realtek)", "hostapi": 2, "max_input_channels": 2, "max_output_channels": 0, "default_samplerate": 48000.0},
        ]

        class Default:
            device = (default_input, 2)

        self.default = Default()

    def query_devices(self, device=None, kind=None):
        if kind == "input":
            return dict(self.devices[self.default.device[0]], index=self.default.device[0])
        return self.devices

    def query_hostapis(self):
        return self.hostapis


@pytest.fixture
def fake_sd(monkeypatch):
    sd = FakeSoundDevice()
    monkeypatch.setattr(A, "_sounddevice", lambda: sd)
    return sd


def test_listing_shows_host_api_and_marks_the_default(fake_sd):
    devs = A.list_input_devices()
    assert [d.index for d in devs] == [0, 1, 3, 4, 5]  # the output-only device is not listed
    assert [d.hostapi for d in devs] == ["MME", "MME", "Windows DirectSound", "Windows WASAPI", "Windows WASAPI"]
    assert [d.is_default for d in devs] == [False, True, False, False, False]
    lines = A.format_input_devices(devs)
    assert lines[1].startswith("*  1  Microphone (USB Audio)  [MME]") and lines[1].endswith("(default)")
    assert lines[4] == "   5  Stereo Mix (Realtek)  [Windows WASAPI]  (2 ch, 48000 Hz)"


def test_default_falls_back_to_portaudios_own(fake_sd):
    fake_sd.default.device = (-1, -1)
    fake_sd.query_devices = lambda device=None, kind=None: (
        dict(fake_sd.devices[4], index=4) if kind == "input" else fake_sd.devices)
    assert [d.index for d in A.list_input_devices() if d.is_default] == [4]


def test_list_devices_cli_prints_the_table(fake_sd, capsys):
    from transflower.cli import main

    assert main(["live", "--list-devices"]) == 0
    out = capsys.readouterr().out
    assert "Stereo Mix (Realtek)  [Windows WASAPI]" in out and "(default)" in out and "system_audio" in out


@pytest.mark.parametrize("spec, index", [
    ("stereo mix", 5), ("Stereo", 5), ("5", 5), (5, 5),
    ("usb audio) [windows wasapi]", 4), ("Microphone (USB Audio) [MME]", 1),
    ("sound mapper", 0),
])
def test_device_by_part_of_its_name(fake_sd, spec, index):
    assert A.find_input_device(spec).index == index


@pytest.mark.parametrize("spec, words", [
    ("microphone", ["matches 3 input devices", "1: Microphone (USB Audio) [MME]", "4: Microphone (USB Audio) [Windows WASAPI]",
                    "host API"]),
    ("line in", ["no input device name contains it", "5: Stereo Mix (Realtek) [Windows WASAPI]"]),
    ("2", ["no input device with that index", "0: Microsoft Sound Mapper"]),  # 2 is an output
])
def test_device_errors_list_the_candidates(fake_sd, spec, words):
    with pytest.raises(UserError) as e:
        A.find_input_device(spec)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_microphone_source_resolves_a_name(fake_sd):
    with pytest.raises(UserError, match="matches 3 input devices"):
        A.MicrophoneSource("Microphone")


@pytest.mark.needs_audio
def test_real_portaudio_listing_and_name_choice(virtual_mic):
    devs = A.list_input_devices()
    assert devs and all(d.hostapi for d in devs)
    assert sum(d.is_default for d in devs) == 1
    pulse = [d for d in devs if d.name == "pulse"]
    if not pulse:
        pytest.skip("PortAudio lists no 'pulse' input here")
    assert A.find_input_device("pulse").index == pulse[0].index  # the exact name beats 'pulse' inside others
    src = A.MicrophoneSource("pulse", samplerate=48000, channels=1)
    assert src.device == pulse[0].index and src.device_name == "pulse"


try:
    from virtual_mic import virtual_mic  # noqa: F401,E402  (the module-scoped fixture)
except ImportError:  # pragma: no cover
    pass
