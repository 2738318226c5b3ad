"""Audio sources, demo track and streaming resampler; `needs_audio` tests use a PulseAudio virtual mic."""
from __future__ import annotations

import logging
import time
import tracemalloc
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from transflower.realtime import audio_sources as aus
from transflower.realtime.audio_sources import AudioUnavailable, DemoSource, FileSource, MicrophoneSource, open_default_source
from transflower.realtime.resampler import StreamResampler
from transflower.realtime.demo_track import demo_bars, demo_beat_times, synthesize_demo_track
from transflower.errors import UserError

try:
    from tests.virtual_mic import VirtualMic, available as vmic_available, virtual_mic  # noqa: F401
except ImportError:
    from virtual_mic import VirtualMic, available as vmic_available, virtual_mic  # noqa: F401

MUSIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "music"


def peak_freq(x, sr):
    n = x.size
    sp = np.abs(np.fft.rfft(x * np.hanning(n), 16 * n))
    return np.argmax(sp) * sr / (16 * n)


# ------------------------------------------------------------------------------------- demo track
def test_demo_track_deterministic_and_loopable():
    # (speed is not asserted here: ~0.5 s for 60 s of audio, a benchmark number, not a test)
    x = synthesize_demo_track(60.0, 48000, seed=3)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.size == demo_bars(60.0) * 2 * 48000
    assert np.isclose(np.abs(x).max(), 0.8, atol=1e-3) and np.sqrt(np.mean(x ** 2)) > 0.03
    assert np.array_equal(x, synthesize_demo_track(60.0, 48000, seed=3))
    assert not np.array_equal(x, synthesize_demo_track(60.0, 48000, seed=4))
    # seamless loop: the jump at the wrap is no larger than ordinary sample-to-sample steps
    steps = np.abs(np.diff(x))
    assert abs(float(x[0]) - float(x[-1])) <= np.percentile(steps, 99.9)


def test_demo_track_has_beats_where_it_says():
    sr = 16000
    x = synthesize_demo_track(32.0, sr, seed=0).astype(np.float64)
    beats, downbeats = demo_beat_times(32.0)
    assert beats.size == 64 and downbeats.size == 16
    # energy in the 60 ms after each beat vs. in the 60 ms after each half-beat (offbeat)
    env = x ** 2
    w = int(0.06 * sr)
    on = np.mean([env[int(b * sr):int(b * sr) + w].mean() for b in beats[16:]])  # groove sections
    off = np.mean([env[int((b + 0.25) * sr):int((b + 0.25) * sr) + w].mean() for b in beats[16:-1]])
    assert on > 2.0 * off


# -------------------------------------------------------------------------------- file / demo feed
def _drain(src, n_total, timeout=10.0, chunk=4096):
    out = np.empty(chunk, np.float32)
    got = []
    end = time.monotonic() + timeout
    total = 0
    while total < n_total and time.monotonic() < end:
        k = src.ring.read_into(out)
        if k:
            got.append(out[:k].copy())
            total += k
        else:
            time.sleep(0.002)
    return np.concatenate(got) if got else np.empty(0, np.float32)


def test_file_source_non_realtime_delivers_exact_mono(tmp_path):
    sr = 22050
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, (sr * 3, 2)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, stereo, sr, subtype="FLOAT")
    with FileSource(path, realtime=False, ring_seconds=0.2) as src:
        assert src.samplerate == sr and src.name == "file:x.wav"
        got = _drain(src, stereo.shape[0])
    assert np.allclose(got, stereo.mean(axis=1), atol=1e-6)
    assert src.status.finished and src.ring.overruns == 0


