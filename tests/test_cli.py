"""The command line as a user meets it: an option typed beats the same key in --config; an unexpected
error is one line naming a log file that holds the traceback; native libraries' stderr (PortAudio and
ALSA write from C to fd 2) goes to that log during `live`, while our own lines stay on the terminal."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def live_args_with_config(tmp_path, config_text, *argv):
    """What `transflower live ... --config FILE` resolves to (parsed by the real entry point's parser)."""
    from transflower.realtime.live import apply_config_file
    from transflower.cli import build_parser

    cfg = tmp_path / "live.yaml"
    cfg.write_text(config_text)
    full = ["live", *map(str, argv), "--config", str(cfg)]
    args = build_parser().parse_args(full)
    args._argv = full  # what transflower.cli.main keeps
    apply_config_file(args)
    return args


def test_typed_option_beats_config_even_at_its_default(tmp_path):
    # 1.0 is --temperature's default: the old rule (file wins when the value equals the default) lost it
    args = live_args_with_config(tmp_path, "temperature: 0.5\nthreads: 3\nlate_policy: hold\n", "--temperature", "1.0")
    assert args.temperature == 1.0
    assert args.threads == 3 and args.late_policy == "hold"  # keys not typed still come from the file


def test_typed_flags_and_lists_beat_config(tmp_path):
    args = live_args_with_config(tmp_path, "osc: [10.0.0.1:1, 10.0.0.2:2]\nthreads: 4\nlate-policy: hold\n",
                                 "--osc", "127.0.0.1:9", "--threads", "2", "--late-policy", "skip")
    assert args.osc == ["127.0.0.1:9"] and args.threads == 2 and args.late_policy == "skip"


def test_config_applies_when_nothing_typed(tmp_path):
    args = live_args_with_config(tmp_path, "temperature: 0.5\ndemo: true\nfps: 30\n")
    assert args.temperature == 0.5 and args.demo is True and args.fps == 30.0


def test_global_verbose_flag_does_not_confuse_typed_options(tmp_path):
    from transflower.realtime.live import apply_config_file
    from transflower.cli import build_parser

    cfg = tmp_path / "c.yaml"
    cfg.write_text("temperature: 0.5\n")
    argv = ["-v", "live", "--config", str(cfg)]
    args = build_parser().parse_args(argv)
    args._argv = argv
    apply_config_file(args)
    assert args.temperature == 0.5


def run_python(code: str, tmp_path: Path, **env_extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), TRANSFLOWER_LOG_DIR=str(tmp_path / "logs"), **env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)


