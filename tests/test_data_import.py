import argparse
import json
import shutil

import numpy as np
import pytest

from transflower import data_import
from transflower.bvh import forward_kinematics, read_bvh

CLIPS = ["DANCE_C_2", "DANCE_W_1"]


def _args(src, out, clips=None, fps=20.0):
    p = argparse.ArgumentParser()
    data_import.configure_parser(p)
    argv = ["tang2018", str(src), str(out), "--fps", str(fps)]
    if clips:
        argv += ["--clips", *clips]
    return p.parse_args(argv)


@pytest.fixture(scope="module")
def imported(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tf_import")
    rc = data_import.run(_args(shared_data / "tang2018", out, CLIPS))
    assert rc == 0
    return shared_data / "tang2018", out, json.loads((out / "import_report.json").read_text())


def _bone_mad(markers, a, b):
    d = np.linalg.norm(markers[:, a] - markers[:, b], axis=-1)
    return float(np.abs(d - np.median(d)).mean())


@pytest.mark.needs_data
@pytest.mark.slow
def test_fit_error_bounds(imported):
    src, out, report = imported
    # Fixed bone lengths cannot follow the markers' own length wobble (mean absolute deviation of
    # e.g. the thigh: ~2 cm in cha-cha, ~4 cm in waltz), so that wobble is the floor of the fit error.
    bounds = {"DANCE_C_2": 2.5, "DANCE_W_1": 4.0}
    for clip in CLIPS:
        e = report["clips"][clip]
        assert e["status"] == "ok"
        assert e["fit_error_cm"]["mean"] < bounds[clip], e["fit_error_cm"]
        markers, _ = data_import.load_clip(src / clip)
        # the knee sits within the thigh's length wobble (+0.5 cm) of its marker on average
        for side, (hip, knee) in (("Right", (7, 8)), ("Left", (16, 17))):
            assert e["fit_error_cm"]["per_joint_mean"][f"{side}Leg"] < _bone_mad(markers, hip, knee) + 0.5
        # the root is the hips' midpoint exactly
        assert e["fit_error_cm"]["per_joint_mean"]["Hips"] < 1e-6


@pytest.mark.needs_data
@pytest.mark.slow
def test_outputs_match(imported):
    import soundfile as sf

    src, out, report = imported
    for clip in CLIPS:
        e = report["clips"][clip]
        m = read_bvh(out / f"{clip}.bvh")
        assert m.fps == pytest.approx(20.0, rel=1e-6)
        assert m.num_frames == e["frames"]
        info = sf.info(str(out / f"{clip}.wav"))
        assert info.samplerate == 44100 and info.channels == 1 and info.subtype == "FLOAT"
        assert abs(info.frames / 44100 - m.num_frames / 20.0) < 1.0 / 44100 + 1e-9
        markers, cfg = data_import.load_clip(src / clip)
        span = (len(markers) - 1) / e["source_fps"]
        assert abs(m.num_frames / 20.0 - span) <= 1 / 20.0 + 1e-9
    assert report["clips"]["DANCE_C_2"]["source_fps"] == 25.0
    # waltz: sparse, ~5.9 fps from the song span
    assert 5.5 < report["clips"]["DANCE_W_1"]["source_fps"] < 6.3


@pytest.mark.needs_data
@pytest.mark.slow
def test_bvh_fk_follows_markers(imported):
    # the written (resampled) cha-cha BVH against the markers interpolated at the same times
    src, out, report = imported
    m = read_bvh(out / "DANCE_C_2.bvh")
    g, _ = forward_kinematics(m.skeleton, m.root_positions, m.local_rotations)
    markers, _ = data_import.load_clip(src / "DANCE_C_2")
    tgt = data_import.joint_targets(markers)
    t = np.arange(m.num_frames) / 20.0 * 25.0
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, len(tgt) - 1)
    a = (t - i0)[:, None, None]
    interp = tgt[i0] * (1 - a) + tgt[i1] * a
    err = np.linalg.norm(g - interp, axis=-1)
    assert err.mean() < 2.5


