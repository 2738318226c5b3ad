"""Following the music: tempo-augmented features, tempo splices in the dataset, the energy gate (breaks),
and `transflower bench music`'s measures, end to end on a tiny model."""
from __future__ import annotations

import json

from pathlib import Path

import numpy as np
import pytest

from tests.test_features import synthetic_clip
from transflower.cli import main
from transflower.dataset import MultimodalDataset, WindowSpec, tempo_versions
from transflower.errors import DataError, UserError


# ---------------------------------------------------------------------------------------------
# tempo copies (transflower features --tempo-augment)


@pytest.fixture()
def clips(tmp_path):
    for i, name in enumerate(["DANCE_C_1", "DANCE_C_2", "DANCE_W_1"]):
        synthetic_clip(tmp_path, name, seconds=8.0, seed=i)
    (tmp_path / "styles.json").write_text(json.dumps({"DANCE_C_1": "cha-cha", "DANCE_C_2": "cha-cha", "DANCE_W_1": "waltz"}))
    return tmp_path


def test_tempo_copies_stretch_music_and_motion_together(clips):
    assert main(["features", str(clips), "--fps", "20", "--test-ids", "DANCE_C_2", "--tempo-augment", "0.8", "1.25"]) == 0
    meta = json.loads((clips / "features.json").read_text())
    train = (clips / "base_filenames_train.txt").read_text().split()
    assert meta["tempo_factors"] == [0.8, 1.25]
    assert {"DANCE_C_1~t0.80", "DANCE_C_1~t1.25", "DANCE_W_1~t1.25~mirror"} <= set(train)
    assert not any(i.startswith("DANCE_C_2~") for i in train)  # the test split stays real
    raw = np.load(clips / "DANCE_C_1.motion_raw.npy")
    for f in (0.8, 1.25):
        fast = np.load(clips / f"DANCE_C_1~t{f:.2f}.motion_raw.npy")
        audio = np.load(clips / f"DANCE_C_1~t{f:.2f}.audio_raw.npy")
        assert abs(len(fast) - (len(raw) - 1) / f - 1) <= 1 and len(audio) == len(fast)
        # frame i of the copy is the dance at time i * f: the root height (90 + 3 sin 4t) says so
        t = np.arange(len(fast)) * f / 20.0
        np.testing.assert_allclose(fast[:, 3], 90 + 3 * np.sin(4 * t), atol=0.1)
        assert np.all(np.load(clips / f"DANCE_C_1~t{f:.2f}.style.npy") == 1)  # a faster cha-cha is a cha-cha
    # the music's beat (every 0.5 s, 10 frames) comes every 10 / f frames in the copy's onset feature
    onset = np.load(clips / "DANCE_C_1~t1.25.audio_raw.npy")[:, meta["audio_names"].index("onset")]
    peaks = np.flatnonzero(onset > onset.max() * 0.5)
    gaps = np.diff(peaks[np.r_[True, np.diff(peaks) > 2]])
    assert np.median(gaps) == pytest.approx(8.0, abs=1.0)
    # the scalers describe the unstretched clips (the mirrored included), as a model trained before expects
    real = [i for i in train if "~t" not in i]
    allm = np.concatenate([np.load(clips / f"{i}.motion.npy") for i in real])
    assert np.abs(allm.mean(0)).max() < 1e-3


def test_tempo_augment_off_and_bad_factors(clips, capsys):
    assert main(["features", str(clips), "--fps", "20", "--test-ids", "DANCE_C_2", "--tempo-augment"]) == 0
    assert "~t" not in (clips / "base_filenames_train.txt").read_text()
    assert main(["features", str(clips), "--fps", "20", "--tempo-augment", "3"]) == 2
    assert "--tempo-augment" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# tempo splices in the dataset


def song_time_data(tmp_path, factors=(1.0, 1.25), fps=20.0, seconds=30.0):
    """One clip in tempo versions whose every feature is a known function of song time: sin(2 pi 0.3 t)."""
    ids = []
    for f in factors:
        sid = "clip" if f == 1.0 else f"clip~t{f:.2f}"
        n = int(seconds * fps / f)
        t = np.arange(n) * f / fps
        x = np.sin(2 * np.pi * 0.3 * t)[:, None].astype(np.float32)
        np.save(tmp_path / f"{sid}.motion.npy", np.repeat(x, 2, 1))
        np.save(tmp_path / f"{sid}.audio.npy", np.repeat(x, 3, 1))
        ids.append(sid)
    (tmp_path / "base_filenames_train.txt").write_text("\n".join(ids) + "\n")
    return ids


