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
    assert par["ok"] and par["stepwise"]["max_abs_error"] < 1e-3
    # the tiny untrained model is not chaotic: even free-running rollouts stay together
    assert par["free_running"]["max_abs_error"] < 1e-3 and par["free_running"]["first_frame_over_tolerance"] is None
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
    audio = np.full(68, -50.0, np.float32)
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
