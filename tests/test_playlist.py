"""`transflower live --input a b` / `--input FOLDER` / `--loop`: songs one after another as one stream, the
dancer carried across them (no reset), the whole list again with --loop; bad inputs one clear line."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transflower.realtime.playlist import PlaylistSource, playlist_files  # noqa: E402
from transflower.errors import UserError  # noqa: E402


def tone(path, hz, seconds, sr):
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), sr)
    return path


@pytest.fixture
def songs(tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    a = tone(d / "01-a.wav", 220, 1.0, 24000)
    b = tone(d / "02-b.wav", 660, 0.5, 48000)  # another rate: resampled to the first song's
    (d / "notes.txt").write_text("not audio")
    return d, a, b


def test_playlist_files_from_files_and_folders(songs, tmp_path):
    d, a, b = songs
    assert playlist_files([str(d)]) == [a, b]  # name order, audio files only
    assert playlist_files([b, a, d]) == [b, a, a, b]
    assert playlist_files(str(a)) == [a]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"--input .*empty: no audio files in this folder"):
        playlist_files([empty])
    with pytest.raises(UserError, match=r"--input .*nope.ogg: file not found"):
        playlist_files([a, tmp_path / "nope.ogg"])


def drain(src, limit_s=10.0):
    """Everything the source feeds (as fast as it can, realtime=False) until it finishes or `limit_s` of audio."""
    out, buf = [], np.zeros(4096, np.float32)
    src.start()
    total = 0
    try:
        while total < limit_s * src.samplerate:
            n = src.ring.read_into(buf)
            if n:
                out.append(buf[:n].copy())
                total += n
            elif src.finished:
                break
            else:
                time.sleep(0.001)
    finally:
        src.stop()
    return np.concatenate(out)


def dominant_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def test_songs_play_one_after_another_as_one_stream(songs, caplog):
    d, a, b = songs
    caplog.set_level(logging.INFO, logger="transflower.realtime.playlist")
    src = PlaylistSource([a, b], realtime=False)
    x = drain(src)
    assert src.samplerate == 24000 and src.finished
    assert abs(len(x) - 36000) <= 64  # 1 s + 0.5 s at the first song's rate
    assert dominant_hz(x[2400:21600], 24000) == pytest.approx(220, abs=3)
    assert dominant_hz(x[26400:33600], 24000) == pytest.approx(660, abs=3)  # the second song, resampled
    assert "now playing 02-b.wav (2 of 2)" in caplog.text


def test_loop_starts_the_list_over_and_a_bad_song_is_skipped(songs, caplog):
    d, a, b = songs
    bad = d / "03-bad.ogg"
    bad.write_bytes(b"OggS not really" * 50)
    src = PlaylistSource([a, bad, b], realtime=False, loop=True)
    x = drain(src, limit_s=3.5)
    assert not src.finished and len(x) >= 3.5 * 24000
    assert dominant_hz(x[38400:45600], 24000) == pytest.approx(220, abs=3)  # song 1 again after 1.5 s
    assert "03-bad.ogg" in caplog.text and "skipping it" in caplog.text


def run_cli(*argv) -> int:
    from transflower.cli import main

    return main(["live", *[str(a) for a in argv]])


def test_live_plays_a_folder_without_a_reset_between_songs(tiny_onnx, receiver, songs, tmp_path, caplog):
    d, a, b = songs
    caplog.set_level(logging.INFO)
    out = tmp_path / "s.json"
    assert run_cli("--model", tiny_onnx, "--input", d, "--fps", 20, "--duration", 6, "--osc",
                   f"127.0.0.1:{receiver.port}", "--summary-json", out, "--status-interval", 0) == 0
    s = json.loads(out.read_text())
    # both songs (1.5 s, played from the first frame: a file starts with the frame loop), not the 6 s asked for
    assert s["stopped_by"] == "end of input" and 0.5 <= s["seconds"] <= 2.5
    assert s["source"] == "playlist:2 files" and s["engine_resets"] == 0
    assert "now playing 02-b.wav (2 of 2)" in caplog.text and f"{d} ended after" in caplog.text


def test_live_loop_plays_on_until_the_duration(tiny_onnx, receiver, songs, tmp_path):
    d, a, b = songs
    out = tmp_path / "s.json"
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"input: [{a}, {b}]\nloop_input: true\n")  # the older key name still works
    assert run_cli("--model", tiny_onnx, "--config", cfg, "--fps", 20, "--duration", 3, "--osc",
                   f"127.0.0.1:{receiver.port}", "--summary-json", out, "--status-interval", 0) == 0
    s = json.loads(out.read_text())
    assert s["stopped_by"] == "duration" and s["seconds"] >= 2.5 and s["source"] == "playlist:2 files"


def test_bad_inputs_are_one_clear_line(tiny_onnx, tmp_path, capsys):
    cfg = tmp_path / "live.yaml"
    cfg.write_text("input: [1, 2]\n")
    assert run_cli("--model", tiny_onnx, "--config", cfg) == 2
    assert "input: expected FILE or a list of them" in capsys.readouterr().err
    assert run_cli("--model", tiny_onnx, "--input", tmp_path, "--duration", 1) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "no audio files in this folder" in err and "Traceback" not in err