def test_unexpected_error_is_one_line_and_the_log_has_the_traceback(tmp_path):
    r = run_python("""
        import sys
        import transflower.features as F
        def broken(args):
            raise ZeroDivisionError("a bug deep inside")
        F.run = broken
        from transflower.cli import main
        sys.exit(main(["features", "nowhere"]))
    """, tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and "ZeroDivisionError: a bug deep inside" in lines[0]
    log = Path(lines[0].split("traceback in ")[1].rstrip(")"))
    assert log.parent == tmp_path / "logs"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text and "a bug deep inside" in text
    assert text.splitlines()[0].endswith("transflower features nowhere")  # the command line that failed


def test_user_error_stays_one_line_without_a_log(tmp_path):
    r = run_python("""
        import sys
        from transflower.cli import main
        sys.exit(main(["live", "--model", "missing.onnx"]))
    """, tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: --model missing.onnx: file not found"]
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())


def test_live_sends_native_stderr_to_the_log_and_keeps_ours(tmp_path):
    # what PortAudio/ALSA do while a device is lost: C code writing straight to fd 2, many lines
    r = run_python("""
        import logging, os, sys
        import transflower.realtime.live as L
        def fake_live(args):
            for _ in range(200):
                os.write(2, b"Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 1736\\n")
            logging.getLogger("transflower.live").warning("audio input lost; dancing on to silence")
            sys.stderr.write("status line\\n")
            return 0
        L.run = fake_live
        from transflower.cli import main
        sys.exit(main(["live"]))
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "pa_linux_alsa" not in r.stderr
    assert "audio input lost; dancing on to silence" in r.stderr and "status line" in r.stderr
    logs = list((tmp_path / "logs").glob("live-*.log"))
    assert len(logs) == 1 and logs[0].read_text().count("pa_linux_alsa.c") == 200
    assert f"they are in {logs[0]}" in r.stderr  # one note says where they went
    assert len(r.stderr.strip().splitlines()) == 3


def test_quiet_live_run_leaves_no_log(tmp_path):
    r = run_python("""
        import sys
        import transflower.realtime.live as L
        L.run = lambda args: 0
        from transflower.cli import main
        sys.exit(main(["live"]))
    """, tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    assert not list((tmp_path / "logs").glob("*.log"))


def test_crash_during_live_is_one_line_and_shares_the_log(tmp_path):
    r = run_python("""
        import os, sys
        import transflower.realtime.live as L
        def fake_live(args):
            os.write(2, b"ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred\\n")
            raise RuntimeError("boom")
        L.run = fake_live
        from transflower.cli import main
        sys.exit(main(["live"]))
    """, tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unexpected RuntimeError: boom (traceback in ")
    text = Path(lines[0].split("traceback in ")[1].rstrip(")")).read_text()
    assert "snd_pcm_recover" in text and "RuntimeError: boom" in text


@pytest.mark.slow
def test_real_demo_run_through_the_entry_point_prints_no_traceback(tiny_onnx, tmp_path, receiver):
    r = run_python(f"""
        import sys
        from transflower.cli import main
        sys.exit(main(["live", "--model", {str(tiny_onnx)!r}, "--demo", "--duration", "1.5",
                       "--osc", "127.0.0.1:{receiver.port}", "--status-interval", "0.5"]))
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "danced 1.5 s to demo" in r.stdout and '"frames"' not in r.stdout


@pytest.mark.slow
@pytest.mark.needs_audio
def test_real_device_loss_keeps_the_terminal_clean(tiny_onnx, tmp_path):
    """PulseAudio killed and restarted under `transflower live --device pulse`: PortAudio/ALSA print their
    error lines from C; the terminal shows only our one-line messages, the log file holds theirs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np
    from virtual_mic import VirtualMic, available

    ok, why = available()
    if not ok:
        pytest.skip(why)
    vm = VirtualMic().start()
    try:
        if getattr(vm, "reused_server", False):
            pytest.skip("a PulseAudio server this test did not start is running; it will not kill it")
        tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(48000 * 30) / 48000)).astype(np.float32)
        vm.play(tone, 48000)
        env = dict(os.environ, PYTHONPATH=str(REPO), TRANSFLOWER_LOG_DIR=str(tmp_path / "logs"))
        p = subprocess.Popen([sys.executable, "-m", "transflower.cli", "live", "--model", str(tiny_onnx), "--device", "pulse",
                              "--duration", "16", "--status-interval", "0", "--osc", "127.0.0.1:9"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        try:
            import time

            time.sleep(5)
            vm._stop_server()  # the device goes away ...
            time.sleep(3)
            vm.start()         # ... and comes back
            vm.play(tone, 48000)
            out, err = p.communicate(timeout=90)
        finally:
            if p.poll() is None:
                p.kill()
    finally:
        vm.stop()
    assert p.returncode == 0, err
    assert "pa_linux_alsa" not in err and "ALSA lib" not in err and "Traceback" not in err
    assert "lost" in err and "back after" in err  # our own lines stay visible
    logs = list((tmp_path / "logs").glob("live-*.log"))
    assert len(logs) == 1 and ("pa_linux_alsa" in logs[0].read_text() or "ALSA lib" in logs[0].read_text())
    assert str(logs[0]) in err  # the one note says where they went


LIVE_GROUPS = {
    "audio input": ["--list-devices", "--device", "--input", "--loop", "--loop-input", "--audible", "--demo", "--input-gain"],
    "output": ["--osc", "--fps", "--bone-positions", "--bone-map", "--preview", "--avatar", "--preview-port", "--record"],
    "dancer": ["--model", "--temperature", "--style", "--style-strength", "--list-styles", "--noise-correlation",
               "--no-style-presets", "--no-energy", "--time-base", "--count-in", "--no-floor", "--stage-radius", "--seed", "--seed-motion", "--dancers",
               "--temperatures"],
    "live control": ["--control", "--midi", "--midi-map", "--list-midi"],
    "run": ["--duration", "--status-interval", "--verbose", "--summary-json", "--config"],
    "engine": ["--threads", "--provider", "--no-spin", "--priority", "--lock-memory", "--lookahead", "--late-policy"],
}


def test_live_help_groups_the_options_creative_first_engine_last():
    from transflower.realtime.live import _parser

    p = _parser()
    where = {}
    for g in p._action_groups:
        for a in g._group_actions:
            for opt in a.option_strings:
                where[opt] = g.title.split(" (")[0]
    for group, options in LIVE_GROUPS.items():
        for opt in options:
            assert where.get(opt) == group, (opt, where.get(opt), group)
    listed = {o for opts in LIVE_GROUPS.values() for o in opts}
    assert {o for o in where if o.startswith("--")} - listed == {"--help"}  # every option has its group here
    text = p.format_help()
    heads = [text.index(f"\n{g}") for g in LIVE_GROUPS]
    assert heads == sorted(heads)  # --help shows them in this order: the engine's tuning last
    assert "dancer (how it dances)" in text and "engine (advanced" in text
