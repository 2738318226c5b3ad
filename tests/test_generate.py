"""Offline generation: a checkpoint (torch) or an exported model (onnx) dances a whole song into a BVH."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from transflower.bvh import forward_kinematics, read_bvh
from transflower.cli import main
from tiny_model import make_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen")
    ckpt, feats, _ = make_tiny_checkpoint(tmp, context=12, lookahead=2)
    sr = 22050
    t = np.arange(int(3.3 * sr)) / sr
    song = tmp / "song.wav"
    sf.write(song, (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32), sr)
    return tmp, ckpt, feats, song


def test_checkpoint_generates_a_bvh_of_the_songs_length(tiny, capsys):
    tmp, ckpt, feats, song = tiny
    out = tmp / "out_ckpt"
    assert main(["generate", str(ckpt), str(song), "--out", str(out), "--features", str(feats), "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    motion = read_bvh(out / "song.bvh")
    assert motion.fps == 20.0
    assert motion.root_positions.shape[0] == int(3.3 * 20)  # one pose per 50 ms frame of the song
    pos, _ = forward_kinematics(motion.skeleton, motion.root_positions, motion.local_rotations)
    assert np.isfinite(pos).all()
    assert report["backend"] == "torch"


def test_same_seed_same_dance_other_seed_other_dance(tiny):
    from transflower.generate import generate

    _, ckpt, feats, song = tiny
    a = generate(ckpt, song, seed=1, features_json=feats, progress=False)["motion"]
    b = generate(ckpt, song, seed=1, features_json=feats, progress=False)["motion"]
    c = generate(ckpt, song, seed=2, features_json=feats, progress=False)["motion"]
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_onnx_model_generates_too(tiny):
    from transflower.export.onnx_export import export_onnx
    from transflower.generate import generate

    tmp, ckpt, feats, song = tiny
    onnx_path = tmp / "tiny.onnx"
    export_onnx(ckpt, onnx_path, features_json=feats, check=False)
    res = generate(onnx_path, song, seed=0, progress=False)
    assert res["backend"] == "onnx" and res["motion"].shape[0] == int(3.3 * 20)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (Debian: ffmpeg)")
def test_video_and_filmstrip(tiny):
    tmp, ckpt, feats, song = tiny
    out = tmp / "out_video"
    assert main(["generate", str(ckpt), str(song), "--out", str(out), "--features", str(feats), "--video",
                 "--filmstrip", "--max-seconds", "1.5"]) == 0
    mp4, png = out / "song.mp4", out / "song.png"
    assert mp4.stat().st_size > 5000 and png.stat().st_size > 5000
    import subprocess

    probe = subprocess.run(["ffmpeg", "-i", str(mp4)], capture_output=True, text=True).stderr
    assert "Video: h264" in probe and "Audio: aac" in probe


def test_missing_song_is_a_clear_error(tiny, capsys):
    tmp, ckpt, feats, _ = tiny
    assert main(["generate", str(ckpt), str(tmp / "nope.wav"), "--out", str(tmp)]) == 2
    assert "nope.wav: song file not found" in capsys.readouterr().err


def test_style_and_default_temperature_reach_the_dance(tmp_path):
    """A style-conditioned model: generate --style picks the style (in torch and in onnxruntime), an unknown
    style is a clear error, and the temperature stored at export is what generate uses by default."""
    from transflower.export.onnx_export import export_onnx
    from tiny_model import make_tiny_style_checkpoint
    from transflower.errors import UserError
    from transflower.generate import generate

    ckpt, feats, _ = make_tiny_style_checkpoint(tmp_path)
    song = tmp_path / "song.wav"
    sf = pytest.importorskip("soundfile")
    sr = 22050
    sf.write(song, (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(2.0 * sr)) / sr)).astype(np.float32), sr)
    for path in (ckpt, tmp_path / "tiny_styles.onnx"):
        if path.suffix == ".onnx":
            export_onnx(ckpt, path, features_json=feats, check=False, default_temperature=0.4)
        kw = {} if path.suffix == ".onnx" else {"features_json": feats}
        one = generate(path, song, seed=1, style="style1", progress=False, **kw)["motion"]
        two = generate(path, song, seed=1, style="style2", progress=False, **kw)["motion"]
        assert not np.allclose(one, two)
        with pytest.raises(UserError, match="style1"):
            generate(path, song, seed=1, style="tango", progress=False, **kw)
    res = generate(tmp_path / "tiny_styles.onnx", song, seed=1, progress=False)
    assert res["temperature"] == pytest.approx(0.4)
    assert generate(ckpt, song, seed=1, features_json=feats, progress=False)["temperature"] == 1.0
