"""The show goes on: each fault is injected into a running `transflower live` loop (in-process with fake
sources / engines / targets, or as a subprocess for bad input and signals) and the stream must survive.

FAULTS counts what was injected and survived (printed at the end with -s)."""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_live import REPO  # noqa: E402
from test_live import live_args as _live_args  # noqa: E402


def live_args(*argv):
    """These tests reason in model frames (20 fps, a 50 ms budget): they stream at the model's rate rather than
    the interpolated 60 fps default."""
    return _live_args("--fps", 20, *argv)

from transflower.realtime.audio_sources import AudioSource  # noqa: E402
from transflower.errors import DataError, UserError  # noqa: E402

FAULTS: dict[str, list] = {}  # name -> [injected, survived, frames lost]


def record(name, injected, survived, lost):
    FAULTS[name] = [injected, survived, lost]


def free_port(kind=socket.SOCK_DGRAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------------------ audio device
class FakeDevice(AudioSource):
    """An AudioSource that calls back like a device (10 ms blocks of a loud tone, real time) and can be
    told to stop calling back, to report a stream error, or to overrun its ring."""

    reopenable = True

    def __init__(self, stall_after=None, error_after=None, overrun_at=None, sr=48000):
        super().__init__(sr, "fake-device", ring_seconds=0.5)
        self.stall_after, self.error_after, self.overrun_at = stall_after, error_after, overrun_at
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        t0 = time.monotonic()
        n = 0
        block = 480
        while not self._stop.is_set():
            el = time.monotonic() - t0
            if self.error_after is not None and el > self.error_after:
                self.status.error = "PortAudioError: stream error (device unplugged)"
                return
            if self.stall_after is not None and el > self.stall_after:
                return  # stops calling back, silently
            if self.overrun_at is not None and el > self.overrun_at:
                self.overrun_at = None
                self.ring.write(np.zeros(self.ring.capacity + 4800, np.float32))  # a burst: overrun
            t = (n + np.arange(block)) / self.samplerate
            self.ring.write((0.4 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32))
            self.status.callbacks += 1
            n += block
            time.sleep(max(0.0, t0 + n / self.samplerate - time.monotonic()))

    def stop(self):
        self._stop.set()
        self._running = False


def test_audio_device_lost_then_back(tiny_onnx, receiver, caplog):
    from transflower.realtime.live import LiveSession

    made = []

    def factory():
        made.append(len(made))
        k = len(made)
        if k == 1:
            return FakeDevice(stall_after=1.0, overrun_at=0.5)  # stalls after 1 s
        if k == 2:
            raise UserError("audio input device 'fake' not found")  # still unplugged
        if k == 3:
            return FakeDevice(error_after=0.3)  # opens, then the stream errors
        return FakeDevice()  # back for good

    levels = []
    args = live_args("--model", tiny_onnx, "--duration", 6, "--osc", f"127.0.0.1:{receiver.port}", "--status-interval", 0)
    s = LiveSession(args, source_factory=factory, on_frame=lambda sess, tick, lat: levels.append(sess.feats.level_db))
    caplog.set_level(logging.INFO, logger="transflower.live")
    assert s.run() == 0
    sm = s.summary(s.source, s.feats)
    receiver.wait_for(frames=sm.frames + 1, timeout=1.0)
    assert abs(sm.frames - 120) <= 20 and receiver.frames >= sm.frames  # streamed throughout
    assert sm.audio_outages >= 2 and sm.audio_recoveries >= 2 and sm.audio_reopen_attempts >= 3
    assert sm.silent_frames > 10 and sm.audio_overruns >= 1
    assert levels[-1] > -30 and min(levels) == -120.0  # music, then silence-level features, then music
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost) == sm.audio_outages  # logged once per outage, not every frame
    assert any("back after" in r.getMessage() for r in caplog.records)
    record("audio device stall/unplug/stream error + ring overrun", 4, 4, 0)


