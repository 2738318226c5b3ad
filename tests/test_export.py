"""Export: ONNX step parity with torch over a 500-frame rollout; clear errors for bad model files."""
import json

import numpy as np
import pytest
import torch

from transflower.errors import UserError
from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton

onnxruntime = pytest.importorskip("onnxruntime")


def make_tiny_checkpoint(tmp_path, motion_dim=7, audio_dim=68, context=12):
    from transflower.audio_features import AudioFeatureConfig
    from transflower.models import build_model

    cfg = {"model": "transflower_live",
           "model_config": dict(motion_dim=motion_dim, audio_dim=audio_dim, d_model=32, n_heads=4, motion_layers=1,
                                audio_layers=1, cross_layers=1, context=context, lookahead=1, dropout=0.0,
                                flow_steps=2, flow_hidden=16)}
    torch.manual_seed(0)
    model = build_model(cfg["model"], cfg["model_config"])
    for s in model.flow.steps:
        s.norm.initialized.fill_(True)
    with torch.no_grad():
        for p in model.flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ckpt = {"hyper_parameters": {"cfg": cfg}, "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}
    path = tmp_path / "tiny.ckpt"
    torch.save(ckpt, path)
    rng = np.random.default_rng(0)
    ac = AudioFeatureConfig()
    skel = Skeleton(JOINT_NAMES, PARENTS, rng.normal(size=(len(JOINT_NAMES), 3)))
    feats = {"fps": 20.0, "audio_config": ac.to_dict(), "audio_names": ac.names,
             "motion_names": [f"m{i}" for i in range(motion_dim)], "skeleton": skel.to_dict(),
             "motion_scaler": {"mean": rng.normal(size=motion_dim).tolist(), "std": (1 + rng.random(motion_dim)).tolist()},
             "audio_scaler": {"mean": (rng.normal(size=audio_dim) * 10 - 40).tolist(), "std": (5 + rng.random(audio_dim)).tolist()}}
    fpath = tmp_path / "features.json"
    fpath.write_text(json.dumps(feats))
    return path, fpath, model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from export.onnx_export import export_onnx

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
    assert par["ok"] and par["max_abs_error"] < 1e-3
    assert par["engine_resets"] == 0


def test_metadata_is_complete(exported):
    from realtime.engine import OnnxDanceModel

    m = OnnxDanceModel(exported[0], provider="cpu")
    assert m.meta["fps"] == 20.0 and m.meta["lookahead"] == 1 and m.meta["context"] == 12
    assert m.provider == "CPUExecutionProvider"
    assert len(m.meta["skeleton"]["names"]) == len(JOINT_NAMES)


def test_onnx_graph_has_no_matrix_inverse(exported):
    import onnx

    ops = {n.op_type for n in onnx.load(str(exported[0])).graph.node}
    assert "Inverse" not in ops


def test_engine_reset_on_nonfinite(exported):
    from realtime.engine import DanceEngine, OnnxDanceModel

    eng = DanceEngine(OnnxDanceModel(exported[0], provider="cpu"), seed=1)
    audio = np.zeros(68, np.float32)
    eng.step(audio)
    eng.step(np.full(68, np.nan, np.float32))  # NaN in -> NaN pose -> reset, stream continues
    assert eng.stats.resets == 1
    pose = eng.step(audio)
    assert np.isfinite(pose).all()


def test_garbage_file_is_a_clear_error(tmp_path):
    from realtime.engine import OnnxDanceModel

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not onnx")
    with pytest.raises(UserError, match="not a loadable ONNX model"):
        OnnxDanceModel(bad)
    with pytest.raises(UserError, match="not found"):
        OnnxDanceModel(tmp_path / "missing.onnx")


def test_foreign_onnx_is_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from realtime.engine import OnnxDanceModel

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    p = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(g), str(p))
    with pytest.raises(UserError, match="without transflower metadata"):
        OnnxDanceModel(p)


def test_mismatched_metadata_is_a_clear_error(exported, tmp_path):
    import onnx

    from realtime.engine import OnnxDanceModel

    proto = onnx.load(str(exported[0]))
    meta = json.loads(proto.metadata_props[0].value)
    meta["context"] = 99
    proto.metadata_props[0].value = json.dumps(meta)
    p = tmp_path / "mismatch.onnx"
    onnx.save(proto, str(p))
    with pytest.raises(UserError, match="does not match"):
        OnnxDanceModel(p)
