"""`transflower live` end to end: demo / file / virtual microphone in, VMC bundles out to a local receiver,
plus --summary-json, --list-devices, --config, --preview, --fps interpolation and the latency arithmetic.

Behaviour only (the machine is shared with a training run): frame counts get generous tolerances and no
step/latency time is asserted here (speed targets live in benchmarks/)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def tiny_live_model(tmp_path_factory) -> Path:
    """The tiny exported model, built once per session (shared with test_reliability via the basetemp)."""
    d = tmp_path_factory.getbasetemp() / "tiny_live_model"
    path = d / "tiny.onnx"
    if not path.exists():
        from tiny_model import make_tiny_onnx

        d.mkdir(exist_ok=True)
        make_tiny_onnx(d, context=24, lookahead=2)
    return path


def live_args(*argv):
    from transflower.realtime.live import _parser

    return _parser().parse_args([str(a) for a in argv])


def run_cli(*argv) -> int:
    from transflower.cli import main

    return main(["live", *[str(a) for a in argv]])


def first_song(shared_data) -> Path:
    songs = sorted((shared_data / "music").glob("*.ogg"))
    if not songs:
        pytest.skip("no shared_data/music/*.ogg")
    return songs[0]


def check_stream(rx, summary, duration, fps, tol=0.25):
    expected = duration * fps
    # the receiver also gets the ~0.5 s easing into the standing pose at the end
    ease = round(0.5 * fps)
    assert abs(rx.frames - ease - expected) <= tol * expected, (rx.frames, expected)
    assert abs(summary["frames"] - expected) <= tol * expected
    assert rx.malformed == 0 and rx.rejected == 0
    f = rx.latest()
    assert "Hips" in f.bones and "LeftUpperArm" in f.bones and f.ok == 1
    assert abs(f.root_position[1]) < 1e-6  # ended standing on the floor


def test_demo_streams_vmc_and_writes_summary(tiny_onnx, receiver, tmp_path, capsys):
    out_path = tmp_path / "summary.json"
    rc = run_cli("--model", tiny_onnx, "--demo", "--duration", 3, "--osc", f"127.0.0.1:{receiver.port}",
                 "--summary-json", out_path, "--status-interval", 0.5, "--seed", 1)
    assert rc == 0
    s = json.loads(out_path.read_text())
    receiver.wait_for(frames=s["frames"] + 30, timeout=1.0)
    check_stream(receiver, s, 3, 60)
    # by default the 20 fps model streams at 60 fps, interpolated: smooth in receivers that do not interpolate
    assert s["source"].startswith("demo:") and s["fps"] == 60 and s["model_fps"] == 20
    assert s["audio_rows"] > 40 and s["audio_level_db"] > -40  # the demo track is loud, not silence
    assert s["latency_ms"]["n"] > 0 and s["step_ms"]["n"] == s["frames"]
    assert s["engine_resets"] == 0 and s["udp_errors"] == 0 and s["audio_outages"] == 0
    assert s["interpolation_ms"] == 50.0 and s["lookahead_ms"] == 100.0
    assert isinstance(s["grounding_cm"], float) and s["grounding_cm"] >= 0.0  # grounding on by default, reported
    # 60 fps over 20 audio rows a second: two frames in three reuse the newest row, by design
    assert 0.55 < s["frames_without_new_audio"] / s["frames"] < 0.75 and "starved_frames" not in s
    assert s["stopped_by"] == "duration"
    out, err = capsys.readouterr()
    assert "on time" not in err  # not a terminal: a plain status line every 10 s, none in a 3 s run
    lines = out.strip().splitlines()  # the JSON went to the file; stdout has a few lines for people
    assert lines[0].startswith("danced 3.0 s to demo:") and lines[0].endswith("stopped by --duration")
    assert lines[1] == f"{s['frames']} frames at 60 fps: {s['late']} late, {s['skipped']} skipped; 0 engine resets"
    # the measured delay a streamer sets on the music (OBS's sync offset), as the JSON has it
    behind = s["latency_ms"]["p50"] + s["lookahead_ms"] + s["interpolation_ms"]
    assert lines[2].startswith(f"the avatar trails the music by {behind:.0f} ms (measured {s['latency_ms']['p50']:.0f} ms")
    assert "Sync Offset" in lines[2] and len(lines[2]) <= 200
    assert lines[-1] == f"summary JSON: {out_path}" and "{" not in out


@pytest.mark.needs_data
def test_file_input_real_song_at_interpolated_fps(tiny_onnx, receiver, tmp_path, shared_data):
    out = tmp_path / "s.json"
    rc = run_cli("--model", tiny_onnx, "--input", first_song(shared_data), "--duration", 3, "--fps", 30,
                 "--osc", f"127.0.0.1:{receiver.port}", "--summary-json", out, "--status-interval", 0)
    assert rc == 0
    s = json.loads(out.read_text())
    receiver.wait_for(frames=s["frames"] + 15, timeout=1.0)
    check_stream(receiver, s, 3, 30)
    assert s["source"].startswith("file:") and s["audio_rows"] > 40 and s["audio_level_db"] > -50
    assert s["interpolation_ms"] == 50.0


def test_interpolation_slerp_matches_reference():
    from transflower.kernels import slerp_into
    from transflower.rotations import quat_slerp

    rng = np.random.default_rng(0)
    q0 = rng.normal(size=(23, 4)); q0 /= np.linalg.norm(q0, axis=1, keepdims=True)  # noqa: E702
    q1 = rng.normal(size=(23, 4)); q1 /= np.linalg.norm(q1, axis=1, keepdims=True)  # noqa: E702
    q1[0] = q0[0]  # identical rows take the nlerp branch
    out = np.zeros_like(q0)
    for t in (0.0, 0.3, 1.0):
        ref = quat_slerp(q0, q1, t)
        got = out
        slerp_into(out, q0, q1, t)
        assert np.allclose(np.abs(np.sum(got * ref, axis=1)), 1.0, atol=1e-9)


def test_list_devices_in_process(capsys):
    assert run_cli("--list-devices") == 0
    out = capsys.readouterr().out
    assert out.strip()  # either device lines or "no audio input devices"


def test_config_yaml(tiny_onnx, receiver, tmp_path):
    cfg = tmp_path / "live.yaml"
    out = tmp_path / "s.json"
    cfg.write_text(f"demo: true\nduration: 2\nfps: 10\ntemperature: 0.5\nosc: 127.0.0.1:{receiver.port}\n"
                   f"status-interval: 0\nsummary_json: {out}\nmodel: {tiny_onnx}\n")
    assert run_cli("--config", cfg) == 0
    s = json.loads(out.read_text())
    receiver.wait_for(frames=s["frames"] + 5, timeout=1.0)
    check_stream(receiver, s, 2, 10)
    assert s["fps"] == 10 and s["model_fps"] == 20


def test_preview_gets_poses(tiny_onnx, receiver):
    from transflower.realtime.live import LiveSession

    got = {}

    def on_frame(session, tick, lat):
        if tick.frame_index == 25 and "pose" not in got:
            url = f"http://127.0.0.1:{session.preview.port}/pose.json"
            got["pose"] = json.loads(urllib.request.urlopen(url, timeout=2).read())
            got["snapshot"] = session.preview.snapshot()

    args = live_args("--model", tiny_onnx, "--demo", "--duration", 1.5, "--preview", "--preview-port", 0,
                     "--osc", f"127.0.0.1:{receiver.port}", "--status-interval", 0.2)
    assert LiveSession(args, on_frame=on_frame).run() == 0
    for p in (got["pose"], got["snapshot"]):
        rots = np.array(p["rots"])
        assert rots.shape == (22, 4) and np.isfinite(rots).all() and p["frame"] >= 20
        assert "sending" in p["status"] and "dB" in p["status"]  # the live status line reaches the page


class ClockedSource:
    """A device stand-in whose sample timestamps are exact: sample i is captured at t0 + i / sr."""

    def __init__(self, sr=48000, capacity=48000):
        from transflower.realtime.ring_buffer import AudioRingBuffer

        self.samplerate, self.name = sr, "clocked"
        self.ring = AudioRingBuffer(capacity)
        self.n = 0
        self.t0 = 1000.0

    def write(self, block):
        self.n += len(block)
        self.ring.write(block, self.t0 + (self.n - 1) / self.samplerate)


def test_row_arrival_arithmetic_exact_even_after_an_overrun():
    """row_arrival must be the capture time of the newest row's last sample. A click at a known sample
    marks it: the first row whose level jumps ends at most one hop after the click."""
    from transflower.realtime.streaming_features import StreamingAudioFeatures
    from transflower.audio_features import AudioFeatureConfig

    cfg = AudioFeatureConfig()
    src = ClockedSource()
    sf = StreamingAudioFeatures(src, cfg)
    sr, hop_s = src.samplerate, 1.0 / cfg.fps
    rng = np.random.default_rng(0)

    def feed(seconds, click_at=None, block=480):
        y = (1e-3 * rng.standard_normal(int(seconds * sr))).astype(np.float32)
        click_idx = None
        if click_at is not None:
            click_idx = src.n + int(click_at * sr)
            y[int(click_at * sr): int(click_at * sr) + 48] = 0.9
        hit = None
        for s in range(0, len(y), block):
            src.write(y[s:s + block])
            if sf.pull():
                if src.ring.overruns == 0:  # without gaps, ring index == resampler input index
                    end_time = src.t0 + sf.feat_samples_done * sf.ratio / sr  # just after the row's last sample
                    assert abs(sf.row_arrival - (end_time - 1 / sr)) < 2 / sr
                if click_idx is not None and hit is None and sf.level_db > -20:
                    hit = sf.row_arrival
        return click_idx, hit

    feed(1.0)
    idx, hit = feed(1.0, click_at=0.5)
    t_click = src.t0 + idx / sr
    assert hit is not None and 0 <= hit - t_click <= hop_s + 0.002
    # an overrun: 1.5 s written without reading (ring holds 1 s) -> 0.5 s lost; arrival stays exact
    y = (1e-3 * rng.standard_normal(int(1.5 * sr))).astype(np.float32)
    for s in range(0, len(y), 480):
        src.write(y[s:s + 480])
    assert src.ring.overruns > 0
    idx, hit = feed(1.0, click_at=0.5)
    assert sf._ring_dropped() > 0
    t_click = src.t0 + idx / sr
    assert hit is not None and 0 <= hit - t_click <= hop_s + 0.002


def _song_for_mic(shared_data):
    try:
        return first_song(shared_data)
    except pytest.skip.Exception:
        return None


@pytest.mark.needs_audio
def test_virtual_microphone_live(tiny_onnx, receiver, tmp_path, request):
    """Real music played into a PulseAudio null sink, heard on its monitor through PortAudio by a
    `transflower live --device pulse` subprocess, danced to and streamed to a local receiver."""
    from virtual_mic import VirtualMic, available

    ok, why = available()
    if not ok:
        pytest.skip(why)
    from conftest import shared_data_dir

    songs = sorted((shared_data_dir() / "music").glob("*.ogg")) if shared_data_dir().is_dir() else []
    try:
        vm = VirtualMic().start()
    except RuntimeError as e:
        pytest.skip(str(e))
    try:
        if songs:
            vm.play(songs[0])
        else:  # no data: a loud synthetic track
            from transflower.realtime.demo_track import synthesize_demo_track

            vm.play(synthesize_demo_track(12.0, 48000, 120.0, 0, loopable=True), 48000)
        dev = vm.device()
        out = tmp_path / "s.json"
        cmd = [sys.executable, "-m", "transflower.cli", "live", "--model", str(tiny_onnx),
               "--device", "pulse" if dev is not None else "default", "--duration", "6",
               "--osc", f"127.0.0.1:{receiver.port}", "--summary-json", str(out), "--status-interval", "0"]
        p = subprocess.run(cmd, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr[-2000:]
        s = json.loads(out.read_text())
        receiver.wait_for(frames=s["frames"] + 30, timeout=1.0)
        check_stream(receiver, s, 6, 60)
        assert s["source"].startswith("mic:")
        assert s["audio_rows"] > 60 and s["audio_level_db"] > -50, s  # music, well above silence (-120)
        assert s["latency_ms"]["n"] > 50
    finally:
        vm.stop()


def test_crowd_streams_each_dancer_to_its_own_port_with_frame_hooks(tmp_path):
    """--dancers 3 with one HOST:PORT: dancers on consecutive ports, each its own dance; a frame hook
    (what a control surface uses) runs once per frame before the step and can change a dancer."""
    from transflower.bridge.vmc import VmcReceiver
    from transflower.realtime.live import LiveSession
    from tiny_model import make_tiny_batched_onnx

    model = make_tiny_batched_onnx(tmp_path, styles=2, context=12)
    rxs = [VmcReceiver(port=0) for _ in range(3)]
    # find three consecutive free ports: bind receivers there
    for r in rxs:
        r.close()
    base = None
    for start in range(41000, 42000, 7):
        try:
            rxs = [VmcReceiver(port=start + i) for i in range(3)]
            base = start
            break
        except OSError:
            for r in locals().get("rxs", []):
                r.close()
    assert base is not None
    got = [[], [], []]
    for r, g in zip(rxs, got):
        r.on_frame = lambda f, g=g: g.append(np.asarray(f.bones["Hips"][1], float))
    try:
        hooked = []

        switch_before, switch_during = sys.getswitchinterval(), []

        def hook(session):
            hooked.append(session.engine.frame)
            switch_during.append(sys.getswitchinterval())
            if len(hooked) == 5:
                session.engine.dancers[2].temperature = 0.0
                session.engine.dancers[2].set_style("style1", blend_s=0.5)

        args = live_args("--model", model, "--demo", "--duration", 2, "--dancers", 3, "--seed", 4, "--fps", 20,
                         "--osc", f"127.0.0.1:{base}", "--status-interval", 0, "--summary-json", tmp_path / "s.json")
        s = LiveSession(args)
        s.frame_hooks.append(hook)
        assert s.engine.batched and len(s.vmc.senders) == 3
        assert s.run() == 0
        sm = json.loads((tmp_path / "s.json").read_text())
        assert sm["dancers"] == 3 and len(hooked) == sm["frames"]
        for k in ("step_ms", "engine_ms", "host_ms"):
            assert set(sm[k]) >= {"p50", "p99", "max"} and sm[k]["n"] == sm["frames"]
        assert sm["startup_s"] is not None and sm["startup_s"] > 0
        assert sm["priority"] in ("realtime", "normal")  # --priority auto: real-time where the system allows
        assert set(switch_during) == {0.0005} and sys.getswitchinterval() == switch_before  # a short GIL wait, then as before
        if hasattr(os, "sched_getscheduler"):
            assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the loop's thread is normal again afterwards
        for r in rxs:
            r.wait_for(frames=sm["frames"] + 1, timeout=1.0)
            assert abs(r.frames - 10 - 40) <= 10 and r.malformed == 0  # 2 s at 20 fps + 0.5 s easing to standing
        assert s.engine.dancers[2].temperature == 0.0 and s.engine.style[2, 1] == 1.0
        hips = [np.array(h[:30]) for h in got]
        assert np.abs(hips[0] - hips[1]).max() > 1e-4  # their own dances
    finally:
        for r in rxs:
            r.close()


def test_crowd_targets_rules():
    from transflower.realtime.crowd import dancer_targets
    from transflower.errors import UserError

    assert dancer_targets(["h:9000"], 3) == [["h:9000"], ["h:9001"], ["h:9002"]]
    assert dancer_targets(["a:1", "b:2"], 2) == [["a:1"], ["b:2"]]
    assert dancer_targets(["a:1", "b:2"], 1) == [["a:1", "b:2"]]
    with pytest.raises(UserError, match="once per dancer"):
        dancer_targets(["a:1", "b:2"], 3)


def test_style_option_and_list_styles(tmp_path, receiver, capsys):
    """--list-styles prints the model's styles; --style picks one (an unknown one is a one-line error naming
    them); the model's stored default temperature is used unless --temperature is given."""
    from tiny_model import make_tiny_onnx

    model = make_tiny_onnx(tmp_path, residual=True, styles=3)
    assert run_cli("--model", model, "--list-styles") == 0
    assert capsys.readouterr().out.split() == ["auto", "style1", "style2"]
    assert run_cli("--model", model, "--demo", "--duration", 1, "--style", "tango", "--osc", f"127.0.0.1:{receiver.port}") == 2
    err = capsys.readouterr().err
    assert "tango" in err and "style1" in err and "Traceback" not in err
    out = tmp_path / "s.json"
    assert run_cli("--model", model, "--demo", "--duration", 1, "--style", "style2", "--fps", 20, "--osc",
                   f"127.0.0.1:{receiver.port}", "--summary-json", out) == 0
    assert json.loads(out.read_text())["frames"] > 10


