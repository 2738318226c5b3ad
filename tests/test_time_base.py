"""The beat-matched time base (transflower.realtime.time_base): the tempo reading on pulse trains of known
tempo, the fold that makes the metrical level irrelevant, the rate against a style's tempo and against the
tempo the music settled on, the model clock's bookkeeping, and the engine on that clock."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transflower.audio_features import AudioFeatureConfig  # noqa: E402
from transflower.errors import UserError  # noqa: E402
from transflower.realtime.time_base import (ModelClock, TempoReading, TimeBase, TimeBaseConfig, fold,  # noqa: E402
                                            reference_tempo)

FPS = 20.0
CFG = AudioFeatureConfig()
ONSET, TEMPO = CFG.names.index("onset"), CFG.names.index("tempo")


def pulses(bpm, seconds, fps=FPS, start_s=0.0, accent_every=0):
    """An onset envelope of a beat at `bpm` (sharp peaks between frames; every `accent_every`th beat louder)."""
    t = np.arange(int(seconds * fps)) / fps + start_s
    phase = t * bpm / 60.0
    env = np.maximum(np.cos(2 * np.pi * phase), 0.0) ** 16
    if accent_every:
        env *= 1.0 + (np.floor(phase + 0.5) % accent_every == 0)
    return env


def rows(onset):
    r = np.zeros((len(onset), len(CFG.names)), np.float32)
    r[:, ONSET] = onset
    return r


def read(onset, config=None):
    reading, out = TempoReading(FPS, config or TimeBaseConfig()), []
    for x in onset:
        b = reading.update(x)
        if b is not None:
            out.append(b)
    return np.array(out)


def folded_ratio(a, b):
    return 2.0 ** abs(fold(np.log2(a / b)))


def test_fold():
    assert fold(0.0) == 0.0 and fold(1.0) == 0.0 and fold(-2.0) == 0.0
    assert fold(0.25) == pytest.approx(0.25) and fold(1.25) == pytest.approx(0.25) and fold(-0.75) == pytest.approx(0.25)
    assert -0.5 <= fold(0.5) < 0.5 and -0.5 <= fold(-0.5) < 0.5


@pytest.mark.parametrize("bpm", [84.0, 118.0, 126.0, 141.0])
def test_reading_finds_the_tempo_finer_than_a_frame(bpm):
    """At 20 fps a beat period is 8.5-14 frames; 118 and 126 BPM must still read apart (the model's own
    `tempo` feature reads them alike), up to the metrical level."""
    got = read(pulses(bpm, 20.0))
    assert len(got) > 10
    assert folded_ratio(np.median(got[-10:]), bpm) < 1.02


def test_reading_waits_for_music_and_is_silent_in_silence():
    reading = TempoReading(FPS, TimeBaseConfig())
    assert all(reading.update(0.0) is None for _ in range(400))  # silence: nothing to read
    fresh = TempoReading(FPS, TimeBaseConfig())
    first = [i for i, x in enumerate(pulses(120.0, 10.0)) if fresh.update(x) is not None]
    assert first and first[0] + 1 >= TimeBaseConfig().settle_s * FPS


def test_config_without_lags_is_a_clear_error():
    with pytest.raises(UserError, match="BPM"):
        TempoReading(FPS, TimeBaseConfig(min_bpm=200.0, max_bpm=210.0))


def drive(tb, onset):
    rates = []
    for r in rows(onset):
        tb.due(r)
        rates.append(tb.rate)
    return np.array(rates)


def test_rate_is_the_tempo_over_the_style_tempo_whatever_the_level():
    """A style at 100 BPM: music at 125 gives rate 1.25, and so does music read an octave off (62.5: its
    half-time level), since only the tempo's class on the octave counts."""
    for bpm in (125.0, 62.5, 80.0):
        tb = TimeBase(FPS, CFG.to_dict(), 1, 8)
        tb.set_reference(100.0)
        rates = drive(tb, pulses(bpm, 20.0))
        want = 2.0 ** fold(np.log2(bpm / 100.0))
        assert rates[: int(TimeBaseConfig().settle_s * FPS) - 1].max() == 1.0  # no reading yet: the model's own clock
        assert rates[-1] == pytest.approx(want, rel=0.03), bpm


def test_rate_without_a_style_follows_changes_from_the_settled_tempo():
    """Auto: a constant tempo is danced at rate 1; a DJ's +10 % is followed."""
    tb = TimeBase(FPS, CFG.to_dict(), 1, 8)
    onset = np.concatenate([pulses(120.0, 15.0), pulses(132.0, 20.0, start_s=15.0)])
    rates = drive(tb, onset)
    assert rates[int(14 * FPS)] == pytest.approx(1.0, abs=0.02)
    assert rates[-1] == pytest.approx(1.10, rel=0.03)


