"""Per-style presets and seed clips: validated, carried by the export, applied by the engine (strength and
temperature blended with the style), and `start_style` / `generate --style` warm-start on the style's clip."""
import json

import numpy as np
import pytest

from transflower.errors import UserError
from transflower.styles import check_presets, load_presets, preset_of, style_weights

STYLES = ["auto", "style1", "style2"]
onnxruntime = pytest.importorskip("onnxruntime")


def test_presets_are_validated_with_the_style_and_field_named(tmp_path):
    assert check_presets(None, STYLES) == {}
    assert check_presets({"style1": {"strength": "1.5", "temperature": 0.5}}, STYLES) == \
        {"style1": {"strength": 1.5, "temperature": 0.5}}
    assert preset_of({"style1": {"temperature": 0.5}}, "style1") == (1.0, 0.5)
    assert preset_of({"style1": {"temperature": 0.5}}, "style2") == (1.0, 1.0) == preset_of({}, "auto")
    for bad, msg in [({"tango": {"strength": 2}}, "style 'tango': expected one of"),
                     ({"auto": {"strength": 2}}, "style 'auto'"),
                     ({"style1": {"speed": 2}}, r"style1.speed: unknown"),
                     ({"style1": {"strength": 9}}, r"style1.strength 9: expected a multiplier in 0..4"),
                     ({"style1": {"temperature": 0}}, r"style1.temperature 0: expected a multiplier"),
                     ({"style1": {"temperature": "hot"}}, r"style1.temperature 'hot'"),
                     ({"style1": 2}, "style1: expected"), (["style1"], "expected a mapping")]:
        with pytest.raises(UserError, match=msg):
            check_presets(bad, STYLES)
    p = tmp_path / "presets.yaml"
    p.write_text("style2: {strength: 1.5, temperature: 0.67}\n")
    assert load_presets(p, STYLES) == {"style2": {"strength": 1.5, "temperature": 0.67}}
    p.write_text("style2: [unclosed\n")
    with pytest.raises(UserError, match="presets.yaml: not valid YAML"):
        load_presets(p, STYLES)
    with pytest.raises(UserError, match="nope.yaml: cannot read style presets"):
        load_presets(tmp_path / "nope.yaml", STYLES)


@pytest.fixture(scope="module")
def styled(tmp_path_factory):
    """The tiny residual style model exported with a seed clip for style1 (none for style2) and presets."""
    from transflower.export.onnx_export import export_onnx
    from tiny_model import make_tiny_style_checkpoint

    tmp = tmp_path_factory.mktemp("presets")
    ckpt, feats_path, _ = make_tiny_style_checkpoint(tmp)
    feats = json.loads(feats_path.read_text())
    D = len(feats["motion_scaler"]["mean"])
    rng = np.random.default_rng(0)
    mean, std = np.asarray(feats["motion_scaler"]["mean"]), np.asarray(feats["motion_scaler"]["std"])
    clip = (mean + std * rng.standard_normal((12, D))).astype(np.float32)
    feats["style_seeds"] = {"style1": clip.round(5).tolist()}
    # where a shipped checkpoint keeps them (its features); the export copies them into the ONNX metadata
    feats["style_presets"] = {"style1": {"strength": 2.0, "temperature": 0.5}}
    feats_path.write_text(json.dumps(feats))
    out = tmp / "styled.onnx"
    export_onnx(ckpt, out, features_json=feats_path, check=False)
    return out, ckpt, feats_path, np.asarray(feats["style_seeds"]["style1"], np.float32)[-11:], tmp


def test_export_carries_presets_and_seed_clips(styled, tmp_path):
    from transflower.realtime.onnx_model import OnnxDanceModel
    from transflower.export.onnx_export import export_onnx

    out, ckpt, feats, clip, _ = styled
    model = OnnxDanceModel(out, provider="cpu")
    assert model.style_presets == {"style1": {"strength": 2.0, "temperature": 0.5}}
    assert set(model.style_seeds) == {"style1"}
    np.testing.assert_allclose(model.style_seeds["style1"], clip)  # the cache holds context - 1 = 11 frames
    with pytest.raises(UserError, match=r"style1.strength 7"):
        export_onnx(ckpt, tmp_path / "bad.onnx", features_json=feats, check=False, style_presets={"style1": {"strength": 7}})