def test_a_spliced_window_changes_tempo_at_the_same_moment_of_the_song(tmp_path):
    song_time_data(tmp_path)
    spec = WindowSpec(["motion", "audio"], ["motion"], [40, 40], [40], [0, 3], [1])
    ds = MultimodalDataset(tmp_path, "train", spec, stride=7, tempo_splice=1.0, seed=0)
    assert tempo_versions(ds.ids) == {"clip": {1.0: "clip", 1.25: "clip~t1.25"}}
    s = 70
    w = ds.spliced("clip", s, "clip~t1.25", 20)
    song_t = np.r_[(s + np.arange(20)) / 20.0, (round((s + 20) / 1.25) + np.arange(len(w["motion"]) - 20)) * 1.25 / 20.0]
    np.testing.assert_allclose(w["motion"][:, 0], np.sin(2 * np.pi * 0.3 * song_t), atol=1e-5)
    # continuous: the frame after the cut is the next moment of the song, and from there on at 1.25x the pace
    assert abs(song_t[20] - song_t[19] - 1 / 20) < 0.07 / 20 and abs(song_t[21] - song_t[20] - 1.25 / 20) < 1e-9
    # items: the right shapes, and every window spliced somewhere in its middle half
    for i in range(0, len(ds), 5):
        inputs, outputs = ds[i]
        assert [a.shape for a in inputs] == [(40, 2), (40, 3)] and outputs[0].shape == (40, 2)
    assert ds.spliced("clip", len(np.load(tmp_path / "clip.motion.npy")) - 45, "clip~t1.25", 30) is None  # runs out


def test_a_window_may_switch_tempo_several_times_and_stays_one_continuous_song(tmp_path):
    song_time_data(tmp_path, factors=(1.0, 0.8, 1.25))
    spec = WindowSpec(["motion", "audio"], ["motion"], [60, 60], [60], [0, 2], [1])
    ds = MultimodalDataset(tmp_path, "train", spec, stride=11, tempo_splice=1.0, seed=1, tempo_splices=4)
    w = ds.spliced_chain("clip", 100, [(10, "clip~t1.25"), (30, "clip~t0.80"), (45, "clip")])
    x = w["motion"][:, 0]
    assert len(x) == spec.span
    # song time (in frames of the original): 100..109 at 1x, then from the same moment at 1.25x, then 0.8x
    b = np.round(110 / 1.25) + np.arange(20)
    c = np.round((b[-1] + 1) * 1.25 / 0.8) + np.arange(15)
    song = np.r_[100 + np.arange(10), b * 1.25, c * 0.8]
    np.testing.assert_allclose(x[:45], np.sin(2 * np.pi * 0.3 * song / 20.0), atol=1e-5)
    for i in range(len(ds)):  # every item: the input past and the target are the same (spliced) sequence
        inputs, outputs = ds[i]
        np.testing.assert_array_equal(inputs[0][1:], outputs[0][:-1])
    with pytest.raises(UserError, match="tempo_splices"):
        MultimodalDataset(tmp_path, "train", spec, tempo_splice=1.0, tempo_splices=0)


def test_music_leads_the_cut_and_the_frames_before_it_are_context_only(tmp_path):
    fps = 20.0
    for f in (1.0, 1.25):  # every feature is the song time itself
        sid = "clip" if f == 1.0 else f"clip~t{f:.2f}"
        t = (np.arange(int(30 * fps / f)) * f / fps)[:, None].astype(np.float32)
        np.save(tmp_path / f"{sid}.motion.npy", np.repeat(t, 2, 1))
        np.save(tmp_path / f"{sid}.audio.npy", np.repeat(t, 3, 1))
    (tmp_path / "base_filenames_train.txt").write_text("clip\nclip~t1.25\n")
    spec = WindowSpec(["motion", "audio"], ["motion"], [40, 40], [40], [0, 3], [1])
    ds = MultimodalDataset(tmp_path, "train", spec, stride=7, tempo_splice=1.0, seed=0, music_leads=1.0)
    led = 0
    for i in range(len(ds)):
        inputs, outputs = ds[i]
        assert len(outputs) == 2 and outputs[1].shape == (40, 1)
        mask, target, audio = outputs[1][:, 0], outputs[0][:, 0], inputs[1][:, 0]
        z = int((mask == 0).sum())
        assert np.all(mask[z:] == 1.0)
        if z == 0:  # a version ran out: a plain spliced window, every frame a target
            continue
        led += 1
        step = np.diff(audio)
        assert np.allclose(step, step[0], atol=1e-5)  # one version's music throughout, at its own tempo
        assert np.allclose(np.diff(target[z:]), step[0], atol=1e-5)  # the dance follows it from the cut on
        assert not np.allclose(np.diff(target[: z - 1]), step[0], atol=1e-3)  # ... and before it did not
        cut = z + 1  # window row of the cut: output j is row j + 1, audio input j is row j + 3
        assert abs(target[cut - 1] - audio[cut - 3]) <= 1.3 / fps  # the same moment of the song at the cut
    assert led > len(ds) // 2
    with pytest.raises(UserError, match="music_leads"):
        MultimodalDataset(tmp_path, "train", spec, tempo_splice=1.0, tempo_splices=2, music_leads=0.5)
    with pytest.raises(UserError, match="music_leads"):
        MultimodalDataset(tmp_path, "train", spec, tempo_splice=1.0, music_leads=1.5)


