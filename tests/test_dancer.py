"""transflower.realtime.dancer.Dancer, through its public API only: audio blocks in, poses out, optional VMC stream."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from transflower.realtime.dancer import Dancer
from transflower.realtime.demo_track import synthesize_demo_track
from transflower.errors import UserError

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="module")
def song():
    return synthesize_demo_track(4.0, 48000, 120.0, seed=3, loopable=False)


def push_in_blocks(dancer, audio, rate, block):
    poses = []
    for s in range(0, len(audio), block):
        poses += dancer.push_audio(audio[s:s + block], rate)
    return poses


def test_one_pose_per_frame_of_audio(tiny_onnx, song):
    d = Dancer(tiny_onnx, seed=1)
    poses = push_in_blocks(d, song[:48000], 48000, 480)
    # 1 s at 20 fps; the resampler holds back a few samples (its filter delay), so the 20th may wait
    assert 19 <= len(poses) <= 20
    J = len(d.joint_names)
    assert [p.frame_index for p in poses] == list(range(len(poses)))  # from 0
    for p in poses:
        assert p.root_position.shape == (3,) and p.local_rotations.shape == (J, 4)
        assert np.all(np.isfinite(p.root_position))
        assert np.allclose(np.linalg.norm(p.local_rotations, axis=1), 1.0, atol=1e-6)
        assert p.time == pytest.approx((p.frame_index - d.lookahead) / d.fps)  # the music time: a lead-in first
    assert poses[0].time < 0 and poses[d.lookahead].time == 0.0
    assert d.latency_s == pytest.approx((1 + d.lookahead) / d.fps)
    # the caller owns the arrays: the next frames do not overwrite them
    kept = poses[-1].local_rotations.copy()
    d.push_audio(song[48000:96000], 48000)
    assert np.array_equal(poses[-1].local_rotations, kept)


def test_block_size_does_not_change_the_dance(tiny_onnx, song):
    a = push_in_blocks(Dancer(tiny_onnx, seed=7), song[:72000], 48000, 333)
    b = push_in_blocks(Dancer(tiny_onnx, seed=7), song[:72000], 48000, 72000)
    assert len(a) == len(b) > 20
    for p, q in zip(a, b):
        assert p.frame_index == q.frame_index
        assert np.allclose(p.root_position, q.root_position, atol=1e-4)
        assert np.allclose(p.local_rotations, q.local_rotations, atol=1e-5)


def test_seed_reproducible_and_temperature_matters(tiny_onnx, song):
    one = push_in_blocks(Dancer(tiny_onnx, seed=2), song[:48000], 48000, 4800)
    again = push_in_blocks(Dancer(tiny_onnx, seed=2), song[:48000], 48000, 4800)
    other = push_in_blocks(Dancer(tiny_onnx, seed=3), song[:48000], 48000, 4800)
    calm = push_in_blocks(Dancer(tiny_onnx, seed=2, temperature=0.0), song[:48000], 48000, 4800)
    rots = lambda ps: np.stack([p.local_rotations for p in ps])  # noqa: E731
    assert np.array_equal(rots(one), rots(again))
    assert not np.allclose(rots(one), rots(other))
    assert not np.allclose(rots(one), rots(calm))


def test_stereo_integer_and_other_rates(tiny_onnx, song):
    d = Dancer(tiny_onnx, seed=0)
    stereo16 = (np.stack([song[:44100], song[:44100]], axis=1) * 32000).astype(np.int16)
    poses = d.push_audio(stereo16, 44100)  # read as 1 s (the rate given), whatever it sounds like
    assert 19 <= len(poses) <= 20
    poses += d.push_audio(np.zeros(24000, np.float32), 24000)  # the host may change rate mid-stream
    assert 38 <= len(poses) <= 40
    assert [p.frame_index for p in poses] == list(range(poses[0].frame_index, poses[0].frame_index + len(poses)))


def test_reset_starts_the_song_over(tiny_onnx, song):
    d = Dancer(tiny_onnx, seed=5)
    first = push_in_blocks(d, song[:24000], 48000, 1200)
    d.reset()
    second = push_in_blocks(d, song[:24000], 48000, 1200)
    assert [p.frame_index for p in first] == [p.frame_index for p in second]
    assert second[0].frame_index == 0


@pytest.mark.parametrize("block, rate, words", [
    (np.zeros((10, 2, 2)), 48000, "shape"),
    (np.full(100, np.nan, np.float32), 48000, "non-finite"),
    (np.zeros(100, np.float32), 0, "sample_rate"),
    (np.zeros(100, np.float32), "48000", "sample_rate"),
])
def test_bad_audio_is_a_user_error(tiny_onnx, block, rate, words):
    d = Dancer(tiny_onnx)
    with pytest.raises(UserError, match=words):
        d.push_audio(block, rate)


def test_bad_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        Dancer(tmp_path / "missing.onnx")
    with pytest.raises(UserError, match="temperature"):
        Dancer(temperature=9.0)


def test_stream_vmc_sends_every_pose_then_the_rest_pose(tiny_onnx, song, receiver):
    with Dancer(tiny_onnx, seed=1).stream_vmc(f"127.0.0.1:{receiver.port}") as d:
        poses = push_in_blocks(d, song[:48000], 48000, 960)
        assert receiver.wait_for(frames=len(poses), timeout=2.0)
    assert receiver.wait_for(frames=len(poses) + 1, timeout=2.0)  # + the rest pose on close
    f = receiver.latest()
    assert receiver.malformed == 0 and receiver.rejected == 0
    assert "Hips" in f.bones and "LeftUpperArm" in f.bones and f.ok == 1  # static bones are left out by default


def test_shipped_model_dances():
    d = Dancer(seed=0)  # the model that ships in the package
    poses = d.push_audio(synthesize_demo_track(2.0, 48000, 120.0, seed=1, loopable=False), 48000)
    assert 39 <= len(poses) <= 40
    heights = np.array([p.root_position[1] for p in poses])
    assert np.all(np.isfinite(heights)) and heights.min() > 0  # standing, not sunk through the floor


@pytest.fixture(scope="module")
def style_model(tmp_path_factory):
    from tiny_model import make_tiny_onnx

    return make_tiny_onnx(tmp_path_factory.mktemp("dancer_styles"), context=16, lookahead=1, styles=3)


def test_styles_of_a_style_conditioned_model(style_model, song):
    d = Dancer(style_model, seed=1, style="style1")
    assert d.styles == ["auto", "style1", "style2"]
    assert 19 <= len(push_in_blocks(d, song[:48000], 48000, 4800)) <= 20
    d.set_style([0.0, 1.0, 1.0])  # a blend
    d.set_style("auto")
    with pytest.raises(UserError, match="salsa"):
        d.set_style("salsa")
    with pytest.raises(UserError, match="weights"):
        d.set_style([1.0, -1.0, 0.0])


def test_style_on_a_model_without_styles_is_a_user_error(tiny_onnx):
    d = Dancer(tiny_onnx)
    assert d.styles == []
    with pytest.raises(UserError, match="no style input"):
        d.set_style("auto")


def test_a_break_in_the_music_calms_the_dancer_and_energy_false_dances_through(tiny_onnx, song):
    """The energy gate through the library: the same seed and music, silence for the second half."""
    audio = np.concatenate([song[:96000], np.zeros((144000,) + song.shape[1:], song.dtype)])

    def motion(energy):
        poses = push_in_blocks(Dancer(tiny_onnx, seed=5, energy=energy), audio, 48000, 4800)
        rots = np.stack([p.local_rotations for p in poses])
        step = np.abs(np.diff(rots, axis=0)).mean(axis=(1, 2))  # how much the joints move a frame
        return step, poses

    calm, poses = motion(True)
    full, _ = motion(False)
    i = next(k for k, p in enumerate(poses) if p.time >= 3.5)  # 1.5 s into the silence
    assert calm[:30].mean() == pytest.approx(full[:30].mean(), rel=0.35)  # music: about the same size
    assert calm[i:].mean() < 0.5 * full[i:].mean() and calm[i:].mean() > 0  # silence: a sway, not a freeze


class FakeClock:
    """Time that moves only when the dancer sleeps (or the test says so): pacing without wall-time asserts."""

    def __init__(self):
        self.t, self.sleeps = 1000.0, []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def paced_dancer(model, clock, **stream):
    d = Dancer(model, seed=1).stream_vmc("127.0.0.1:9", **stream)  # port 9 (discard): nobody needs to listen
    d._clock, d._sleep = clock, clock.sleep
    sent = []
    send = d.sender.send
    d.sender.send = lambda poses: (sent.append((poses[0].frame_index, clock())), send(poses))
    return d, sent


def test_stream_vmc_sends_in_real_time_however_fast_audio_is_pushed(tiny_onnx, song):
    clock = FakeClock()
    d, sent = paced_dancer(tiny_onnx, clock)
    poses = d.push_audio(song[:96000], 48000)  # 2 s of music in one block: computed at once
    assert len(poses) >= 39 and [i for i, _ in sent] == [p.frame_index for p in poses]
    times = np.array([t for _, t in sent]) - sent[0][1]
    assert np.allclose(times, np.arange(len(sent)) / d.fps)  # one pose per 1 / fps: the music's speed, not 10x
    # the host stalls for 2 s, then pushes the rest: no burst to catch up, the pace goes on from the late pose
    clock.t += 2.0
    n = len(sent)
    d.push_audio(song[96000:144000], 48000)
    after = np.array([t for _, t in sent[n:]])
    assert after[0] == pytest.approx(times[-1] + sent[0][1] + 2.0, abs=1e-6)
    assert np.allclose(np.diff(after), 1 / d.fps)
    d.reset()  # a new song: its own pace from its first pose
    d.push_audio(song[:4800], 48000)
    assert sent[-1][1] == pytest.approx(clock.t)
    d.close()


def test_stream_vmc_realtime_false_sends_at_once_for_offline_rendering(tiny_onnx, song):
    clock = FakeClock()
    d, sent = paced_dancer(tiny_onnx, clock, realtime=False)
    d.push_audio(song[:96000], 48000)
    assert len(sent) >= 39 and clock.sleeps == [] and {t for _, t in sent} == {1000.0}
    d.close()
    plain = Dancer(tiny_onnx, seed=1)  # not streaming: push_audio never waits
    plain._clock, plain._sleep = clock, clock.sleep
    assert len(plain.push_audio(song[:96000], 48000)) >= 39 and clock.sleeps == []


def test_stream_vmc_pacing_on_the_real_clock_takes_at_least_the_music_s_duration(tiny_onnx, song, receiver):
    import time

    with Dancer(tiny_onnx, seed=1).stream_vmc(f"127.0.0.1:{receiver.port}") as d:
        t0 = time.monotonic()
        poses = d.push_audio(song[:24000], 48000)  # 0.5 s of music
        took = time.monotonic() - t0
    # sleeping can only take longer than asked: a lower bound holds on a loaded machine too
    assert took >= (len(poses) - 1) / d.fps - 1e-3
    assert receiver.wait_for(frames=len(poses), timeout=2.0)
