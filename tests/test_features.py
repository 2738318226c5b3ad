"""`transflower features` and the multimodal dataset: shapes, sync, scalers, splits, windows, bad input."""
import json

import numpy as np
import pytest
import soundfile as sf

from transflower.bvh import BvhMotion, write_bvh
from transflower.cli import main
from transflower.dataset import MultimodalDataset, WindowSpec
from transflower.errors import DataError
from transflower.rotations import quat_from_expmap
from transflower.skeleton import JOINT_NAMES, PARENTS, ROTATING_JOINTS, Skeleton


def synthetic_clip(folder, name, seconds=6.0, fps=25.0, seed=0, audio_seconds=None):
    rng = np.random.default_rng(seed)
    T = int(seconds * fps)
    J = len(JOINT_NAMES)
    offsets = np.zeros((J, 3))
    offsets[1:] = rng.normal(size=(J - 1, 3)) * 5 + np.array([0, 10, 0])
    t = np.arange(T)[:, None] / fps
    ev = np.zeros((T, J, 3))
    for j in ROTATING_JOINTS:  # smooth, dance-like oscillations
        ev[:, j] = 0.3 * np.sin(2 * np.pi * (0.5 + 0.1 * j) * t + rng.uniform(0, 6, 3))
    rots = quat_from_expmap(ev)
    root = np.concatenate([np.cos(t) * 30, 90 + 3 * np.sin(4 * t), np.sin(t) * 30], axis=1)
    write_bvh(folder / f"{name}.bvh", BvhMotion(Skeleton(JOINT_NAMES, PARENTS, offsets), fps, root, rots))
    sr = 22050
    n = int((audio_seconds or seconds) * sr)
    beat = (np.arange(n) % (sr // 2) < 400).astype(np.float32)
    y = 0.3 * beat * np.sin(2 * np.pi * 200 * np.arange(n) / sr) + 0.01 * rng.normal(size=n)
    sf.write(folder / f"{name}.wav", y.astype(np.float32), sr)
    return T


@pytest.fixture()
def data_dir(tmp_path):
    for i, name in enumerate(["DANCE_C_1", "DANCE_C_2", "DANCE_C_3", "DANCE_W_1"]):
        synthetic_clip(tmp_path, name, seed=i)
    return tmp_path


def test_features_shapes_sync_scalers_and_splits(data_dir):
    # (tempo copies: tests/test_music_following.py)
    assert main(["features", str(data_dir), "--fps", "20", "--test-ids", "DANCE_C_3", "--tempo-augment"]) == 0
    meta = json.loads((data_dir / "features.json").read_text())
    train = (data_dir / "base_filenames_train.txt").read_text().split()
    test = (data_dir / "base_filenames_test.txt").read_text().split()
    real = ["DANCE_C_1", "DANCE_C_2", "DANCE_W_1"]
    assert test == ["DANCE_C_3"] and sorted(train) == sorted(real + [f"{i}~mirror" for i in real])  # mirrored copies train only
    assert meta["fps"] == 20 and len(meta["motion_names"]) == 4 + 3 * len(ROTATING_JOINTS)
    for seq in train + test:
        m, a = np.load(data_dir / f"{seq}.motion.npy"), np.load(data_dir / f"{seq}.audio.npy")
        assert m.shape == (int((6.0 * 25 - 1) * 20 / 25) + 1, len(meta["motion_names"]))  # resampled 25 -> 20 fps
        assert a.shape == (m.shape[0], len(meta["audio_names"]))  # time-synced: one audio row per motion frame
    allm = np.concatenate([np.load(data_dir / f"{s}.motion.npy") for s in train])
    assert np.abs(allm.mean(0)).max() < 1e-3  # scaler fitted on the training split only
    # the audio rows follow the music: the beat (every 0.5 s = 10 frames) shows in the onset feature
    onset = np.load(data_dir / "DANCE_C_1.audio_raw.npy")[:, meta["audio_names"].index("onset")]
    peaks = np.where(onset > onset.max() * 0.5)[0]
    assert len(peaks) >= 8 and np.all(np.diff(peaks) % 10 <= 1)


def test_dataset_windows_follow_the_seed_spec(data_dir):
    main(["features", str(data_dir)])
    L = 2
    spec = WindowSpec(["motion", "audio"], ["motion"], [16, 16], [16], [0, 1 + L], [1])
    ds = MultimodalDataset(data_dir, "train", spec, stride=3)
    (m_in, a_in), (m_out,) = ds[5]
    seq, s = ds.index[5]
    motion, audio = np.load(data_dir / f"{seq}.motion.npy"), np.load(data_dir / f"{seq}.audio.npy")
    assert np.array_equal(m_in, motion[s : s + 16])
    assert np.array_equal(a_in, audio[s + 1 + L : s + 17 + L])
    assert np.array_equal(m_out, motion[s + 1 : s + 17])
    T = motion.shape[0]
    assert max(st for sq, st in ds.index if sq == seq) <= T - spec.span


def test_unknown_feature_name_is_a_clear_error(data_dir):
    main(["features", str(data_dir)])
    spec = WindowSpec(["motion", "mfcc"], ["motion"], [8, 8], [8], [0, 0], [1])
    with pytest.raises(DataError, match=r"mfcc.*unknown.*available"):
        MultimodalDataset(data_dir, "train", spec)


def test_bad_clips_are_reported_and_the_rest_processed(data_dir, capsys):
    (data_dir / "DANCE_W_2.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")  # truncated BVH
    sf.write(data_dir / "DANCE_W_2.wav", np.zeros(22050, np.float32), 22050)
    (data_dir / "DANCE_W_3.bvh").write_text((data_dir / "DANCE_C_1.bvh").read_text())
    (data_dir / "DANCE_W_3.wav").write_text("not audio")                             # non-audio file
    (data_dir / "DANCE_W_4.bvh").write_text((data_dir / "DANCE_C_1.bvh").read_text())  # missing pair
    synthetic_clip(data_dir, "DANCE_W_5", seconds=6.0, audio_seconds=2.0)              # mismatched lengths
    code = main(["features", str(data_dir)])
    out = capsys.readouterr().out
    assert code == 1
    assert "DANCE_W_2.bvh" in out and "DANCE_W_3.wav: cannot be read as audio" in out
    assert "DANCE_W_4.bvh: no matching DANCE_W_4.wav" in out and "DANCE_W_5.wav: audio lasts" in out
    assert (data_dir / "DANCE_C_1.motion.npy").exists()  # the good clips were still processed
    assert "Traceback" not in out


def test_mismatched_modality_lengths_in_dataset(data_dir):
    main(["features", str(data_dir)])
    a = np.load(data_dir / "DANCE_C_1.audio.npy")
    np.save(data_dir / "DANCE_C_1.audio.npy", a[:-7])
    spec = WindowSpec(["motion", "audio"], ["motion"], [8, 8], [8], [0, 1], [1])
    with pytest.raises(DataError, match="different lengths"):
        MultimodalDataset(data_dir, "train", spec)


@pytest.mark.needs_data
def test_real_data_import_features_and_dataset(shared_data, tmp_path):
    out = tmp_path / "tang"
    code = main(["import", "tang2018", str(shared_data / "tang2018"), str(out), "--clips", "DANCE_C_2", "DANCE_R_3",
                 "DANCE_W_1", "--no-beat-check"])
    assert code == 0
    assert main(["features", str(out), "--test-ids", "DANCE_W_1"]) == 0
    spec = WindowSpec(["motion", "audio"], ["motion"], [120, 120], [120], [0, 3], [1])
    ds = MultimodalDataset(out, "train", spec, stride=10)
    assert len(ds) > 100 and ds.dims == {"motion": 46, "audio": 68}
    (m_in, a_in), (m_out,) = ds[0]
    assert m_in.shape == (120, 46) and a_in.shape == (120, 68) and np.isfinite(a_in).all()


def test_features_back_to_bvh(data_dir, tmp_path):
    """The inverse: a (scaled) feature file becomes a dance file with the same joint rotations."""
    from transflower.bvh import read_bvh
    from transflower.features import StandardScaler, resample_motion
    from transflower.generate import features_to_motion

    main(["features", str(data_dir)])
    meta = json.loads((data_dir / "features.json").read_text())
    feats = StandardScaler.load(data_dir / "motion_scaler.json").inverse(np.load(data_dir / "DANCE_C_1.motion.npy"))
    motion = features_to_motion(feats, meta["skeleton"], meta["fps"])
    write_bvh(tmp_path / "back.bvh", motion)
    back = read_bvh(tmp_path / "back.bvh")
    orig = read_bvh(data_dir / "DANCE_C_1.bvh")
    _, rots = resample_motion(orig.root_positions, orig.local_rotations, orig.fps, meta["fps"])
    joints = ROTATING_JOINTS[1:]  # the root's heading is re-integrated from velocities
    dots = np.abs(np.sum(back.local_rotations[:, joints] * rots[:, joints], axis=-1))
    assert back.local_rotations.shape == rots.shape and dots.min() > 1 - 1e-4
    np.testing.assert_allclose(back.root_positions[:, 1], 90 + 3 * np.sin(4 * np.arange(len(rots)) / meta["fps"]), atol=0.05)


def test_style_labels_and_mirrored_copies(data_dir):
    (data_dir / "styles.json").write_text(json.dumps({"DANCE_C_1": "cha-cha", "DANCE_C_2": "cha-cha", "DANCE_C_3": "cha-cha",
                                                      "DANCE_W_1": "waltz"}))
    assert main(["features", str(data_dir), "--fps", "20", "--test-ids", "DANCE_C_3"]) == 0
    meta = json.loads((data_dir / "features.json").read_text())
    assert meta["styles"] == ["auto", "cha-cha", "waltz"]
    # each style's tempo, the time base's reference (transflower.realtime.time_base): the clips beat at 120 BPM,
    # and a tempo is kept up to octaves, on [60, 120)
    assert set(meta["style_tempos"]) == {"cha-cha", "waltz"}
    for bpm in meta["style_tempos"].values():
        assert 60.0 <= bpm < 120.0 and min(abs(np.log2(bpm / 120.0) - k) for k in (-1, 0)) < 0.04
    assert np.all(np.load(data_dir / "DANCE_W_1.style.npy") == 2) and np.all(np.load(data_dir / "DANCE_C_3.style.npy") == 1)
    assert np.all(np.load(data_dir / "DANCE_W_1~mirror.style.npy") == 2)  # a mirrored waltz is a waltz
    raw, mir = np.load(data_dir / "DANCE_W_1.motion_raw.npy"), np.load(data_dir / "DANCE_W_1~mirror.motion_raw.npy")
    assert np.allclose(mir[:, 0], -raw[:, 0]) and np.allclose(mir[:, 3], raw[:, 3])  # sideways velocity flips, height stays
    assert np.array_equal(np.load(data_dir / "DANCE_W_1~mirror.audio.npy"), np.load(data_dir / "DANCE_W_1.audio.npy"))
    assert "DANCE_C_3~mirror" not in (data_dir / "base_filenames_train.txt").read_text()  # the test split stays real
    main(["features", str(data_dir), "--fps", "20", "--test-ids", "DANCE_C_3", "--no-mirror"])
    assert "~mirror" not in (data_dir / "base_filenames_train.txt").read_text()


def test_bad_styles_file_is_a_clear_error(data_dir, capsys):
    (data_dir / "styles.json").write_text("[1, 2]")
    assert main(["features", str(data_dir)]) == 2
    err = capsys.readouterr()
    assert "styles.json" in err.out + err.err and "Traceback" not in err.out + err.err