def test_file_source_realtime_is_paced_and_loops(tmp_path):
    sr = 8000
    path = tmp_path / "short.wav"
    sf.write(path, np.arange(sr // 10, dtype=np.float32) / sr, sr, subtype="FLOAT")  # 0.1 s ramp
    src = FileSource(path, realtime=True, loop=True, hop_s=0.01)
    src.start()
    t = time.monotonic()
    time.sleep(0.35)
    written, elapsed = src.ring.total_written, time.monotonic() - t
    src.stop()
    assert 0.6 * elapsed * sr <= written <= 1.2 * elapsed * sr + 2 * src.hop  # paced, ~real time
    assert written > sr // 10 and not src.status.finished                      # looped past the end
    assert src.clock.skipped == 0


def test_demo_source_feeds_the_track():
    with DemoSource(seed=1, samplerate=16000, duration_s=4.0, realtime=False) as src:
        got = _drain(src, 16000)
    ref = synthesize_demo_track(4.0, 16000, seed=1)
    assert np.array_equal(got[:16000], ref[:16000])


@pytest.mark.parametrize("content", [b"not audio at all\n" * 50, b""])
def test_file_source_errors_name_the_file(tmp_path, content):
    bad = tmp_path / "song.wav"
    bad.write_bytes(content)
    with pytest.raises(UserError, match="song.wav"):
        FileSource(bad)
    with pytest.raises(UserError, match="missing.ogg"):
        FileSource(tmp_path / "missing.ogg")


# ------------------------------------------------------------------------ default source / devices
def test_open_default_source_falls_back_to_demo(monkeypatch, caplog):
    monkeypatch.setattr(aus, "list_input_devices", lambda: [])
    with caplog.at_level(logging.WARNING, logger="transflower.realtime.audio_sources"):
        src = open_default_source()
    assert isinstance(src, DemoSource)
    assert "demo track" in caplog.text and "no usable microphone" in caplog.text
    with pytest.raises(AudioUnavailable):
        open_default_source(demo_fallback=False)


def test_open_default_source_without_portaudio(monkeypatch, caplog):
    def boom():
        raise AudioUnavailable("PortAudio is not available (test)")
    monkeypatch.setattr(aus, "_sounddevice", boom)
    assert aus.list_input_devices() == []
    with caplog.at_level(logging.WARNING, logger="transflower.realtime.audio_sources"):
        src = open_default_source()
    assert isinstance(src, DemoSource) and "PortAudio is not available" in caplog.text
    with pytest.raises(UserError):
        open_default_source(device="some mic")  # an explicit device is never silently replaced


class _FakeSD:
    """Just enough of sounddevice to build a MicrophoneSource without a device."""
    PortAudioError = RuntimeError

    def __init__(self, channels=2, sr=44100.0):
        self.info = {"name": "fake mic", "index": 7, "max_input_channels": channels,
                     "default_samplerate": sr}

    def query_devices(self, device=None, kind=None):
        if device is None and kind is None:
            return [self.info]
        if device not in (None, 7, "fake mic"):
            raise ValueError(f"no device {device!r}")
        return self.info

    def check_input_settings(self, **kw):
        pass


def _fake_mic(monkeypatch, channels):
    monkeypatch.setattr(aus, "_sounddevice", lambda: _FakeSD(channels))
    return MicrophoneSource(channels=channels)


def test_mic_callback_mixes_to_mono_and_timestamps(monkeypatch):
    src = _fake_mic(monkeypatch, 2)
    assert src.samplerate == 44100 and src.channels == 2 and src.device == 7
    indata = np.stack([np.full(256, 0.2, np.float32), np.full(256, 0.6, np.float32)], axis=1)
    flags = types.SimpleNamespace(input_overflow=True)
    now = time.monotonic()
    tinfo = types.SimpleNamespace(currentTime=100.0, inputBufferAdcTime=99.99)  # 10 ms capture delay
    src._callback(indata, 256, tinfo, flags)
    out = np.zeros(512, np.float32)
    assert src.ring.read_into(out) == 256 and np.allclose(out[:256], 0.4)
    assert src.status.callbacks == 1 and src.status.input_overflows == 1
    cnt, ts = src.ring.last_write
    assert cnt == 256 and abs(ts - (now - 0.01 + 255 / 44100)) < 0.005
    # no stream times (0.0): the callback's own time
    src._callback(indata, 256, types.SimpleNamespace(currentTime=0.0, inputBufferAdcTime=0.0),
                  types.SimpleNamespace(input_overflow=False))
    assert abs(src.ring.last_write_time - time.monotonic()) < 0.05
    with pytest.raises(UserError, match="nope"):
        MicrophoneSource(device="nope")


@pytest.mark.parametrize("channels", [1, 2])
def test_mic_callback_is_cheap_and_allocation_free(monkeypatch, channels):
    src = _fake_mic(monkeypatch, channels)
    indata = np.random.default_rng(0).uniform(-1, 1, (480, channels)).astype(np.float32)
    flags = types.SimpleNamespace(input_overflow=False)
    tinfo = types.SimpleNamespace(currentTime=5.0, inputBufferAdcTime=4.99)
    cb = src._callback
    cb(indata, 480, tinfo, flags)
    tracemalloc.start()
    for _ in range(2000):
        cb(indata, 480, tinfo, flags)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8192                     # never a block-sized allocation (480 x 4 bytes)
    assert src.ring.overruns > 0           # nobody read: oldest overwritten, no exception


# ---------------------------------------------------------------------------------- resampling
@pytest.mark.parametrize("rates", [(44100, 48000), (48000, 44100), (48000, 16000), (16000, 22050),
                                   (48000, 48000)])
def test_stream_resampler_chunked_equals_one_shot(rates):
    a, b = rates
    rng = np.random.default_rng(1)
    x = rng.standard_normal(30000).astype(np.float32)
    one = StreamResampler(a, b)
    y1 = np.concatenate([one.process(x), one.flush()])
    r = StreamResampler(a, b)
    parts, pos = [], 0
    while pos < x.size:
        n = int(rng.integers(1, 1500))
        parts.append(r.process(x[pos:pos + n]))
        pos += n
    parts.append(r.flush())
    y2 = np.concatenate(parts)
    assert y1.shape == y2.shape == (one.output_length(x.size),)
    assert np.allclose(y1, y2, atol=1e-6)
    ref = x if a == b else resample_poly(x.astype(np.float64), one.up, one.down)
    assert np.allclose(y1, ref, atol=1e-5)
    assert one.delay_s < 0.002


def test_kaiser_lowpass_is_scipy_firwin():
    from scipy.signal import firwin

    from transflower.realtime.resampler import kaiser_lowpass

    for taps, cutoff in ((41, 0.5), (3201, 1 / 160), (21, 1.0 / 3)):
        np.testing.assert_allclose(kaiser_lowpass(taps, cutoff, 5.0), firwin(taps, cutoff, window=("kaiser", 5.0)), atol=1e-15)


def test_stream_resampler_process_into_allocates_nothing_new():
    r = StreamResampler(48000, 24000, max_chunk=1000)
    x = np.random.default_rng(0).standard_normal(2500).astype(np.float32)  # more than max_chunk: blocks
    out = np.zeros(r.max_output(x.size), np.float32)
    n = r.process_into(x, out)
    ref = StreamResampler(48000, 24000).process(x)
    assert n == ref.size and np.allclose(out[:n], ref, atol=1e-7)


def test_stream_resampler_keeps_sine_frequency():
    a, b = 44100, 48000
    t = np.arange(a * 2) / a
    x = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    r = StreamResampler(a, b)
    y = np.concatenate([r.process(x[i:i + 441]) for i in range(0, x.size, 441)])
    assert abs(y.size - 2 * b) <= 64
    assert abs(peak_freq(y[2000:], b) - 440.0) < 0.5
    assert abs(np.sqrt(np.mean(y[2000:-2000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


# ----------------------------------------------------------------------- real (virtual) microphone
def _record(src, seconds):
    n = int(seconds * src.samplerate)
    out = np.zeros(n, np.float32)
    time.sleep(seconds + 0.1)
    k = src.ring.read_latest_into(out)
    return out[:k]


@pytest.mark.needs_audio
def test_virtual_mic_hears_a_sine(virtual_mic):
    src = MicrophoneSource(virtual_mic.device(), samplerate=48000, channels=1)
    with src:
        assert src.wait_for_audio(5.0), "no callback within 5 s"
        sr = 48000
        t = np.arange(3 * sr) / sr
        virtual_mic.play(0.5 * np.sin(2 * np.pi * 440.0 * t), sr)
        time.sleep(0.6)  # player start-up
        x = _record(src, 1.0)
    assert x.size >= 0.9 * sr
    rms = float(np.sqrt(np.mean(x ** 2)))
    assert rms > 0.1, f"level too low ({rms})"
    assert abs(peak_freq(x, sr) - 440.0) < 2.0
    assert src.status.callbacks > 10 and src.status.callback_seconds_max < 0.01


@pytest.mark.needs_audio
def test_virtual_mic_hears_a_real_song(virtual_mic):
    songs = sorted(MUSIC.glob("*.ogg"))
    if not songs:
        pytest.skip(f"no .ogg songs in {MUSIC}")
    song, sr = sf.read(songs[0], dtype="float32", frames=44100 * 12, always_2d=True)
    song = song.mean(axis=1)
    src = MicrophoneSource(virtual_mic.device(), samplerate=sr, channels=1)
    with src:
        assert src.wait_for_audio(5.0)
        virtual_mic.play(song, sr)
        time.sleep(1.0)
        x = _record(src, 3.0)
    rms = float(np.sqrt(np.mean(x ** 2)))
    assert rms > 0.01, f"the mic heard silence (rms {rms})"
    # what came back is that song: it correlates strongly with some stretch of the first 12 s
    from scipy.signal import correlate
    seg = x[: 2 * sr].astype(np.float64)
    ref = song.astype(np.float64)
    c = correlate(ref, seg, mode="valid", method="fft")
    cs = np.concatenate([[0.0], np.cumsum(ref ** 2)])
    energy = np.sqrt((cs[seg.size:] - cs[:-seg.size]) * np.sum(seg ** 2))  # sliding-window norms
    assert np.max(c / np.maximum(energy, 1e-12)) > 0.8


@pytest.mark.needs_audio
def test_audible_file_source_is_heard_by_the_mic(virtual_mic, tmp_path):
    """FileSource(audible=True) plays on the default output (the virtual sink) and feeds its ring
    from the output callback; the virtual mic hears the same tone."""
    sr = 48000
    path = tmp_path / "tone660.wav"
    sf.write(path, (0.4 * np.sin(2 * np.pi * 660.0 * np.arange(4 * sr) / sr)).astype(np.float32), sr)
    mic = MicrophoneSource(virtual_mic.device(), samplerate=sr, channels=1)
    with mic:
        assert mic.wait_for_audio(5.0)
        with FileSource(path, audible=True) as fs:
            assert fs._out_stream is not None, "audible playback did not open an output stream"
            assert fs.wait_for_audio(5.0)
            time.sleep(0.8)
            x = _record(mic, 0.5)
            fed = fs.ring.total_written
    assert abs(peak_freq(x, sr) - 660.0) < 2.0 and np.sqrt(np.mean(x ** 2)) > 0.1
    assert fed > 0.5 * sr
