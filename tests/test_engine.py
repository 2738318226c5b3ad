"""The live engine's crowd and control contract: N dancers through one batched graph run (or one run each
when the graph's batch axis is fixed), per-dancer noise / temperature / style / reset, the optional
`style` input, and zero-allocation bookkeeping. Behaviour only (no timings)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transflower.errors import UserError  # noqa: E402

STYLES = ["auto", "style1", "style2"]


@pytest.fixture(scope="module")
def styled_onnx(tmp_path_factory):
    from tiny_model import make_tiny_batched_onnx

    return make_tiny_batched_onnx(tmp_path_factory.mktemp("styled"), styles=3, context=12)


def engine(path, **kw):
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel

    return DanceEngine(OnnxDanceModel(path, provider="cpu", threads=1), **kw)


def rollout(e, frames=25, audio=None):
    audio = e.silence if audio is None else audio
    return np.stack([np.array(e.step(audio)) for _ in range(frames)])


@pytest.fixture(scope="module")
def fixed_onnx(tmp_path_factory):
    from tiny_model import make_tiny_fixed_batch_onnx

    return make_tiny_fixed_batch_onnx(tmp_path_factory.mktemp("fixed"), context=12)


@pytest.mark.parametrize("model", ["batched", "fixed"])
def test_crowd_dancer_i_dances_what_a_lone_dancer_with_seed_plus_i_dances(model, styled_onnx, fixed_onnx):
    path = styled_onnx if model == "batched" else fixed_onnx
    crowd = engine(path, seed=10, dancers=3, temperature=[1.0, 0.5, 1.0])
    assert crowd.batched == (model == "batched") and len(crowd.groups) == (1 if model == "batched" else 3)
    got = rollout(crowd)
    assert got.shape == (25, 3, crowd.motion_dim)
    lone = rollout(engine(path, seed=11, temperature=0.5))
    np.testing.assert_allclose(got[:, 1], lone, atol=1e-4)
    assert np.abs(got[:, 0] - got[:, 2]).max() > 1e-3  # their own noise: different dances


def test_temperature_per_dancer_settable_any_time(styled_onnx):
    crowd = engine(styled_onnx, seed=0, dancers=2)
    crowd.dancers[0].temperature = 0.0
    crowd.dancers[1].temperature = 0.0
    a = rollout(crowd, 10)
    np.testing.assert_allclose(a[:, 0], a[:, 1], atol=1e-5)  # no noise: the same dance from the same state
    crowd.dancers[1].temperature = 1.0  # mid-show
    b = rollout(crowd, 5)
    assert np.abs(b[:, 0] - b[:, 1]).max() > 1e-3 and crowd.dancers[0].temperature == 0.0
    with pytest.raises(UserError, match="temperature"):
        crowd.dancers[1].temperature = 7.0


def test_style_input_blends_linearly_and_changes_the_dance(styled_onnx):
    e = engine(styled_onnx, seed=0, dancers=2, temperature=0.0)
    assert e.styles == STYLES and e.dancers[0].styles == STYLES
    np.testing.assert_array_equal(e.style[:, 0], 1.0)  # starts on "auto"
    base = rollout(e, 3)
    e.dancers[1].set_style("style1", blend_s=0.2)  # 4 frames at 20 fps
    seen = []
    for _ in range(6):
        e.step(e.silence)
        seen.append(e.style[1].copy())
    np.testing.assert_allclose([s[1] for s in seen], [0.25, 0.5, 0.75, 1.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(np.sum(seen, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(e.style[0], [1, 0, 0])  # the other dancer keeps its style
    after = rollout(e, 3)
    assert np.abs(after[:, 1] - after[:, 0]).max() > 1e-3 and base.shape == (3, 2, e.motion_dim)
    e.set_style([0.0, 1.0, 3.0], blend_s=0)  # weights (normalised), every dancer, next step
    e.step(e.silence)
    np.testing.assert_allclose(e.style, [[0, 0.25, 0.75]] * 2, atol=1e-6)
    e.set_style("style2", blend_s=0, strength=2.0)  # exaggerated: 2 on the style, -1 on auto
    e.step(e.silence)
    np.testing.assert_allclose(e.style, [[-1.0, 0.0, 2.0]] * 2, atol=1e-6)
    np.testing.assert_allclose(e.feeds["style"], e.style, atol=0)  # what the graph is given
    with pytest.raises(UserError, match="style strength 5.0: expected a number in 0..4"):
        e.set_style("style2", strength=5.0)
    with pytest.raises(UserError, match=r"unknown.*\['auto', 'style1', 'style2'\]"):
        e.set_style("tango")
    with pytest.raises(UserError, match="3 non-negative weights"):
        e.set_style([1.0, -1.0, 1.0])


def test_a_model_without_style_input_says_so(tiny_onnx):
    e = engine(tiny_onnx, seed=0)
    assert e.styles == [] and e.style is None
    with pytest.raises(UserError, match="this model has no style input"):
        e.set_style("style1")
    assert rollout(e, 3).shape == (3, e.motion_dim)


def test_one_dancer_reset_mid_show_equals_a_fresh_start(styled_onnx):
    """The primed snapshot moved to the shared frame counter (keys re-rotated, slots rolled) must dance
    exactly like a freshly primed lone engine fed the same noise. (The music's energy gate is the music's
    state, not the dancer's, so a reset keeps it: off here, where the test feeds silence.)"""
    crowd = engine(styled_onnx, seed=0, dancers=2, energy=False)
    rollout(crowd, 17)  # any frame, not a multiple of the ring size
    crowd.dancers[1].reset()
    lone = engine(styled_onnx, seed=0, energy=False)
    rng = np.random.default_rng(3)
    for _ in range(15):
        noise = rng.standard_normal((2, crowd.motion_dim)).astype(np.float32)
        a = crowd.step(crowd.silence, noise=noise)
        b = lone.step(lone.silence, noise=noise[1])
        np.testing.assert_allclose(a[1], b, atol=2e-4)


def test_a_bad_sample_resets_only_that_dancer(styled_onnx):
    crowd = engine(styled_onnx, seed=0, dancers=3)
    rollout(crowd, 5)
    audio = np.tile(crowd.silence, (1, 1))
    before = crowd.poses.copy()
    noise = np.zeros((3, crowd.motion_dim), np.float32)
    noise[2] = np.nan  # dancer 2's sample is not finite: it alone restarts from the seed pose
    out = crowd.step(audio[0], noise=noise)
    assert crowd.stats.resets == 1 and np.isfinite(out).all()
    np.testing.assert_allclose(out[2], crowd.seed_motion[-1])
    assert np.abs(out[:2] - before[:2]).max() > 0  # the others danced on
    assert np.isfinite(rollout(crowd, 5)).all()


def test_each_pose_is_grounded_before_it_is_fed_back_unless_told_not_to(styled_onnx):
    """transflower.floor.Grounding in the loop: the pose the engine returns (and feeds back as the next
    step's input) is the corrected one, dancer by dancer; ground=False leaves the sampled height alone.
    (The energy gate, off here, changes only what is shown: tests/test_music_following.py.)"""
    e = engine(styled_onnx, seed=4, dancers=2, temperature=0.5, energy=False)
    g = e.ground
    assert g is not None and g.floor.shape == (2,)
    moved = 0.0
    for _ in range(30):
        poses = e.step(e.silence).copy()
        np.testing.assert_allclose(g.history[:, g.head], g.lowest(poses), atol=1e-3)  # its state follows what is sent
        moved += float(np.abs(g.shift).sum())
    assert moved > 0.0 and g.moved_cm == pytest.approx(moved)
    e.step(e.silence)
    np.testing.assert_allclose(e.motion[:, 3], poses[:, 3], atol=0)  # what was fed back: the grounded heights
    plain = engine(styled_onnx, seed=4, dancers=2, temperature=0.5, ground=False, energy=False)
    assert plain.ground is None
    a, b = rollout(engine(styled_onnx, seed=4, dancers=2, temperature=0.5, energy=False), 30), rollout(plain, 30)
    assert np.abs(a[..., 3] - b[..., 3]).max() > 1e-3


def _ar1(seed, D, frames, temperature, rho):
    """The noise an engine seeded `seed` should feed: z_0 = e_0, z_t = rho z_{t-1} + sqrt(1 - rho^2) e_t."""
    rng = np.random.default_rng(seed)
    out, z = [], None
    for _ in range(frames):
        e = rng.standard_normal(D, dtype=np.float32)
        z = e if z is None else np.float32(rho) * z + np.float32(np.sqrt(1 - rho * rho)) * e
        out.append(z * np.float32(temperature))
    return np.array(out)


def test_noise_correlation_makes_the_noise_an_ar1_process_and_zero_keeps_the_old_stream(styled_onnx):
    for rho in (0.0, 0.8):
        e = engine(styled_onnx, seed=5, temperature=0.7, noise_correlation=rho)
        fed = []
        for _ in range(40):
            e.step(e.silence)
            fed.append(e.noise[0].copy())
        assert e.stats.resampled == 0
        np.testing.assert_allclose(np.array(fed), _ar1(5, e.motion_dim, 40, 0.7, rho), atol=1e-5)
    # the statistics: each draw N(0, T^2), consecutive draws correlated rho
    e = engine(styled_onnx, seed=6, temperature=1.0, noise_correlation=0.8, ground=False)
    fed = []
    for _ in range(400):
        e.step(e.silence)
        fed.append(e.noise[0].copy())
    z = np.array(fed)
    assert abs(z.std() - 1.0) < 0.1
    lag1 = np.mean([np.corrcoef(z[1:, d], z[:-1, d])[0, 1] for d in range(z.shape[1])])
    assert abs(lag1 - 0.8) < 0.05
    with pytest.raises(UserError, match="noise correlation"):
        engine(styled_onnx, noise_correlation=1.0)


def test_a_style_preset_sets_its_noise_correlation_blended_with_the_style_and_a_reset_starts_afresh(styled_onnx):
    e = engine(styled_onnx, seed=7, dancers=2, temperature=0.5, noise_correlation=0.2)
    e.presets = {"style1": {"strength": 1.0, "temperature": 1.0, "correlation": 0.8, "traction": 0.4}}
    e.set_style("style1", blend_s=4 / e.fps, dancer=1)  # 4 frames
    seen, trac = [], []
    for _ in range(5):
        e.step(e.silence)
        seen.append(e.correlation[:, 0].copy())
        trac.append(e.ground.traction.copy())
    np.testing.assert_allclose(np.array(seen)[:, 1], [0.35, 0.5, 0.65, 0.8, 0.8], atol=1e-6)
    np.testing.assert_allclose(np.array(seen)[:, 0], 0.2, atol=1e-7)  # dancer 0 still auto: the base
    np.testing.assert_allclose(np.array(trac), [[0, 0.1], [0, 0.2], [0, 0.3], [0, 0.4], [0, 0.4]], atol=1e-9)
    e.set_style("auto", blend_s=0.0, dancer=1)
    e.step(e.silence)
    assert e.correlation[1, 0] == pytest.approx(0.2) and e.ground.traction[1] == 0.0
    # after a reset a dancer's first draw is e itself (no state carried over from before it)
    rng_state = [r.bit_generator.state for r in e.rngs]
    e.dancers[1].reset()
    e.step(e.silence)
    e1 = np.random.default_rng()
    e1.bit_generator.state = rng_state[1]
    np.testing.assert_allclose(e.noise[1], e1.standard_normal(e.motion_dim, dtype=np.float32) * 0.5, atol=1e-6)


def test_a_performers_noise_correlation_blends_in_holds_across_style_switches_and_none_returns_to_the_presets(styled_onnx):
    e = engine(styled_onnx, seed=8, dancers=2, temperature=0.5, noise_correlation=0.2)
    e.presets = {"style1": {"strength": 1.0, "temperature": 1.0, "correlation": 0.8}}
    e.set_style("style1", blend_s=0.0, dancer=1)
    e.step(e.silence)
    assert list(e.correlation[:, 0]) == pytest.approx([0.2, 0.8])
    e.set_noise_correlation(0.6, blend_s=2 / e.fps)  # 2 frames, every dancer
    seen = []
    for _ in range(3):
        e.step(e.silence)
        seen.append(e.correlation[:, 0].copy())
    np.testing.assert_allclose(seen, [[0.4, 0.7], [0.6, 0.6], [0.6, 0.6]], atol=1e-6)
    np.testing.assert_allclose(e._corr_keep[:, 0], np.sqrt(1 - 0.36), atol=1e-6)  # the draw's weights follow
    e.set_style("auto", blend_s=0.0, dancer=1)  # a switch keeps the performer's value
    e.set_style("style1", blend_s=0.0, dancer=0)
    e.step(e.silence)
    assert list(e.correlation[:, 0]) == pytest.approx([0.6, 0.6])
    e.set_noise_correlation(None, blend_s=0.0)  # back to what the styles ask for: style1's 0.8, auto's base 0.2
    e.step(e.silence)
    assert list(e.correlation[:, 0]) == pytest.approx([0.8, 0.2])
    assert e.stats.resets == 0
    with pytest.raises(UserError, match="noise correlation"):
        e.set_noise_correlation(0.99)


def test_the_warm_start_hears_music_by_default_and_the_row_it_is_given(styled_onnx):
    """Primed on silence a dancer starts calm and keeps that pace: the warm start hears the training music's
    mean feature row (live), or the song's first row when the caller has the song (generate, benchmarks)."""
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel

    model = OnnxDanceModel(styled_onnx, provider="cpu", threads=1)
    e = DanceEngine(model, seed=0)
    np.testing.assert_array_equal(e.prime_row, np.asarray(model.meta["audio_scaler"]["mean"], np.float32))
    loud = np.full(e.audio_dim, 3.0, np.float32)
    a = DanceEngine(model, seed=0, prime_audio=loud).step(e.silence).copy()
    b = DanceEngine(model, seed=0, prime_audio=e.silence).step(e.silence).copy()
    assert np.abs(a - b).max() > 1e-4  # the primed cache differs, so does the first pose
    with pytest.raises(UserError, match="prime_audio"):
        DanceEngine(model, seed=0, prime_audio=np.zeros(3, np.float32))
