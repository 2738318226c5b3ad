"""Export: ONNX step parity with torch over a 500-frame rollout; clear errors for bad model files."""
import json

import numpy as np
import pytest
import torch

from transflower.errors import UserError
from transflower.skeleton import JOINT_NAMES

from tiny_model import make_tiny_checkpoint

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from transflower.export.onnx_export import export_onnx

    tmp = tmp_path_factory.mktemp("export")
    ckpt, feats, model = make_tiny_checkpoint(tmp)
    out = tmp / "tiny.onnx"
    report = export_onnx(ckpt, out, features_json=feats, parity_frames=500)
    return out, report, model


def test_rollout_parity_500_frames(exported):
    out, report, _ = exported
    par = report["parity"]
    print("parity:", par)
    assert par["frames"] == 500
    assert par["ok"] and par["stepwise"]["max_abs_error"] < 1e-3
    # the tiny untrained model is not chaotic: even free-running rollouts stay together
    assert par["free_running"]["max_abs_error"] < 1e-3 and par["free_running"]["first_frame_over_tolerance"] is None
    assert par["engine_resets"] == 0


def test_metadata_is_complete(exported):
    from transflower.realtime.onnx_model import OnnxDanceModel

    m = OnnxDanceModel(exported[0], provider="cpu")
    assert m.meta["fps"] == 20.0 and m.meta["lookahead"] == 1 and m.meta["context"] == 12
    assert m.provider == "CPUExecutionProvider"
    assert len(m.meta["skeleton"]["names"]) == len(JOINT_NAMES)


def test_onnx_graph_has_no_matrix_inverse(exported):
    import onnx

    ops = {n.op_type for n in onnx.load(str(exported[0])).graph.node}
    assert "Inverse" not in ops


def test_engine_reset_on_nonfinite(exported):
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel

    eng = DanceEngine(OnnxDanceModel(exported[0], provider="cpu"), seed=1)
    audio = np.full(68, -50.0, np.float32)
    eng.step(audio)
    eng.step(np.full(68, np.nan, np.float32))  # NaN in -> NaN pose -> reset, stream continues
    assert eng.stats.resets == 1
    pose = eng.step(audio)
    assert np.isfinite(pose).all()


def test_garbage_file_is_a_clear_error(tmp_path):
    from transflower.realtime.onnx_model import OnnxDanceModel

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not onnx")
    with pytest.raises(UserError, match="not a loadable ONNX model"):
        OnnxDanceModel(bad)
    with pytest.raises(UserError, match="not found"):
        OnnxDanceModel(tmp_path / "missing.onnx")


def test_foreign_onnx_is_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from transflower.realtime.onnx_model import OnnxDanceModel

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    p = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(g), str(p))
    with pytest.raises(UserError, match="without transflower metadata"):
        OnnxDanceModel(p)


def test_mismatched_metadata_is_a_clear_error(exported, tmp_path):
    import onnx

    from transflower.realtime.onnx_model import OnnxDanceModel

    proto = onnx.load(str(exported[0]))
    meta = json.loads(proto.metadata_props[0].value)
    meta["context"] = 99
    proto.metadata_props[0].value = json.dumps(meta)
    p = tmp_path / "mismatch.onnx"
    onnx.save(proto, str(p))
    with pytest.raises(UserError, match="does not match"):
        OnnxDanceModel(p)


@pytest.fixture(scope="module")
def exported_residual_styles(tmp_path_factory):
    """A residual, style-conditioned tiny model: the shipped model's kind."""
    from transflower.export.onnx_export import export_onnx

    tmp = tmp_path_factory.mktemp("export_styles")
    from tiny_model import make_tiny_style_checkpoint

    ckpt, feats, model = make_tiny_style_checkpoint(tmp)
    out = tmp / "tiny_styles.onnx"
    report = export_onnx(ckpt, out, features_json=feats, parity_frames=200)
    return out, report, model


def test_residual_style_model_exports_with_parity(exported_residual_styles):
    out, report, model = exported_residual_styles
    assert report["parity"]["ok"] and report["parity"]["stepwise"]["max_abs_error"] < 1e-3
    from transflower.realtime.onnx_model import OnnxDanceModel

    m = OnnxDanceModel(out, provider="cpu")
    assert m.styles == ["auto", "style1", "style2"]
    assert [i.name for i in m.session.get_inputs()][-1] == "style"


