"""Audio sources for the live path: a microphone (sounddevice / PortAudio), a file, or the built-in
demo track, all feeding an ``AudioRingBuffer`` of mono float32 at the source's own sample rate.

The producer side behaves like an audio callback: it only copies into the ring (no allocation of
sample buffers, no locks, no per-sample Python loops). Resampling to the model's feature rate is the
consumer's job (``transflower.realtime.resampler.StreamResampler``), never the callback's.

sounddevice is imported lazily: importing this module works without PortAudio installed, and
``open_default_source`` falls back to the demo track when no input device (or no PortAudio) exists.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from transflower.errors import DataError, UserError
from transflower.realtime.frame_clock import FrameClock
from transflower.realtime.ring_buffer import AudioRingBuffer
from transflower.realtime.timing import SideThreadPriority

__all__ = ["AudioSource", "SourceStatus", "MicrophoneSource", "FileSource", "ArraySource", "DemoSource",
           "InputDevice", "AudioUnavailable", "list_input_devices", "find_input_device", "format_input_devices",
           "open_default_source"]

log = logging.getLogger(__name__)


class AudioUnavailable(UserError):
    """No usable audio device (or no PortAudio library) for what was asked."""


def _sounddevice():
    """Import sounddevice, turning a missing libportaudio into AudioUnavailable."""
    try:
        import sounddevice as sd
    except OSError as e:  # sounddevice raises OSError("PortAudio library not found")
        raise AudioUnavailable(f"PortAudio is not available ({e}); install libportaudio2") from e
    return sd


def _stream_to_monotonic(now_mono: float, current_time: float, buffer_time: float) -> float | None:
    """Convert a PortAudio stream time (ADC/DAC time of a buffer) to time.monotonic() using the
    callback's currentTime; None when the host API does not provide them."""
    if current_time > 0.0 and buffer_time > 0.0:
        d = current_time - buffer_time
        if -1.0 < d < 1.0:
            return now_mono - d
    return None


@dataclass
class SourceStatus:
    callbacks: int = 0            # producer invocations (PortAudio callbacks or feeder hops)
    input_overflows: int = 0      # PortAudio reported input overflow (samples lost before us)
    output_underflows: int = 0    # audible playback reported output underflow
    last_callback_time: float = 0.0   # time.monotonic() of the latest callback
    callback_seconds_max: float = 0.0     # slowest callback body (perf_counter)
    callback_seconds_total: float = 0.0
    finished: bool = False        # a non-looping file/array reached its end
    error: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class AudioSource:
    """Common interface: ``start()``/``stop()`` (or ``with``), ``ring``, ``samplerate``, ``name``,
    ``status``. The ring holds mono float32 at ``samplerate``."""

    def __init__(self, samplerate: int, name: str, ring_seconds: float = 2.0):
        self.samplerate = int(samplerate)
        self.name = name
        self.ring = AudioRingBuffer(max(1024, int(round(ring_seconds * self.samplerate))), np.float32)
        self.status = SourceStatus()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> "AudioSource":
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def wait_for_audio(self, timeout: float = 3.0) -> bool:
        """Wait until the first samples arrive (a PortAudio stream may take ~2 s to deliver its first
        callback); True if they did within ``timeout``."""
        end = time.monotonic() + timeout
        while self.ring.total_written == 0:
            if time.monotonic() > end:
                return False
            time.sleep(0.005)
        return True

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, {self.samplerate} Hz)"


# ---------------------------------------------------------------------------------------- devices
class InputDevice(NamedTuple):
    index: int
    name: str
    channels: int
    default_samplerate: float
    hostapi: str = ""          # PortAudio host API: "ALSA", "Windows WASAPI", "Core Audio", ...
    is_default: bool = False   # the default input device

    @property
    def label(self) -> str:
        return f"{self.name} [{self.hostapi}]" if self.hostapi else self.name


def list_input_devices() -> list[InputDevice]:
    """Input-capable devices as PortAudio sees them; [] when there are none or no PortAudio."""
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
        hostapis = [h["name"] for h in sd.query_hostapis()]
    except Exception as e:  # noqa: BLE001  (AudioUnavailable, PortAudioError, ...)
        log.debug("cannot list audio devices: %s", e)
        return []
    try:
        default_in = int(sd.default.device[0])
    except Exception:  # noqa: BLE001  no default set
        default_in = -1
    if default_in < 0:  # PortAudio's own default input
        try:
            default_in = int(sd.query_devices(kind="input")["index"])
        except Exception:  # noqa: BLE001  none
            default_in = -1
    out = []
    for i, d in enumerate(devices):
        if d["max_input_channels"] > 0:
            h = int(d.get("hostapi", -1))
            out.append(InputDevice(i, d["name"], int(d["max_input_channels"]), float(d["default_samplerate"]),
                                   hostapis[h] if 0 <= h < len(hostapis) else "", i == default_in))
    return out