def test_resample_linear_and_slerp():
    from scipy.spatial.transform import Rotation as R

    L = 11
    root = np.stack([np.arange(L, dtype=float), np.zeros(L), np.zeros(L)], axis=1)
    ang = np.linspace(0, 2.0, L)
    local = R.from_rotvec(np.outer(ang, [0, 0, 1])).as_quat()[:, None]
    r2, l2 = data_import.resample(root, local, 5.0, 20.0)
    assert r2.shape[0] == 41  # 2 s span at 20 fps, both ends included
    np.testing.assert_allclose(r2[:, 0], np.arange(41) / 4.0, atol=1e-12)
    np.testing.assert_allclose(R.from_quat(l2[:, 0]).as_rotvec()[:, 2], np.linspace(0, 2.0, 41), atol=1e-9)


def test_bad_clips_are_reported_and_batch_continues(shared_data, tmp_path):
    src = tmp_path / "src"
    real = shared_data / "tang2018" / "DANCE_C_2"
    # a small good clip (no audio: reported, not an error)
    good = src / "DANCE_C_90"
    good.mkdir(parents=True)
    d = json.loads((real / "skeletons.json").read_text())
    d = {"length": 40, "center": d["center"][:40], "skeletons": d["skeletons"][:40]}
    (good / "skeletons.json").write_text(json.dumps(d))
    shutil.copy(real / "config.json", good / "config.json")
    # corrupt ones
    for name, sk_text, cfg_text in [
        ("DANCE_C_91", "{\"length\": 3, \"center\": [[0, 0", '{"start_position": 0, "end_position": 10}'),
        ("DANCE_C_92", json.dumps({"length": 2, "center": [[0, 0, 0]] * 2, "skeletons": [[[0, 0, 0]] * 22] * 2}),
         '{"start_position": 0, "end_position": 10}'),
        ("DANCE_C_93", json.dumps(d), '{"start_position": "x"}'),
        ("DANCE_C_94", None, '{"start_position": 0, "end_position": 10}'),
    ]:
        (src / name).mkdir()
        if sk_text is not None:
            (src / name / "skeletons.json").write_text(sk_text)
        (src / name / "config.json").write_text(cfg_text)
    out = tmp_path / "out"
    rc = data_import.run(_args(src, out))
    assert rc == 1
    report = json.loads((out / "import_report.json").read_text())
    assert report["clips"]["DANCE_C_90"]["status"] == "no audio"
    # motion-only clips are kept apart, so that `transflower features OUT` sees only complete pairs
    assert (out / "motion_only" / "DANCE_C_90.bvh").is_file() and not (out / "DANCE_C_90.bvh").exists()
    assert not (out / "DANCE_C_90.wav").exists() and not list((out / "motion_only").glob("*.wav"))
    assert json.loads((out / "styles.json").read_text()) == {}  # only complete, imported clips are labelled
    for bad, needle in [("DANCE_C_91", "skeletons.json"), ("DANCE_C_92", "(L, 23, 3)"),
                        ("DANCE_C_93", "config.json"), ("DANCE_C_94", "missing")]:
        e = report["clips"][bad]
        assert e["status"] == "failed" and needle in e["error"], e
        assert "DataError" in e["error"]


def test_cli_errors(tmp_path):
    from transflower.errors import UserError

    with pytest.raises(UserError):
        data_import.run(_args(tmp_path / "nope", tmp_path / "out"))
    (tmp_path / "src" / "DANCE_C_1").mkdir(parents=True)
    with pytest.raises(UserError):
        data_import.run(_args(tmp_path / "src", tmp_path / "out", clips=["DANCE_X_1"]))


def test_smooth_twist_fills_weak_frames_from_neighbours():
    """A twist reference that degenerates (its vector shrinks, its angle swings) takes its neighbours'
    angle; strong frames keep their own."""
    L = 60
    true = np.linspace(0.0, 1.0, L)  # a slow, real twist
    strength = np.ones(L)
    strength[28:33] = 0.01  # the reference lines up with the bone here
    measured = true.copy()
    measured[28:33] = true[28:33] + np.pi  # ... and reads back flipped
    num, den = strength * np.sin(measured), strength * np.cos(measured)
    raw = np.arctan2(num, den)
    smooth = data_import.smooth_twist(num, den, lam=4.0)
    err = lambda a: np.abs(np.angle(np.exp(1j * (a - true))))  # noqa: E731
    assert err(raw)[28:33].min() > 3.0  # the flip
    assert err(smooth).max() < 0.1  # gone, and strong frames barely moved
    assert np.allclose(data_import.smooth_twist(num, den, lam=0.0), raw)