def test_a_file_that_ends_stops_the_run_with_a_line_that_says_so(tiny_onnx, receiver, tmp_path, caplog):
    import logging

    import soundfile as sf

    caplog.set_level(logging.INFO, logger="transflower.live")
    song = tmp_path / "short.wav"
    sr = 24000
    sf.write(song, (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(1.0 * sr)) / sr)).astype(np.float32), sr)
    out = tmp_path / "s.json"
    rc = run_cli("--model", tiny_onnx, "--input", song, "--duration", 6, "--fps", 20,
                 "--osc", f"127.0.0.1:{receiver.port}", "--summary-json", out, "--status-interval", 0)
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["stopped_by"] == "end of input" and s["seconds"] < 3.0  # not the 6 s asked for
    assert f"{song} ended after" in caplog.text and "--loop plays it again" in caplog.text


def test_the_library_takes_a_frozen_config_that_a_run_leaves_as_it_was(tiny_onnx, receiver):
    """LiveConfig: the live options as one frozen, typed object (fields and defaults from the parser); a run
    reads it and never changes it (the model's default temperature lives in the session, not the config)."""
    import dataclasses

    from transflower.errors import UserError
    from transflower.realtime.live import LiveSession, _parser
    from transflower.realtime.live_config import live_config

    defaults = vars(_parser().parse_args([]))
    cfg = live_config(model=str(tiny_onnx), demo=True, duration=1.0, fps=20.0, status_interval=0.0,
                      osc=(f"127.0.0.1:{receiver.port}",))
    assert all(getattr(cfg, k) == (tuple(v) if isinstance(v, list) else v) for k, v in defaults.items()
               if k not in ("model", "demo", "duration", "fps", "status_interval", "osc"))
    before = dataclasses.asdict(cfg)
    assert LiveSession(cfg).run() == 0 and dataclasses.asdict(cfg) == before and cfg.temperature is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.temperature = 0.5
    with pytest.raises(UserError, match="unknown \\['temprature'\\]"):
        live_config(temprature=0.5)