def test_auto_does_not_take_a_jump_for_a_tempo_change():
    """Auto: the reading jumping by 3/2 (a level flip, or a cut to other music: one reading cannot tell
    which) leaves the rate where it was; the tempo followed from there on."""
    tb = TimeBase(FPS, CFG.to_dict(), 1, 8)
    onset = np.concatenate([pulses(80.0, 15.0), pulses(120.0, 15.0, start_s=15.0), pulses(120.0 * 1.08, 15.0, start_s=30.0)])
    rates = drive(tb, onset)
    assert np.abs(rates[: int(30 * FPS)] - 1.0).max() < 0.01
    assert rates[-1] == pytest.approx(1.08, rel=0.02)


def test_rate_holds_through_a_break_and_a_level_flip_moves_nothing():
    tb = TimeBase(FPS, CFG.to_dict(), 1, 8)
    tb.set_reference(100.0)
    onset = np.concatenate([pulses(110.0, 15.0), np.zeros(int(10 * FPS)),
                            pulses(110.0, 10.0, start_s=25.0, accent_every=2)])  # the accents invite the half-time level
    rates = drive(tb, onset)
    settled = rates[int(14 * FPS)]
    assert settled == pytest.approx(1.10, rel=0.03)
    assert np.abs(rates[int(15 * FPS):] - settled).max() < 0.04


def test_style_reference_is_checked_and_auto_returns_to_relative():
    tb = TimeBase(FPS, CFG.to_dict(), 1, 8)
    for bad in (0.0, -5.0, float("nan"), 1000.0):
        with pytest.raises(UserError, match="reference tempo"):
            tb.set_reference(bad)
    tb.set_reference(100.0)
    drive(tb, pulses(125.0, 15.0))
    assert tb.rate == pytest.approx(1.25, rel=0.03)
    tb.set_reference(None)  # back to auto: the music as it is now is the reference
    assert tb.rate == pytest.approx(1.0, abs=0.01)


def test_reference_tempo_of_songs_that_agree_and_of_songs_that_do_not():
    ref = lambda onsets: reference_tempo([rows(o) for o in onsets], FPS, CFG.to_dict())  # noqa: E731
    bpm, agreement = ref([pulses(100.0, 20.0), pulses(200.0, 20.0), pulses(98.0, 20.0)])
    assert agreement > 0.9 and folded_ratio(bpm, 99.0) < 1.02 and 60.0 <= bpm < 120.0
    bpm, agreement = ref([pulses(100.0, 20.0), pulses(141.0, 20.0)])  # half an octave apart
    assert bpm is None and agreement < 0.7
    assert ref([np.zeros(400)]) == (None, 0.0)


@pytest.mark.parametrize("bpm", [100.0, 124.0, 140.0])
def test_the_demo_track_reads_at_its_tempo(bpm):
    """The project's own track (a drum kit with busy hats, bass, pads): at 20 rows a second its onset column
    alone reads 140 BPM as 93 (2/3 of it) for the first 15 s; with the low bands' rise (the kick) the
    smoothed tempo of every track is in its beat's class throughout."""
    from transflower.audio_features import compute_audio_features
    from transflower.realtime.demo_track import synthesize_demo_track

    y = synthesize_demo_track(34.0, 24000, bpm=bpm)
    feats = compute_audio_features((y.mean(1) if y.ndim == 2 else y).astype(np.float32), 24000, CFG)
    tb = TimeBase(FPS, CFG.to_dict(), 1, 8)
    got = []
    for x in feats:
        tb.listen(x)
        if tb.tempo is not None:
            got.append(tb.tempo)  # the smoothed tempo: what moves the clock
    got = np.array(got)
    right = np.array([folded_ratio(b, bpm) < 1.03 for b in got])
    assert len(got) > 400 and right.mean() > 0.95, np.round(got[~right][::20], 1)


def test_auto_takes_its_reference_only_once_the_reading_has_settled():
    """The demo track at 140 BPM reads scattered for its first seconds: a reference taken then (a level read
    wrong, or a mix of two) would play the whole song off its tempo; auto waits and dances it at rate 1."""
    from transflower.audio_features import compute_audio_features
    from transflower.realtime.demo_track import synthesize_demo_track

    y = synthesize_demo_track(34.0, 24000, bpm=140.0)
    feats = compute_audio_features((y.mean(1) if y.ndim == 2 else y).astype(np.float32), 24000, CFG)
    tb = TimeBase(FPS, CFG.to_dict(), 1, 8)
    agreement, rates = [], []
    for x in feats:
        tb.listen(x)
        agreement.append(tb.agreement)
        rates.append(tb.rate)
    assert min(agreement[int(6 * FPS):int(9 * FPS)]) < TimeBaseConfig().settled_agreement  # scattered at first
    assert np.abs(np.array(rates) - 1.0).max() < 0.03