# ------------------------------------------------------------------------------------------ overload
def slow_every(session, every, sleep_s):
    orig = session._engine_step
    n = [0]

    def step(row):
        n[0] += 1
        if n[0] % every == 0:
            time.sleep(sleep_s)
        return orig(row)

    session._engine_step = step
    return n


@pytest.mark.parametrize("policy", ["skip", "hold"])
def test_overload_skip_or_hold_without_drift(tiny_onnx, receiver, caplog, policy):
    from transflower.realtime.live import LiveSession

    args = live_args("--model", tiny_onnx, "--demo", "--duration", 3, "--late-policy", policy,
                     "--osc", f"127.0.0.1:{receiver.port}", "--status-interval", 0.5)
    s = LiveSession(args)
    s.OVERLOAD_WINDOW_S = 1.0
    ticks = []
    s.on_frame = lambda sess, tick, lat: ticks.append(tick)
    n = slow_every(s, 3, 0.12)  # every 3rd step takes 120 ms > 50 ms budget
    caplog.set_level(logging.WARNING, logger="transflower.live")
    assert s.run() == 0
    c = s.clock
    assert s.overload_hints == 1
    assert len([r for r in caplog.records if "overload" in r.getMessage()]) == 1  # logged once
    import re

    status = [m.groups() for m in re.finditer(r"late (\d+) skip (\d+)", s._status_text)]
    assert status, "no status line"
    late_shown, skipped_shown = map(int, status[-1])  # the status line shows the overload
    assert (skipped_shown if policy == "skip" else late_shown) > 0
    if policy == "skip":
        assert c.skipped > 5
        # no drift: emitted + skipped frames cover the grid up to the end
        assert abs(ticks[-1].frame_index + 1 - 60) <= 2
        assert all(abs(t.deadline - (c.t0 + t.frame_index / 20)) < 1e-9 for t in ticks)
    else:
        assert c.skipped == 0 and c.late > 5
        assert [t.frame_index for t in ticks] == list(range(len(ticks)))
    record(f"overload ({policy}): slow steps", n[0] // 3, n[0] // 3, c.skipped)


# ------------------------------------------------------------------------------------------ network
def test_unreachable_refused_slow_and_returning_targets(tiny_onnx):
    from transflower.bridge.vmc import VmcReceiver
    from transflower.realtime.live import LiveSession

    refused = free_port()
    back_port = free_port()
    slow = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read, tiny buffer
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    slow.bind(("127.0.0.1", 0))
    late_rx = {}

    def on_frame(sess, tick, lat):
        if tick.frame_index == 30:
            late_rx["rx"] = VmcReceiver(port=back_port)  # the target comes back after 1.5 s

    args = live_args("--model", tiny_onnx, "--demo", "--duration", 3, "--status-interval", 0,
                     "--osc", f"127.0.0.1:{refused}", "--osc", "192.0.2.1:39539",  # TEST-NET: unreachable
                     "--osc", f"127.0.0.1:{slow.getsockname()[1]}", "--osc", f"127.0.0.1:{back_port}")
    s = LiveSession(args, on_frame=on_frame)
    try:
        assert s.run() == 0
        sm = s.summary(s.source, s.feats)
        rx = late_rx["rx"]
        rx.wait_for(frames=25, timeout=1.0)
        assert abs(sm.frames - 60) <= 10 and sm.udp_errors > 0
        assert rx.frames >= 20  # received again once it was back
        assert s.clock.skipped == 0
    finally:
        slow.close()
        if "rx" in late_rx:
            late_rx["rx"].close()
    record("OSC targets refused / unreachable / slow / returning", 4, 4, 0)


# ----------------------------------------------------------------------------------- engine faults
class FaultySession:
    """Wraps the onnxruntime session: the next run after `arm(fault)` returns NaN / inf / an exploding
    pose, or raises."""

    def __init__(self, inner, engine):
        self.inner, self.engine, self.armed, self.persist = inner, engine, None, 0

    def run_with_iobinding(self, binding):
        self.inner.run_with_iobinding(binding)
        pose = self.engine.out_pose  # the engine's bound output buffer, corrupted in place
        f = self.armed
        if self.persist > 0:  # a fault that survives redraws: the engine must reset
            self.persist -= 1
        else:
            self.armed = None
        if f == "nan":
            pose.fill(np.nan)
        elif f == "inf":
            pose.fill(np.inf)
        elif f == "explode":
            pose += 1e6
        elif f == "raise":
            raise RuntimeError("onnxruntime: injected failure")


def test_engine_nan_inf_explode_and_raise_reset_without_stopping(tiny_onnx, receiver):
    from transflower.realtime.live import LiveSession

    args = live_args("--model", tiny_onnx, "--demo", "--duration", 3, "--osc", f"127.0.0.1:{receiver.port}",
                     "--status-interval", 0)
    s = LiveSession(args)
    fs = s.engine.session = FaultySession(s.engine.session, s.engine)
    faults = {10: "nan", 20: "inf", 30: "explode", 40: "raise", 50: "persistent-nan"}
    step, n = s.engine.step, [0]

    def faulty_step(row, noise=None):
        n[0] += 1
        f = faults.get(n[0])
        if f == "persistent-nan":
            f, fs.persist = "nan", 3  # the first run and all 3 redraws
        fs.armed = f
        return step(row, noise)

    s.engine.step = faulty_step
    finite = []
    receiver.on_frame = lambda f: finite.append(np.isfinite(f.root_position).all()
                                                and all(np.isfinite(r).all() for _, r in f.bones.values()))
    assert s.run() == 0
    sm = s.summary(s.source, s.feats)
    receiver.wait_for(frames=sm.frames + 1, timeout=1.0)
    # one-off bad samples are redrawn (no reset); an exception or a fault that persists resets
    assert sm.engine_redraws >= 3 and sm.engine_errors >= 1 and sm.engine_resets >= 2
    assert abs(sm.frames - 60) <= 10 and all(finite) and len(finite) >= sm.frames
    record("engine NaN / inf / exploding pose / exception / persistent NaN", 5, 5, 0)


# -------------------------------------------------------------------------------------- bad input
def test_bad_input_one_clear_message_no_traceback(tiny_onnx, tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 100)
    bad_audio = tmp_path / "song.ogg"
    bad_audio.write_bytes(b"OggS not really" * 50)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("temprature: 0.5\n")
    out_of_range = tmp_path / "range.yaml"
    out_of_range.write_text("temperature: 9\n")
    wrong_type = tmp_path / "type.yaml"
    wrong_type.write_text("fps: fast\n")
    not_yaml = tmp_path / "bad.yaml"
    not_yaml.write_text("a: [1, 2\n")
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    m = str(tiny_onnx)
    cases = {
        "corrupt model": ["--model", corrupt, "--demo", "--duration", 1],
        "missing model": ["--model", tmp_path / "nope.onnx", "--demo", "--duration", 1],
        "unknown config key": ["--model", m, "--config", unknown],
        "out-of-range config": ["--model", m, "--config", out_of_range],
        "wrong-type config": ["--model", m, "--config", wrong_type],
        "invalid YAML": ["--model", m, "--config", not_yaml],
        "missing device": ["--model", m, "--device", "no-such-device-xyz", "--duration", 1],
        "preview port in use": ["--model", m, "--demo", "--duration", 1, "--preview", "--preview-port", busy.getsockname()[1]],
        "unreadable audio": ["--model", m, "--input", bad_audio, "--duration", 1],
        "bad OSC target": ["--model", m, "--demo", "--duration", 1, "--osc", "127.0.0.1:99999"],
        "negative fps": ["--model", m, "--demo", "--fps", "-5"],
    }
    procs = {name: subprocess.Popen([sys.executable, "-m", "transflower.cli", "live", *map(str, argv), "--status-interval", "0"],
                                    cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, argv in cases.items()}
    failures = []
    try:
        for name, p in procs.items():
            out, err = p.communicate(timeout=60)
            errors = [line for line in err.splitlines() if line.startswith("error:")]
            if p.returncode == 0 or "Traceback" in err or len(errors) != 1:
                failures.append(f"{name}: rc {p.returncode}, stderr {err[-600:]!r}")
    finally:
        busy.close()
    assert not failures, "\n".join(failures)
    record("bad input (model/config/device/port/audio/osc/fps)", len(cases), len(cases), 0)


# ---------------------------------------------------------------------------------- clean shutdown
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_easing_into_standing(tiny_onnx, receiver, sig, tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "transflower.cli", "live", "--model", str(tiny_onnx), "--demo",
                          "--osc", f"127.0.0.1:{receiver.port}", "--status-interval", "0.2",
                          "--summary-json", str(tmp_path / "s.json")],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert receiver.wait_for(frames=20, timeout=40), "no frames"
        t = time.monotonic()
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
        took = time.monotonic() - t
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-1000:]
    assert took < 3.0
    assert "Traceback" not in err and f"stopped by {sig.name}" in err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["stopped_by"] == sig.name and summary["frames"] >= 20
    assert "{" not in out and ("Ctrl-C" if sig == signal.SIGINT else "SIGTERM") in out  # a few lines for people
    time.sleep(0.2)
    f = receiver.latest()
    from transflower.bridge.retarget import UNITY_BONES, neutral_bone_rotations

    neutral = neutral_bone_rotations()
    for name, (_, r) in f.bones.items():  # the last bundle is the standing pose: arms down, the Hips only turned
        if name == "Hips":
            assert abs(r[0]) < 1e-6 and abs(r[2]) < 1e-6
        else:
            assert abs(np.dot(r, neutral[UNITY_BONES.index(name)])) == pytest.approx(1.0, abs=1e-6), name
    record(f"{sig.name}", 1, 1, 0)


# ------------------------------------------------------------------------------------------- soak
@pytest.mark.slow
@pytest.mark.needs_data
def test_soak_short(tiny_onnx, shared_data):
    from transflower.benchmarks.soak import run_soak

    song = sorted((shared_data / "music").glob("*.ogg"))[0]
    r = run_soak(tiny_onnx, song, duration_s=8.0, fps=20)
    assert abs(r["frames"] - 160) <= 25
    assert r["rss_mb"]["start"] > 0 and r["rss_mb"]["end"] > 0 and "growth" in r["rss_mb"]
    assert r["latency_ms"]["first_10pct_p50"] > 0 and "drift" in r["latency_ms"]
    assert r["late"] >= 0 and r["engine_resets"] == 0
    assert r["jitter_ms"]["p50"] is not None and r["jitter_ms"]["p50"] >= 0
    assert 0 < r["cpu_share"] < 2.5  # of one core; 2 cores here
    st = r["steal"]
    if st["available"]:
        assert st["steal_s"] >= 0 and 0 <= st["late_frames_during_steal"] <= r["late"]
        assert 0 <= st["share_of_all_frames_during_steal"] <= 1
    assert len(r["late_frames"]) <= r["late"] + r["skipped"]
    assert all(f["late_ms"] > 2.0 and 0 <= f["t_s"] <= 9.0 for f in r["late_frames"])


def test_steal_attribution_on_known_samples():
    """A late frame is blamed on steal only when the counter grew between the samples around its window."""
    from transflower.benchmarks.soak import StealSampler

    s = StealSampler(1.0)
    s.available = True
    s.t[:5] = [0.0, 0.05, 0.10, 0.15, 0.20]
    s.ticks[:5] = [100, 100, 101, 101, 101]  # one tick stolen between 0.05 and 0.10
    s.n = 5
    got = s.stolen_between(np.array([0.0, 0.06, 0.11, 0.02]), np.array([0.04, 0.09, 0.19, 0.12]))
    assert got.tolist() == [False, True, False, True]
    assert s.steal_s() == pytest.approx(1 / s.hz)


def test_wakeup_probe_runs_and_attributes_stalls():
    """`bench wakeup`: one probe per CPU reports its wake-ups; a stall is 'the machine's' only where every
    CPU's probe woke late together, and a late frame is matched only to probe stalls inside its window."""
    from transflower.benchmarks.wakeup import _together, format_table, run_probes, stalls_near

    r = run_probes(0.3, interval_ms=1.0, report_ms=1.0).result()
    assert r["cpus"] and all(c["wakeups"] >= 200 for c in r["cpus"])  # 300 deadlines, a few lost to stalls at most
    assert all(c["late_ms"]["p50"] >= 0 and c["over_report"] == len(c["events"]) for c in r["cpus"])
    assert "wake-ups every 1 ms" in format_table(r)
    cpus = [{"cpu": 0, "events": [(100.000, 3.0), (105.0, 2.0)]}, {"cpu": 1, "events": [(100.002, 4.0), (107.0, 1.5)]}]
    together = _together(cpus, 0.004)
    assert [e["t_unix"] for e in together] == [100.0] and together[0]["late_ms"] == [3.0, 4.0]
    assert _together(cpus, 0.001) == []
    probe = {"cpus": cpus}
    assert stalls_near(probe, 100.001, 0.005, 0.002) == [0, 1]
    assert stalls_near(probe, 105.010, 0.005, 0.002) == []  # 10 ms after CPU 0's stall: not this frame's
    assert stalls_near(probe, 106.998, 0.005, 0.003) == [1]


# -------------------------------------------------------------------------------------------- fuzz
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

VALID_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.05
0 90 0 0 0 0 0 0 0
0 90 1 5 0 0 10 0 0
"""


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_bvh_loader(tmp_path_factory, data):
    from transflower.bvh import read_bvh

    text = VALID_BVH
    kind = data.draw(st.sampled_from(["truncate", "replace", "insert", "token", "bytes"]))
    if kind == "truncate":
        text = text[: data.draw(st.integers(0, len(text)))]
    elif kind in ("replace", "insert"):
        i = data.draw(st.integers(0, len(text) - 1))
        s = data.draw(st.text(max_size=8))
        text = text[:i] + s + text[i + (len(s) if kind == "replace" else 0):]
    elif kind == "token":
        toks = text.split(" ")
        i = data.draw(st.integers(0, len(toks) - 1))
        toks[i] = data.draw(st.sampled_from(["nan", "inf", "-1", "1e308", "99999999999", "", "{", "}", "JOINT",
                                             "CHANNELS", "0.0", "End", "Site", "MOTION"]))
        text = " ".join(toks)
    p = tmp_path_factory.mktemp("bvh") / "x.bvh"
    if kind == "bytes":
        p.write_bytes(data.draw(st.binary(max_size=400)))
    else:
        p.write_text(text)
    try:
        read_bvh(p)
    except (DataError, UserError):
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_feature_npy_loader(tmp_path_factory, data):
    import io

    from transflower.dataset import load_modality

    d = tmp_path_factory.mktemp("npy")
    kind = data.draw(st.sampled_from(["bytes", "truncated", "header", "array"]))
    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float32).reshape(3, 4))
    raw = buf.getvalue()
    if kind == "bytes":
        blob = data.draw(st.binary(max_size=300))
    elif kind == "truncated":
        blob = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "header":
        i = data.draw(st.integers(0, 127))
        blob = raw[:i] + data.draw(st.binary(min_size=1, max_size=4)) + raw[i + 1:]
    else:
        shape = data.draw(st.lists(st.integers(0, 3), max_size=3))
        dtype = data.draw(st.sampled_from(["f4", "f8", "i4", "u1", "c8", "?", "U3"]))
        arr = np.zeros(shape, dtype=dtype)
        if arr.size and dtype in ("f4", "f8"):
            arr.flat[0] = data.draw(st.sampled_from([np.nan, np.inf, 1.0]))
        b = io.BytesIO()
        np.save(b, arr)
        blob = b.getvalue()
    (d / "s.audio.npy").write_bytes(blob)
    try:
        load_modality(d, "s", "audio")
    except (DataError, UserError):
        pass


def teardown_module(module):
    if FAULTS:
        print("\nfault                                                    injected survived frames_lost")
        for k, (i, s, lost) in FAULTS.items():
            print(f"{k:56s} {i:8d} {s:8d} {lost:8d}")
