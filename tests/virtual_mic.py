"""A real microphone without hardware: PulseAudio with a null sink whose monitor is the mic.

    with VirtualMic() as vm:                 # starts (or reuses) a PulseAudio server
        src = MicrophoneSource(vm.device())  # PortAudio re-scanned after the server came up
        src.start(); src.wait_for_audio(5)
        vm.play(tone, 48000)                 # paplay -d vsink: heard on vsink.monitor = the mic

PortAudio enumerates devices when it initialises (at ``import sounddevice``): PulseAudio must be up
before that, so ``__enter__`` re-initialises PortAudio (``sd._terminate(); sd._initialize()``) when
sounddevice was already imported. Do not keep streams open across ``VirtualMic`` entry.

This process also gets ``PULSE_SOURCE=<sink>.monitor`` / ``PULSE_SINK=<sink>`` so its ALSA->pulse
streams use our sink even if another user of the same server changes the default. Everything this
helper starts (server, loaded sink module, players) is stopped on exit; a server that was already
running is reused and left running.

Used by tests (``needs_audio``) and benchmarks; ``available()`` says why it cannot run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["VirtualMic", "available", "virtual_mic"]

DEFAULT_RUNTIME_DIR = "/tmp/xdg"


def available() -> tuple[bool, str]:
    """(ok, reason): whether a virtual microphone can be set up on this machine."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            return False, f"{tool} not installed (apt-get install pulseaudio pulseaudio-utils)"
    try:
        import sounddevice  # noqa: F401
    except OSError as e:
        return False, f"PortAudio not available ({e}); apt-get install libportaudio2"
    except ImportError as e:
        return False, f"python sounddevice not installed ({e})"
    return True, ""


class VirtualMic:
    def __init__(self, sink_name: str = "vsink", runtime_dir: str | None = None,
                 start_timeout: float = 10.0):
        self.sink = sink_name
        self.runtime_dir = runtime_dir or os.environ.get("XDG_RUNTIME_DIR") or DEFAULT_RUNTIME_DIR
        self.start_timeout = start_timeout
        self._server: subprocess.Popen | None = None
        self._module_id: str | None = None
        self._players: list[subprocess.Popen] = []
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        self._saved_env: dict[str, str | None] = {}
        self.reused_server = False

    # ------------------------------------------------------------------ helpers
    def _env(self) -> dict:
        env = dict(os.environ)
        env["XDG_RUNTIME_DIR"] = self.runtime_dir
        return env

    def _pactl(self, *args, check=True, timeout=5.0) -> str:
        r = subprocess.run(["pactl", *args], env=self._env(), capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout if r.returncode == 0 else ""

    def _server_up(self) -> bool:
        try:
            r = subprocess.run(["pactl", "info"], env=self._env(), capture_output=True, timeout=3.0)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def _sink_exists(self) -> bool:
        out = self._pactl("list", "short", "sinks", check=False)
        return any(line.split("\t")[1:2] == [self.sink] for line in out.splitlines())

    def _set_env(self, key, value):
        if key not in self._saved_env:
            self._saved_env[key] = os.environ.get(key)
        os.environ[key] = value

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "VirtualMic":
        ok, why = available()
        if not ok:
            raise RuntimeError(f"virtual microphone unavailable: {why}")
        Path(self.runtime_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.runtime_dir, 0o700)
        if self._server_up():
            self.reused_server = True
        else:
            log = open(Path(tempfile.gettempdir()) / f"virtual_mic_pulse_{os.getpid()}.log", "wb")
            self._server = subprocess.Popen(
                ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                 "-L", "module-native-protocol-unix",
                 "-L", f"module-null-sink sink_name={self.sink}",
                 "-L", "module-always-sink"],
                env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            end = time.monotonic() + self.start_timeout
            while not self._server_up():
                if self._server.poll() is not None or time.monotonic() > end:
                    self._stop_server()
                    raise RuntimeError(f"pulseaudio did not start (see {log.name})")
                time.sleep(0.1)
        if not self._sink_exists():
            self._module_id = self._pactl("load-module", "module-null-sink",
                                          f"sink_name={self.sink}").strip()
        self._pactl("set-default-sink", self.sink, check=False)
        self._pactl("set-default-source", f"{self.sink}.monitor", check=False)
        self._set_env("XDG_RUNTIME_DIR", self.runtime_dir)
        self._set_env("PULSE_SOURCE", f"{self.sink}.monitor")
        self._set_env("PULSE_SINK", self.sink)
        self._rescan_portaudio()
        return self

    @staticmethod
    def _rescan_portaudio():
        """PortAudio lists devices once at initialisation: re-initialise it if it already was."""
        sd = sys.modules.get("sounddevice")
        if sd is None:
            return
        try:
            sd._terminate()
        except Exception:  # noqa: BLE001
            pass
        sd._initialize()

    def _stop_server(self):
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(5)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait(5)
            self._server = None

    def stop(self) -> None:
        for p in self._players:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
        self._players.clear()
        if self._module_id:
            self._pactl("unload-module", self._module_id, check=False)
            self._module_id = None
        self._stop_server()
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env.clear()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ------------------------------------------------------------------ use
    def device(self):
        """The PortAudio input that records the sink's monitor: 'pulse' if listed, else the default
        (None). Call after entering (PortAudio re-scanned)."""
        import sounddevice as sd

        for i, d in enumerate(sd.query_devices()):
            if d["name"] == "pulse" and d["max_input_channels"] > 0:
                return i
        return None

    def play(self, source, samplerate: int | None = None, wait: bool = False) -> subprocess.Popen:
        """Play a file path or a float array (mono (n,) or (n, ch), at ``samplerate``) into the
        sink with ``paplay -d <sink>``; returns the player process (stopped on exit)."""
        if isinstance(source, (str, Path)):
            path = str(source)
        else:
            import soundfile as sf

            if samplerate is None:
                raise ValueError("samplerate is required when playing an array")
            if self._tmpdir is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="virtual_mic_")
            path = os.path.join(self._tmpdir.name, f"play_{len(self._players)}.wav")
            sf.write(path, np.asarray(source, dtype=np.float32), int(samplerate), subtype="FLOAT")
        p = subprocess.Popen(["paplay", "-d", self.sink, path], env=self._env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._players.append(p)
        if wait:
            p.wait()
        return p


try:  # a fixture for tests that `from virtual_mic import virtual_mic` (tests/conftest.py is not ours)
    import pytest

    @pytest.fixture(scope="module")
    def virtual_mic():
        ok, why = available()
        if not ok:
            pytest.skip(f"virtual microphone unavailable: {why}")
        try:
            vm = VirtualMic().start()
        except RuntimeError as e:
            pytest.skip(str(e))
        try:
            yield vm
        finally:
            vm.stop()
except ImportError:  # benchmarks without pytest
    pass