def test_model_clock_counts_and_interpolates():
    for rate in (0.73, 1.0, 1.37):
        clock, n = ModelClock(2, 5), 200
        for _ in range(n):
            for _ in range(clock.due(rate)):
                clock.push(np.full((2, 5), float(clock.computed), np.float32))
        assert abs(clock.computed - (1 + rate * (n - 1))) <= 2
        out = clock.output(np.zeros((2, 5), np.float32))
        # the pose between the two newest model frames, at model time m; its per-frame motion (3 dims) x the rate
        assert out[0, 3] == pytest.approx(clock.m, abs=1e-4)
        assert out[0, 0] == pytest.approx(clock.m * rate, abs=1e-4)
    clock = ModelClock(1, 4, max_due=2)
    clock.due(1.0)
    clock.push(np.zeros((1, 4), np.float32))
    assert clock.due(5.0) == 2  # never more than max_due steps in one frame: model time waits


@pytest.fixture(scope="module")
def styled_onnx(tmp_path_factory):
    from tiny_model import make_tiny_batched_onnx

    return make_tiny_batched_onnx(tmp_path_factory.mktemp("tb"), styles=3, context=12)


def engine(path, **kw):
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel

    return DanceEngine(OnnxDanceModel(path, provider="cpu", threads=1), **kw)


def test_engine_on_the_clock_is_the_engine_at_rate_one(styled_onnx):
    """No beat to read (silence): the clock runs at rate 1 and the dance is the same dance, frame for frame."""
    a, b = engine(styled_onnx, seed=3, time_base=TimeBaseConfig(count_in_s=0.0)), engine(styled_onnx, seed=3)
    for _ in range(60):
        np.testing.assert_allclose(a.step(a.silence), b.step(b.silence), rtol=0, atol=1e-6)
    assert a.frame == b.frame


def test_engine_steps_the_model_at_the_rate(styled_onnx):
    e = engine(styled_onnx, seed=1, time_base=TimeBaseConfig(count_in_s=0.0), dancers=2)
    e.style_tempos = {"style1": 100.0}
    e.set_style("style1", blend_s=0.0)
    assert e.time_base.style_bpm == 100.0
    start = e.frame
    onset = pulses(125.0, 30.0)
    r = np.tile(e.silence, (len(onset), 1))
    r[:, e.time_base.onset_index] = onset
    out = np.stack([np.array(e.step(row)) for row in r])
    assert out.shape == (len(onset), 2, e.motion_dim) and np.isfinite(out).all()
    assert e.time_base.rate == pytest.approx(1.25, rel=0.03)
    settle = int((TimeBaseConfig().settle_s + 3) * FPS)
    # the model frames: about 1 per output frame until the reading settles, then 1.25
    assert e.frame - start == pytest.approx(settle + 1.25 * (len(onset) - settle), rel=0.06)
    # the model hears the tempo on its own clock
    assert e.time_base.row[e.time_base.tempo_index] == pytest.approx(r[-1, e.time_base.tempo_index] - np.log2(e.time_base.rate))
    e.set_style("auto")
    assert e.time_base.style_bpm is None


def music_rows(e, bpm, seconds, level_db=-20.0):
    r = np.tile(e.silence, (int(seconds * FPS), 1))
    r[:, e.time_base.onset_index] = pulses(bpm, seconds)
    r[:, e.time_base.level_index] = level_db
    return r


def test_count_in_counts_music_beats_at_the_rate():
    """The count-in ends once the rate is read and count_in_s / rate of music has played (the same beats at any
    tempo); silence does not count; max_count_in_s of music ends it whatever the reading says."""
    c = TimeBaseConfig()
    for bpm in (80.0, 100.0, 125.0):
        tb = TimeBase(FPS, CFG.to_dict(), 1, 4)
        tb.set_reference(100.0)
        r = rows(np.concatenate([np.zeros(int(3 * FPS)), pulses(bpm, 20.0)]))
        r[:, tb.level_index] = np.where(np.arange(len(r)) < 3 * FPS, -100.0, -20.0)  # 3 s of silence first
        started = None
        for t, row in enumerate(r):
            n = tb.due(row)
            if tb.counting_in:
                assert n == 1  # the listening dance, on the model's own clock
            if tb.started_now:
                started = t
                break
        assert started is not None and tb.rate == pytest.approx(bpm / 100.0, rel=0.03)
        heard = started / FPS - 3.0
        assert c.count_in_s / tb.rate - 0.1 <= heard <= c.count_in_s / tb.rate + 2.5
    tb = TimeBase(FPS, CFG.to_dict(), 1, 4)  # no beat to read: it starts after max_count_in_s of music
    tb.set_reference(100.0)
    r = np.zeros((int(20 * FPS), len(CFG.names)), np.float32)
    r[:, tb.level_index] = -20.0
    starts = [t for t, row in enumerate(r) if (tb.due(row), tb.started_now)[1]]
    assert starts == [int(c.max_count_in_s * FPS) - 1] and tb.rate == 1.0
    tb = TimeBase(FPS, CFG.to_dict(), 1, 4, TimeBaseConfig(count_in_s=0.0))  # off: the dance is on at once
    tb.set_reference(100.0)
    tb.due(r[0])
    assert not tb.counting_in
    tb = TimeBase(FPS, CFG.to_dict(), 1, 4)  # no style tempo (auto, a rumba): rate 1 at any tempo, no count-in
    tb.due(r[0])
    assert not tb.counting_in and not tb.started_now and tb.listened_frames == 0
    tb = TimeBase(FPS, CFG.to_dict(), 1, 4)  # ... and a count-in ends when the style is set to one without a tempo
    tb.set_reference(100.0)
    tb.due(r[0])
    assert tb.counting_in
    tb.set_reference(None)
    tb.due(r[1])
    assert tb.started_now and not tb.counting_in