def test_batch_axis_runs_dancers_independently(exported_residual_styles):
    """One batched run of 3 dancers == three single runs (different poses, noise and styles per row)."""
    from transflower.realtime.onnx_model import OnnxDanceModel

    sess = OnnxDanceModel(exported_residual_styles[0], provider="cpu").session
    rng = np.random.default_rng(0)
    feeds = {}
    for inp in sess.get_inputs():
        shape = [3 if not isinstance(d, int) else d for d in inp.shape]
        feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    feeds["cache_bias"][:] = 0.0
    feeds["style"] = np.eye(3, dtype=np.float32)
    batched = sess.run(None, feeds)
    for b in range(3):
        one = {k: (v[:, b: b + 1] if k in ("cache_k", "cache_v") else v if k.startswith("rope") else v[b: b + 1])
               for k, v in feeds.items()}
        single = sess.run(None, one)
        assert np.allclose(single[0], batched[0][b: b + 1], atol=1e-5)
        assert np.allclose(single[1], batched[1][:, b: b + 1], atol=1e-5)
    assert not np.allclose(batched[0][0], batched[0][1])


def test_engine_style_switch(exported_residual_styles):
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel

    model = OnnxDanceModel(exported_residual_styles[0], provider="cpu")
    audio = np.full(68, -50.0, np.float32)
    poses = {}
    for style in ("auto", "style1"):
        eng = DanceEngine(model, seed=3)
        eng.set_style(style)
        poses[style] = np.stack([eng.step(audio).copy() for _ in range(5)])
    assert not np.allclose(poses["auto"], poses["style1"])  # the label reaches the dance
    with pytest.raises(UserError, match="expected one of"):
        DanceEngine(model).set_style("tango")


def test_residual_step_adds_the_flow_sample_to_the_previous_pose(exported_residual_styles):
    """With zero noise the residual model's pose stays near the previous pose for the pose dims; the root
    velocity dims (the first 3) are sampled as they are."""
    model = exported_residual_styles[2]
    assert model.residual_mask[:3].sum() == 0 and bool((model.residual_mask[3:] == 1).all())
    from transflower.models.transflower import KVCacheRunner

    runner = KVCacheRunner(model)
    prev = torch.randn(1, model.cfg.motion_dim)
    a = torch.randn(1, model.cfg.audio_dim)
    with torch.no_grad():
        h, _, _ = model.backbone.step(prev, a, *[x[0] for x in __import__("transflower.models.transflower", fromlist=["rope_angles"]).rope_angles(torch.tensor([0]), model.cfg.head_dim)],
                                      runner.cache_k, runner.cache_v, runner.cache_bias, runner.style)
        flow_x = model.flow.inverse(torch.zeros(1, model.cfg.motion_dim), h)
        pose = runner.step(prev, a, torch.zeros(1, model.cfg.motion_dim))
    assert torch.allclose(pose, model.residual_mask * prev + flow_x, atol=1e-5)


def test_parity_says_where_the_reference_rollout_runs_away(exported):
    """A torch reference whose rollout leaves the model's range (here: each pose 1.3x the previous one plus
    the flow's sample, which the exported graph does not do) fails the check, and the report says that the reference
    ran away, where, and how close the runtimes were before it."""
    import copy

    from transflower.export.parity import rollout_parity
    from transflower.features import StandardScaler

    out, report, model = exported
    healthy = report["parity"]["stepwise"]
    assert healthy["reference_ran_away_at"] is None and healthy["reference_max_abs_z"] < 25.0
    assert healthy["max_abs_error_before_runaway"] == healthy["max_abs_error"]
    feats = json.loads((out.parent / "features.json").read_text())
    ms, a_s = (StandardScaler.from_dict(feats[k]) for k in ("motion_scaler", "audio_scaler"))
    grown = copy.deepcopy(model)
    grown.residual_mask.fill_(1.3)  # x_t = 1.3 x_{t-1} + sample
    wild = rollout_parity(grown, out, ms, a_s, frames=60)
    sw = wild["stepwise"]
    assert not wild["ok"] and sw["reference_ran_away_at"] is not None and sw["reference_max_abs_z"] > 25.0
    assert sw["max_abs_error_before_runaway"] <= sw["max_abs_error"]