def test_tempo_splice_needs_copies_and_a_probability(tmp_path):
    song_time_data(tmp_path, factors=(1.0,))
    spec = WindowSpec(["motion"], ["motion"], [10], [10], [0], [1])
    with pytest.raises(DataError, match="tempo-augment"):
        MultimodalDataset(tmp_path, "train", spec, tempo_splice=0.5)
    with pytest.raises(UserError, match="tempo_splice"):
        MultimodalDataset(tmp_path, "train", spec, tempo_splice=1.5)


# ---------------------------------------------------------------------------------------------
# the energy gate


def gate(fps=20.0, D=10):
    from transflower.energy import MusicEnergy

    mean = np.linspace(-1, 1, D).astype(np.float32)
    return MusicEnergy(fps, mean), mean


def test_loud_music_passes_the_dance_through_unchanged():
    g, _ = gate()
    pose = np.arange(10, dtype=np.float32)
    out = np.empty_like(pose)
    for _ in range(40):
        g.update(-12.0)
        g.apply(pose, out)
    assert g.gain > 0.999 and np.array_equal(out, pose)


def test_a_break_settles_within_2_s_into_a_sway_about_the_mean_and_the_dance_returns():
    g, mean = gate()
    fps = 20
    for _ in range(10 * fps):
        g.update(-12.0)
    gains = [g.update(-100.0) for _ in range(12 * fps)]
    settle = np.flatnonzero(np.array(gains) <= g.config.break_gain + 0.02)[0] / fps
    assert settle <= 2.0 and g.in_break
    assert min(gains) >= g.config.break_gain - 1e-6  # a calm sway, never a freeze
    pose = mean + 1.0
    out = np.empty_like(pose)
    g.apply(pose, out)
    np.testing.assert_allclose(out[4:] - mean[4:], g.gain * 1.0, atol=1e-6)  # joints: about the mean pose
    np.testing.assert_allclose(out[:3], g.gain * pose[:3], atol=1e-6)  # travel and turn scaled
    assert out[3] == pose[3]  # the root height is the floor's business
    back = [g.update(-12.0) for _ in range(fps)]
    assert np.flatnonzero(np.array(back) >= 0.8)[0] / fps <= 0.5 and not g.in_break


def test_quieter_passages_are_danced_smaller_and_a_short_gap_is_no_break():
    g, _ = gate()
    for _ in range(100):
        g.update(-10.0)
    for _ in range(100):
        same = g.update(-15.0)  # 5 dB down: a song's own dynamics, full size
    assert same == pytest.approx(1.0, abs=1e-3)
    for _ in range(100):
        quiet = g.update(-30.0)  # 20 dB down (the reference decays towards it, slowly)
    assert g.config.quiet_gain < quiet < 0.9
    g.reset()
    for _ in range(100):
        g.update(-10.0)
    for _ in range(3):  # 150 ms of silence: a gap between notes
        g.update(-100.0)
    assert not g.in_break
    assert g.update(float("nan")) == g.gain and np.isfinite(g.reference_db)  # a broken row changes nothing


def test_the_gate_on_a_finished_rollout_equals_frame_by_frame():
    g1, _ = gate()
    g2, _ = gate()
    rng = np.random.default_rng(0)
    motion = rng.normal(size=(200, 10)).astype(np.float32)
    levels = np.r_[np.full(80, -12.0), np.full(60, -100.0), np.full(60, -15.0)]
    whole = g1.apply_sequence(motion, levels)
    out = np.empty(10, np.float32)
    for t in range(200):
        g2.update(levels[t])
        np.testing.assert_array_equal(g2.apply(motion[t], out), whole[t])


def test_the_engine_shows_the_gated_dance_and_feeds_back_its_own(tmp_path):
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel
    from tests.tiny_model import make_tiny_onnx

    path = make_tiny_onnx(tmp_path)
    model = OnnxDanceModel(path, provider="cpu", threads=1)
    on = DanceEngine(model, seed=0)
    off = DanceEngine(model, seed=0, energy=False)
    assert off.shown_poses is off.poses
    for _ in range(40):  # silence: a break
        a, b = on.step(on.silence), off.step(off.silence)
    np.testing.assert_array_equal(on.poses, off.poses)  # the model's own dance is untouched...
    assert on.energy.in_break and not np.allclose(a, b)  # ...what is shown is calmed
    assert np.array_equal(a, on.shown_poses[0])