def test_malformed_style_seeds_in_metadata_are_a_clear_error(styled, tmp_path):
    import onnx

    from transflower.realtime.onnx_model import OnnxDanceModel

    proto = onnx.load(str(styled[0]))
    meta = json.loads(proto.metadata_props[0].value)
    meta["style_seeds"] = {"style1": [[0.0, 1.0]]}
    proto.metadata_props[0].value = json.dumps(meta)
    p = tmp_path / "bad_seeds.onnx"
    onnx.save(proto, str(p))
    with pytest.raises(UserError, match=r"bad_seeds.onnx: metadata style_seeds\['style1'\]: expected"):
        OnnxDanceModel(p)


def test_preset_scales_strength_and_temperature_blended_with_the_style(styled):
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel

    model = OnnxDanceModel(styled[0], provider="cpu")
    audio = np.full(model.meta["audio_dim"], -50.0, np.float32)
    eng = DanceEngine(model, temperature=0.8, seed=5, explode_threshold=1e30)  # no redraws: the noise is the draw
    eng.set_style("style1", blend_s=0.5)  # 10 frames at 20 fps
    frames = int(round(0.5 * eng.fps))
    scales = []
    for _ in range(frames):
        eng.step(audio)
        scales.append(float(eng.temp_scale[0, 0]))
    np.testing.assert_allclose(scales, 1.0 - 0.5 * np.arange(1, frames + 1) / frames, atol=1e-6)  # linear, lands on 0.5
    np.testing.assert_allclose(eng.style[0], style_weights("style1", model.styles, 2.0))  # strength 1 x preset 2
    # the noise the graph sees: the dancer's own draw x temperature x the preset's multiplier
    rng = np.random.default_rng(5)
    for _ in range(frames + 1):
        draw = rng.standard_normal(eng.motion_dim, dtype=np.float32)
    eng.step(audio)
    assert eng.stats.resampled == 0
    np.testing.assert_allclose(eng.noise[0], draw * 0.8 * 0.5, rtol=1e-6)
    eng.set_style("style1", blend_s=0.0, strength=3.0)  # 3 x 2 = 6: capped at 4
    eng.step(audio)
    np.testing.assert_allclose(eng.style[0], style_weights("style1", model.styles, 4.0))
    eng.set_style("style2", blend_s=0.0)  # no preset: back to x1
    eng.step(audio)
    assert eng.temp_scale[0, 0] == 1.0 and eng._noise_scale[0, 0] == pytest.approx(0.8)
    eng.set_style([0.0, 0.5, 0.5], blend_s=0.0)  # a blend of styles: the blend of their temperature presets
    eng.step(audio)
    assert eng.temp_scale[0, 0] == pytest.approx(0.75)
    plain = DanceEngine(model, temperature=0.8, seed=5, style_presets=False)
    plain.set_style("style1", blend_s=0.0)
    plain.step(audio)
    np.testing.assert_allclose(plain.style[0], style_weights("style1", model.styles, 1.0))
    assert plain.temp_scale[0, 0] == 1.0


def test_start_style_warm_starts_on_the_styles_seed_clip(styled):
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel

    model = OnnxDanceModel(styled[0], provider="cpu")
    clip = styled[3]
    audio = np.full(model.meta["audio_dim"], -50.0, np.float32)
    eng = DanceEngine(model, seed=1)
    default_k = eng._primed["cache_k"].copy()
    eng.start_style("style1")
    assert eng.frame == len(clip)
    np.testing.assert_allclose(eng.pose, clip[-1])
    assert not np.allclose(eng._primed["cache_k"], default_k)
    np.testing.assert_allclose(eng.style[0], style_weights("style1", model.styles, 2.0))  # at once, not blended
    for _ in range(5):
        eng.step(audio)
    eng.reset("test")  # a reset returns to the style's warm start
    np.testing.assert_allclose(eng.pose, clip[-1])
    # under the style's own label: the primed cache differs from a warm start on the same clip as "auto"
    auto = DanceEngine(model, seed=1, seed_motion=clip)
    assert not np.allclose(auto._primed["cache_k"], eng._primed["cache_k"])
    # a style without a seed clip: the model's seed clip, warmed up again under the style's label
    other = DanceEngine(model, seed=1)
    auto_k = other._primed["cache_k"].copy()
    other.start_style("style2")
    np.testing.assert_allclose(other.pose, np.asarray(model.meta["seed_motion"], np.float32)[-1])
    assert not np.allclose(other._primed["cache_k"], auto_k)
    given = DanceEngine(model, seed=1)  # a seed clip given (live/generate --seed-motion) beats the style's own
    given.start_style("style1", seed_motion=clip[:5])
    np.testing.assert_allclose(given.pose, clip[4])
    assert given.frame == 5