def test_count_in_sways_calmly_then_starts_the_dance_afresh(styled_onnx):
    """While it listens the dancer sways (its dance about the mean pose at the break's size); on the count the
    dance starts from the warm start with the noise it had at the start: the model's first frame is a fresh
    engine's first frame, whatever was danced while listening; the pose shown grows from the sway into the dance
    over 2 s of the model's clock, without a pop."""
    from transflower.energy import EnergyConfig

    a = engine(styled_onnx, seed=3, time_base=True)
    a.style_tempos = {"style1": 100.0}
    a.set_style("style1", blend_s=0.0)
    mean, g = a.m_mean[4:], EnergyConfig().break_gain
    start, before = None, None
    for t, row in enumerate(music_rows(a, 125.0, 14.0)):
        shown = np.array(a.step(row))
        if a.time_base.started_now:
            start = t
            # no pop: the pose shown moves from the last sway pose towards the dance's, eased
            step_rot = np.abs(shown[4:] - before[4:]).max()
            assert step_rot < 0.05 * np.abs(a.poses[0, 4:] - before[4:]).max()
            b = engine(styled_onnx, seed=3)  # the same style's warm start, no time base
            b.set_style("style1", blend_s=0.0)
            b.reset()
            b.step(a.time_base.row)
            np.testing.assert_allclose(a.poses, b.poses, rtol=0, atol=1e-5)
            continue
        if start is not None and a._fade_at is None:  # the fade lasts 2 s of the model's clock: 1.6 s at rate 1.25
            assert (t - start) == pytest.approx(2.0 * FPS / a.time_base.rate, abs=1.5)
            break
        if a.time_base.counting_in and t > 0:
            np.testing.assert_allclose(shown[4:] - mean, g * (a.poses[0, 4:] - mean), rtol=0, atol=1e-4)
        before = shown
    assert start is not None and 5.0 * FPS <= start <= 10.0 * FPS and a._fade_at is None


def test_live_on_the_clock_streams_and_reports_it(tiny_onnx, receiver, tmp_path):
    """`live --time-base` on the demo track: the stream goes out as ever, and the summary says the clock's rate
    (the tiny model has no styles: relative to the tempo the music settled on, so about 1 on a steady track)."""
    import json

    from transflower.cli import main

    out = tmp_path / "summary.json"
    rc = main(["live", "--model", str(tiny_onnx), "--demo", "--duration", "10", "--osc", f"127.0.0.1:{receiver.port}",
               "--summary-json", str(out), "--seed", "1", "--time-base", "--fps", "20"])
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["frames"] > 150 and s["engine_resets"] == 0
    tb = s["time_base"]
    assert tb["style_bpm"] is None and tb["rate"] == pytest.approx(1.0, abs=0.05)
    assert tb["count_in_s"] == 0.0  # no style tempo: no count-in (the rate starts at 1 at any tempo)
    assert tb["model_steps"] >= s["frames"] * 0.9
    receiver.wait_for(frames=50, timeout=2.0)
    assert receiver.frames >= 50


def test_count_in_option_checks_its_value():
    from transflower.realtime.time_base import time_base_option

    assert time_base_option(False) is False
    assert time_base_option(True) == TimeBaseConfig()
    assert time_base_option(True, 0.0).count_in_s == 0.0
    assert time_base_option(True, 10.0).max_count_in_s == 20.0  # room for the slowest tempo it folds to (x0.71)
    with pytest.raises(UserError, match="--count-in: only with --time-base"):
        time_base_option(False, 7.0)
    for bad in (-1.0, float("nan"), 100.0):
        with pytest.raises(UserError, match="--count-in"):
            time_base_option(True, bad)