# ---------------------------------------------------------------------------------------------
# bench music


def test_time_scale_reads_a_dance_played_faster():
    from transflower.benchmarks.music import rhythm_acf, time_scale

    fps = 20.0
    rng = np.random.default_rng(0)

    def dance_speed(tempo):  # bursts of speed on every beat, with some jitter
        t = np.arange(int(30 * fps)) / fps
        phase = (t * tempo / 60.0) % 1.0
        return np.exp(-((phase - 0.2) ** 2) / 0.01) + 0.05 * rng.normal(size=len(t))

    slow, fast = rhythm_acf(dance_speed(80), fps), rhythm_acf(dance_speed(125), fps)
    assert time_scale(slow, fast, fps) == pytest.approx(0.64, abs=0.04)
    assert time_scale(slow, rhythm_acf(dance_speed(80), fps), fps) == pytest.approx(1.0, abs=0.04)


def test_break_measures():
    from transflower.benchmarks.music import break_measures

    fps = 20.0
    t = np.arange(int(44 * fps)) / fps
    speed = np.where((t >= 20.5) & (t < 32.5), 0.1, 1.0)
    m = break_measures(speed, fps)
    assert m["ratio"] == pytest.approx(0.1) and 0.5 < m["settle_s"] < 2.0 and 0.5 < m["resume_s"] < 2.0
    m = break_measures(np.ones_like(t), fps)  # dances on through the silence
    assert m["ratio"] == pytest.approx(1.0) and m["settle_s"] == float("inf")


@pytest.mark.slow
def test_bench_music_end_to_end_on_a_tiny_model(tmp_path, capsys):
    from tests.test_bench import make_data
    from tests.tiny_model import make_tiny_checkpoint

    ckpt, feats, _ = make_tiny_checkpoint(tmp_path, context=12, lookahead=1)
    data = make_data(tmp_path, feats, ids=("song_a",), seconds=14.0)
    baseline = tiny_moglow(tmp_path, json.loads(Path(feats).read_text()))
    out = tmp_path / "out"
    assert main(["bench", "music", "--data", str(data), "--models", f"tiny={ckpt}", f"moglow={baseline}", "--samples", "1",
                 "--seconds", "10", "--out", str(out)]) == 0
    res = json.loads((out / "music.json").read_text())
    assert res["real"]["tempo_s"]["song_a"] == pytest.approx(0.64, abs=0.06)  # the measure, on the real dance
    row = res["models"]["tiny"]
    assert 0.4 <= row["tempo_s"]["song_a"] <= 1.6 and set(row["demo_s"]) == {"100->124", "100->140"}
    assert row["break_dances"] == 0  # a 14-s song has no room for a 12-s break
    assert (out / "music_speed.png").stat().st_size > 1000 and "| real (resampled) |" in (out / "music.md").read_text()
    assert "Tempo following" in capsys.readouterr().out
    # a baseline (no live engine) dances the same conditions through its own sampler
    base = res["models"]["moglow"]
    assert 0.2 <= base["tempo_s"]["song_a"] <= 2.0 and set(base["demo_s"]) == {"100->124", "100->140"}
    assert np.isfinite(base["pace_ratio"]["song_a"]) and "| moglow |" in (out / "music.md").read_text()
    assert set(row["demo_pace"]) == {"100->124", "100->140"} and all(v > 0 for v in row["demo_pace"].values())
    # on the beat-matched clock (reported apart); a style per song needs the data's labels
    out2 = tmp_path / "out_tb"
    assert main(["bench", "music", "--data", str(data), "--models", f"tiny={ckpt}", "--samples", "1", "--seconds", "10",
                 "--time-base", "--out", str(out2)]) == 0
    res2 = json.loads((out2 / "music.json").read_text())
    assert res2["time_base"] is True and "time base on" in (out2 / "music.md").read_text()
    assert main(["bench", "music", "--data", str(data), "--models", f"tiny={ckpt}", "--style", "labelled",
                 "--out", str(out2)]) != 0
    assert "--style labelled" in capsys.readouterr().err


def tiny_moglow(tmp_path, feats) -> Path:
    """A randomly initialised MoGlow baseline checkpoint of the tiny data's feature sizes."""
    import torch

    from transflower.models import build_model

    cfg = {"model": "moglow", "model_config": dict(motion_dim=len(feats["motion_names"]), audio_dim=len(feats["audio_names"]),
                                                   hidden=16, lstm_layers=1, lookahead=1, dropout=0.0, flow_steps=2,
                                                   flow_hidden=16)}
    torch.manual_seed(0)
    model = build_model(cfg["model"], cfg["model_config"])
    path = Path(tmp_path) / "moglow.ckpt"
    torch.save({"hyper_parameters": {"cfg": cfg}, "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, path)
    return path