def format_input_devices(devices: list[InputDevice]) -> list[str]:
    """`transflower live --list-devices` lines: index, default mark, name, host API, channels, rate."""
    return [f"{'*' if d.is_default else ' '}{d.index:3d}  {d.name}  [{d.hostapi or '?'}]  "
            f"({d.channels} ch, {d.default_samplerate:g} Hz){'  (default)' if d.is_default else ''}" for d in devices]


def find_input_device(spec: int | str) -> InputDevice:
    """An input device by index, or by a case-insensitive part of its "name [host API]" label.

    An exact name wins over a substring; a spec matching several devices (the same microphone under
    several host APIs, say) or none is an AudioUnavailable listing the candidates."""
    devices = list_input_devices()
    listing = "; ".join(f"{d.index}: {d.label}" for d in devices) or "none (see `transflower live --list-devices`)"
    if isinstance(spec, int) or str(spec).strip().isdigit():
        index = int(spec)
        for d in devices:
            if d.index == index:
                return d
        raise AudioUnavailable(f"--device {index}: no input device with that index; input devices: {listing}")
    text = str(spec).strip().lower()
    exact = [d for d in devices if d.name.lower() == text or d.label.lower() == text]
    if len(exact) == 1:
        return exact[0]
    found = exact or [d for d in devices if text in d.label.lower()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise AudioUnavailable(f"--device {spec!r}: no input device name contains it; input devices: {listing}")
    names = "; ".join(f"{d.index}: {d.label}" for d in found)
    raise AudioUnavailable(f"--device {spec!r} matches {len(found)} input devices ({names}); "
                           "pass more of the name (e.g. the host API in brackets) or the index")


class MicrophoneSource(AudioSource):
    """A PortAudio input stream. The callback mixes to mono into a preallocated scratch buffer and
    writes it to the ring; the ring's timestamp is the capture (ADC) time of the block's newest sample
    in time.monotonic() when the host API reports it, else the callback time."""

    def __init__(self, device: int | str | None = None, samplerate: float | None = None,
                 blocksize: int = 0, channels: int | None = None, ring_seconds: float = 2.0,
                 latency: str | float = "low"):
        sd = _sounddevice()
        self._sd = sd
        if isinstance(device, str):  # a part of the name: resolved here, so a reopened device is found again by name
            device = find_input_device(device).index
        try:
            info = sd.query_devices(device, kind="input") if device is None else sd.query_devices(device)
        except Exception as e:  # noqa: BLE001  ValueError / PortAudioError
            names = ", ".join(f"{d.index}: {d.name}" for d in list_input_devices()) or "none"
            what = "default audio input device" if device is None else f"audio input device {device!r}"
            raise AudioUnavailable(f"{what} not found ({e}); input devices: {names}") from e
        max_in = int(info["max_input_channels"])
        if max_in < 1:
            raise AudioUnavailable(f"audio device {device!r} ({info['name']}) has no input channels")
        self.device = info.get("index", device)
        self.device_name = info["name"]
        sr = int(round(samplerate if samplerate else info["default_samplerate"]))
        self.channels = int(channels) if channels else min(2, max_in)
        try:
            sd.check_input_settings(device=self.device, channels=self.channels, samplerate=sr,
                                    dtype="float32")
        except Exception as e:  # noqa: BLE001
            raise AudioUnavailable(f"audio input device {self.device_name!r} cannot record "
                                   f"{self.channels} ch at {sr} Hz: {e}") from e
        super().__init__(sr, f"mic:{self.device_name}", ring_seconds)
        self.blocksize = int(blocksize)
        self.latency = latency
        self._scratch = np.zeros(max(16384, self.blocksize), dtype=np.float32)
        self._inv_channels = np.float32(1.0 / self.channels)
        self._stream = None
        self._priority = SideThreadPriority()

    def _callback(self, indata, frames, time_info, status):
        t_start = time.perf_counter()
        self._priority.follow()  # real-time while the loop is: it holds the GIL here (transflower.realtime.timing)
        now = time.monotonic()
        st = self.status
        st.callbacks += 1
        st.last_callback_time = now
        if status.input_overflow:
            st.input_overflows += 1
        ts = _stream_to_monotonic(now, time_info.currentTime, time_info.inputBufferAdcTime)
        ts = now if ts is None else min(now, ts + (frames - 1) / self.samplerate)
        if self.channels == 1:
            self.ring.write(indata[:, 0], ts)
        else:
            scratch = self._scratch
            cap = scratch.shape[0]
            for s in range(0, frames, cap):  # one pass unless a block exceeds the scratch buffer
                e = min(frames, s + cap)
                out = scratch[: e - s]
                # per-channel adds: ~10x faster than np.sum/np.mean(axis=1) on (frames, 2) float32
                np.copyto(out, indata[s:e, 0])
                for c in range(1, self.channels):
                    np.add(out, indata[s:e, c], out=out)
                np.multiply(out, self._inv_channels, out=out)
                self.ring.write(out, ts)
        dt = time.perf_counter() - t_start
        st.callback_seconds_total += dt
        if dt > st.callback_seconds_max:
            st.callback_seconds_max = dt

    def start(self) -> "MicrophoneSource":
        if self._running:
            return self
        sd = self._sd
        try:
            self._stream = sd.InputStream(device=self.device, samplerate=self.samplerate,
                                          blocksize=self.blocksize, channels=self.channels,
                                          dtype="float32", latency=self.latency, callback=self._callback)
            self._stream.start()
        except Exception as e:  # noqa: BLE001
            self._stream = None
            raise AudioUnavailable(f"cannot open audio input {self.device_name!r}: {e}") from e
        self.status.finished = False
        self._running = True
        return self

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None
        self._running = False


# ---------------------------------------------------------------------------------- file / demo
class ArraySource(AudioSource):
    """Feeds a mono signal into the ring like a device would: from a thread paced on absolute
    deadlines in hops of ``hop_s`` (``realtime=True``), or as fast as the consumer frees ring space
    (``realtime=False``, never overrunning). ``audible=True`` plays it on the default output and feeds
    the ring from that output callback, so what is heard and what is analysed share one clock."""

    def __init__(self, data: np.ndarray, samplerate: int, name: str, realtime: bool = True,
                 loop: bool = False, audible: bool = False, hop_s: float = 0.01,
                 ring_seconds: float = 2.0):
        super().__init__(samplerate, name, ring_seconds)
        data = np.asarray(data, dtype=np.float32)
        if data.ndim != 1 or data.size == 0:
            raise ValueError(f"{name}: expected a non-empty mono signal, got shape {data.shape}")
        self.data = np.ascontiguousarray(data)
        self.realtime = bool(realtime)
        self.loop = bool(loop)
        self.audible = bool(audible)
        self.hop = max(1, min(int(round(hop_s * self.samplerate)), self.ring.capacity // 2))
        self.position = 0              # next sample of `data` to feed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._priority = SideThreadPriority()  # the audible stream's callback
        self._out_stream = None
        self.clock: FrameClock | None = None

    # feed data[position : position + n] (at its end: what _at_end says) to the ring and to `outbuf`
    def _feed(self, n: int, timestamp: float | None = None, outbuf=None) -> int:
        data, size = self.data, self.data.shape[0]
        done = 0
        while done < n:
            pos = self.position
            if pos >= size:
                if not self._at_end():
                    break
                data, size, pos = self.data, self.data.shape[0], self.position
            k = min(n - done, size - pos)
            chunk = data[pos:pos + k]
            self.ring.write(chunk, timestamp)
            if outbuf is not None:
                outbuf[done:done + k] = chunk[:, None]
            self.position = pos + k
            done += k
        if done < n:
            self.status.finished = True
        return done

    def _at_end(self) -> bool:
        """The signal ended: True to go on (from `self.position` of `self.data`), False to finish."""
        if self.loop:
            self.position = 0
        return self.loop

    def _run_thread(self):
        st = self.status
        try:
            if self.realtime:
                # no final spin (spin_s=0): the ring absorbs ms-level pacing error, and a spinning feeder keeps
                # taking the GIL back from the frame loop at the moment it wakes (benchmarks/README.md)
                clock = self.clock = FrameClock(self.samplerate / self.hop, late_policy="hold", spin_s=0.0)
                clock.start()
                priority = SideThreadPriority()
                while not self._stop.is_set():
                    clock.wait_next()
                    priority.follow()  # real-time while the loop is: it holds the GIL here (transflower.realtime.timing)
                    t = time.perf_counter()
                    st.callbacks += 1
                    st.last_callback_time = time.monotonic()
                    if self._feed(self.hop) < self.hop:
                        break
                    dt = time.perf_counter() - t
                    st.callback_seconds_total += dt
                    st.callback_seconds_max = max(st.callback_seconds_max, dt)
            else:
                ring = self.ring
                while not self._stop.is_set():
                    if ring.capacity - ring.available() < self.hop:
                        time.sleep(0.0005)
                        continue
                    st.callbacks += 1
                    st.last_callback_time = time.monotonic()
                    if self._feed(self.hop) < self.hop:
                        break
        except Exception as e:  # noqa: BLE001  keep the reason visible to the engine
            st.error = repr(e)
            log.exception("%s: feeder thread failed", self.name)
        finally:
            self._running = False if self._stop.is_set() or st.finished or st.error else self._running

    def _out_callback(self, outdata, frames, time_info, status):
        self._priority.follow()
        st = self.status
        now = time.monotonic()
        st.callbacks += 1
        st.last_callback_time = now
        if status.output_underflow:
            st.output_underflows += 1
        ts = _stream_to_monotonic(now, time_info.currentTime, time_info.outputBufferDacTime)
        ts = now if ts is None else ts + (frames - 1) / self.samplerate
        done = self._feed(frames, ts, outdata)
        if done < frames:
            outdata[done:] = 0
            raise self._sd.CallbackStop

    def _start_audible(self) -> bool:
        try:
            sd = self._sd = _sounddevice()
            info = sd.query_devices(kind="output")
            ch = max(1, min(2, int(info["max_output_channels"])))
            self._out_stream = sd.OutputStream(samplerate=self.samplerate, channels=ch, dtype="float32",
                                               blocksize=self.hop, callback=self._out_callback,
                                               finished_callback=self._on_finished)
            self._out_stream.start()
            return True
        except Exception as e:  # noqa: BLE001
            self._out_stream = None
            log.warning("%s: cannot play audio on the default output (%s); feeding silently", self.name, e)
            return False

    def _on_finished(self):
        if not self.loop and self.position >= self.data.shape[0]:
            self.status.finished = True

    def start(self) -> "ArraySource":
        if self._running:
            return self
        self._stop.clear()
        self.status.finished = False
        self._running = True
        if self.audible and self._start_audible():
            return self
        self._thread = threading.Thread(target=self._run_thread, name=f"feed:{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._out_stream is not None:
            try:
                self._out_stream.stop()
                self._out_stream.close()
            finally:
                self._out_stream = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._running = False

    @property
    def finished(self) -> bool:
        return self.status.finished


def _decode(path: str | Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise DataError(f"audio file not found: {p}")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001  LibsndfileError / RuntimeError / TypeError
        raise DataError(f"cannot decode audio file {p}: {e} (expected wav/flac/ogg/mp3 audio)") from e
    if data.shape[0] == 0:
        raise DataError(f"audio file {p} contains no samples")
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr)


class FileSource(ArraySource):
    """An audio file (anything libsndfile decodes: wav, flac, ogg, mp3), mixed to mono at the file's
    own sample rate, fed like a live device (see ArraySource)."""

    def __init__(self, path: str | Path, realtime: bool = True, loop: bool = False,
                 audible: bool = False, hop_s: float = 0.01, ring_seconds: float = 2.0):
        data, sr = _decode(path)
        self.path = Path(path)
        super().__init__(data, sr, f"file:{self.path.name}", realtime=realtime, loop=loop,
                         audible=audible, hop_s=hop_s, ring_seconds=ring_seconds)


class DemoSource(ArraySource):
    """The built-in synthesised track (transflower.realtime.demo_track), looped by default."""

    def __init__(self, seed: int = 0, samplerate: int = 48000, bpm: float = 120.0,
                 duration_s: float = 64.0, realtime: bool = True, loop: bool = True,
                 audible: bool = False, hop_s: float = 0.01, ring_seconds: float = 2.0):
        from transflower.realtime.demo_track import synthesize_demo_track

        data = synthesize_demo_track(duration_s, samplerate, bpm, seed, loopable=True)
        self.bpm = bpm
        self.seed = seed
        super().__init__(data, samplerate, f"demo:{bpm:g}bpm-seed{seed}", realtime=realtime, loop=loop,
                         audible=audible, hop_s=hop_s, ring_seconds=ring_seconds)


def open_default_source(device: int | str | None = None, demo_fallback: bool = True,
                        samplerate: float | None = None, blocksize: int = 0,
                        channels: int | None = None, ring_seconds: float = 2.0,
                        demo_samplerate: int = 48000) -> AudioSource:
    """A MicrophoneSource for ``device`` (default input when None). When no input device exists
    (none listed, PortAudio missing, or the default cannot record) and ``demo_fallback``, returns a
    DemoSource and logs why. An explicitly named device that is missing is an error (AudioUnavailable,
    a UserError), never silently replaced. The source is returned unstarted."""
    if device is not None:
        return MicrophoneSource(device, samplerate, blocksize, channels, ring_seconds)
    try:
        if not list_input_devices():
            try:
                _sounddevice()
                reason = "PortAudio lists no audio input device"
            except AudioUnavailable as e:
                reason = str(e)
            raise AudioUnavailable(reason)
        return MicrophoneSource(None, samplerate, blocksize, channels, ring_seconds)
    except AudioUnavailable as e:
        if not demo_fallback:
            raise
        log.warning("no usable microphone (%s); playing the built-in demo track instead "
                    "(120 bpm, synthesised). Connect an input device, or pass --device or --input FILE.", e)
        return DemoSource(samplerate=demo_samplerate, ring_seconds=ring_seconds)