def test_generate_style_starts_on_its_clip_in_torch_and_onnx(styled):
    sf = pytest.importorskip("soundfile")
    from transflower.generate import generate

    out, ckpt, feats, clip, tmp = styled
    song = tmp / "song.wav"
    sr = 22050
    sf.write(song, (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(2.0 * sr)) / sr)).astype(np.float32), sr)
    for style, seed_used in (("style1", "style1 seed clip"), ("style2", "model seed clip")):
        res = {}
        for path, kw in ((out, {}), (ckpt, {"features_json": feats})):
            r = generate(path, song, temperature=0.0, seed=1, style=style, progress=False, **kw)
            assert r["seed"] == seed_used
            res[r["backend"]] = r["motion"]
        # the same start, warm-up label, preset strength and zero noise: torch and onnxruntime agree
        np.testing.assert_allclose(res["torch"][:20], res["onnx"][:20], atol=2e-3)


def test_a_checkpoint_and_its_export_are_sampled_by_one_sampler(styled):
    """What the zero-noise parity above cannot see: with noise, presets (temperature x the style's) and the AR
    noise, a checkpoint and its .onnx draw the same noise in the same engine (transflower.realtime.engine.DanceEngine over
    transflower.models.live_step.TorchDanceModel), so they dance the same dance."""
    sf = pytest.importorskip("soundfile")
    from transflower.generate import generate

    out, ckpt, feats, clip, tmp = styled
    song = tmp / "song2.wav"
    sr = 22050
    sf.write(song, (0.3 * np.sin(2 * np.pi * 330 * np.arange(int(2.0 * sr)) / sr)).astype(np.float32), sr)
    for style in ("style1", "style2", None):
        a = generate(ckpt, song, temperature=0.8, seed=3, style=style, progress=False, features_json=feats,
                     noise_correlation=0.5)
        b = generate(out, song, temperature=0.8, seed=3, style=style, progress=False, noise_correlation=0.5)
        assert a["backend"] == "torch" and b["backend"] == "onnx" and a["noise_correlation"] == b["noise_correlation"]
        np.testing.assert_allclose(a["motion"][:20], b["motion"][:20], atol=2e-3)
    c = generate(ckpt, song, temperature=0.8, seed=4, style="style1", progress=False, features_json=feats)
    assert np.abs(c["motion"][:20] - generate(ckpt, song, temperature=0.8, seed=3, style="style1", progress=False,
                                              features_json=feats)["motion"][:20]).max() > 1e-3  # the noise matters


def test_live_lists_presets_and_starts_in_the_style(styled, receiver, capsys, caplog, tmp_path):
    import logging

    from transflower.cli import main

    caplog.set_level(logging.INFO, logger="transflower.live")
    out, _, _, clip, _ = styled
    assert main(["live", "--model", str(out), "--list-styles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["auto", "style1  (preset: strength x2, temperature x0.5; own seed clip)", "style2"]
    summary = tmp_path / "s.json"
    assert main(["live", "--model", str(out), "--demo", "--duration", "1", "--style", "style1", "--fps", "20",
                 "--osc", f"127.0.0.1:{receiver.port}", "--summary-json", str(summary)]) == 0
    assert json.loads(summary.read_text())["frames"] > 10
    assert "style style1 from the start (warm-started on its seed clip; preset: strength x2, temperature x0.5)" in caplog.text


def test_typical_window_skips_a_calm_opening_and_an_odd_figure():
    """The seed clip is the stretch closest to the style's median activity: not the standing start, not the
    one wild figure."""
    from transflower.checkpoint import typical_window

    rng = np.random.default_rng(0)
    T, n, D = 400, 40, 10

    def clip(scales):  # per-stretch motion amplitude: a random walk whose steps scale with it
        steps = np.concatenate([rng.standard_normal((T // len(scales), D)) * s for s in scales])
        return np.cumsum(steps, axis=0).astype(np.float32)

    a = clip([0.01, 1.0, 1.0, 1.0])  # standing, then dancing
    b = clip([1.0, 1.0, 5.0, 1.0])   # dancing, one wild figure
    w = typical_window([a, b], n)
    assert w.shape == (n, D)
    act = np.abs(np.diff(w[:, 3:], axis=0)).mean()
    typical = np.abs(np.diff(a[100:300, 3:], axis=0)).mean()
    assert 0.7 * typical < act < 1.3 * typical
    assert len(typical_window([a[:10]], n)) == 10  # a clip shorter than the window: all of it
