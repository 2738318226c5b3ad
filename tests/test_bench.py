"""`transflower bench latency|floor|quality` end to end on tiny models (fast)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.tiny_model import make_tiny_checkpoint
from transflower.cli import main

TINY = ["model_config.d_model=16", "model_config.n_heads=2", "model_config.motion_layers=1", "model_config.audio_layers=1",
        "model_config.cross_layers=1", "model_config.flow_steps=2", "model_config.flow_hidden=16"]


def test_bench_latency_json_rows(tmp_path):
    out = tmp_path / "lat.json"
    rc = main(["bench", "latency", "--contexts", "10", "--steps", "12", "--warmup", "2",
               "--block", "4", "--legacy-export", "--override", *TINY, "--gpu", "off", "--json", str(out), "--plot", str(tmp_path / "lat.png")])
    assert rc == 0
    res = json.loads(out.read_text())
    names = [r["name"] for r in res["rows"]]
    assert names[0] in ("original-recompute", "causal-recompute")
    assert {"torch-kv-cache", "onnx-kv-cache", "onnx-kv-cache-1t"} <= set(names)
    for r in res["rows"]:
        assert r["context"] == 10 and r["steps"] == 12 and 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert len(res["sweep"]) == len(res["rows"]) and res["rows"][0]["speedup_p50"] == pytest.approx(1.0)
    assert (tmp_path / "lat.png").stat().st_size > 1000


def test_bench_floor(tmp_path, capsys):
    out = tmp_path / "floor.json"
    assert main(["bench", "floor", "--quick", "--context", "10", "--override", *TINY, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["cost"]["flops"] > 0 and res["cpu"]["gemm_gflops"] > 0 and res["floor_ms"] > 0
    assert res["ort_overhead"]["one_float_1t"]["p50_us"] > 0
    assert "floor" in capsys.readouterr().out


def make_data(tmp_path, feats_json, ids=("song_a", "song_b"), seconds=8.0):
    """A feature folder: smooth random standardised motion, random audio, a click-track wav per song."""
    sf = pytest.importorskip("soundfile")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(feats_json, data / "features.json")
    meta = json.loads(feats_json.read_text())
    fps, sr = meta["fps"], 24000
    T = int(seconds * fps)
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter1d

    for k, sid in enumerate(ids):
        m = gaussian_filter1d(rng.normal(size=(T, len(meta["motion_names"]))), 2, axis=0) * 3
        np.save(data / f"{sid}.motion.npy", m.astype(np.float32))
        np.save(data / f"{sid}.audio.npy", rng.normal(size=(T, len(meta["audio_names"]))).astype(np.float32))
        y = rng.normal(size=int(seconds * sr)).astype(np.float32) * 0.01
        for c in range(0, len(y), int(sr * (0.5 + 0.1 * k))):
            y[c: c + 200] += np.hanning(200).astype(np.float32) * 0.8
        sf.write(data / f"{sid}.wav", y, sr)
    (data / "base_filenames_test.txt").write_text("\n".join(ids) + "\n")
    return data


def test_bench_quality_json_and_ground_truth_fid_zero(tmp_path):
    ckpt, feats, _ = make_tiny_checkpoint(tmp_path, context=12, lookahead=1)
    data = make_data(tmp_path, feats)
    out = tmp_path / "q.json"
    rc = main(["bench", "quality", "--data", str(data), "--models", f"tiny={ckpt}", "--samples", "2", "--seconds", "4",
               "--seed-seconds", "1", "--segment-seconds", "1", "--json", str(out), "--plot", str(tmp_path / "strip.png")])
    assert rc == 0
    res = json.loads(out.read_text())
    rows = {r["name"]: r for r in res["rows"]}
    assert list(rows) == ["ground-truth", "shuffled-music", "tiny"]
    for r in rows.values():
        for k in ("fid_k", "fid_g", "fpd", "fmd", "div_k_across", "beat_align", "foot_skate_cm_s"):
            assert k in r
    gt = rows["ground-truth"]
    # identical sets: 0 up to sqrtm's error on singular covariances (few segments)
    assert gt["fid_k"] == pytest.approx(0.0, abs=1e-3) and gt["fid_g"] == pytest.approx(0.0, abs=1e-3)
    assert gt["fpd"] == pytest.approx(0.0, abs=1e-3) and gt["fmd"] == pytest.approx(0.0, abs=1e-3)
    assert rows["shuffled-music"]["fid_k"] == pytest.approx(0.0, abs=1e-3)  # same motions, other music
    assert rows["tiny"]["dances"] == 2 * 2 and rows["tiny"]["div_k_within"] > 0 and rows["tiny"]["fid_k"] > 0
    # kinetic columns and their ratios to the ground truth (issue 11)
    assert gt["speed_ratio"] == pytest.approx(1.0) and gt["jerk_ratio"] == pytest.approx(1.0)
    assert rows["tiny"]["speed"] > 0 and rows["tiny"]["jerk_ratio"] == pytest.approx(rows["tiny"]["jerk"] / gt["jerk"])
    assert 0.0 <= rows["tiny"]["spike"] <= 100.0 and "speed_ratio_in_0.85_1.15" in res["targets"]
    assert 0.0 <= gt["beat_align"] <= 1.0
    assert (tmp_path / "strip.png").stat().st_size > 1000


def test_bench_quality_errors(tmp_path, capsys):
    assert main(["bench", "quality", "--data", str(tmp_path), "--models", "bad"]) == 2
    assert "NAME=CHECKPOINT" in capsys.readouterr().err
    assert main(["bench", "quality", "--data", str(tmp_path)]) == 2
    assert "features.json" in capsys.readouterr().err


def test_bench_style_and_decompose_run_end_to_end(tmp_path):
    """bench style: a classifier of the (synthetic) real dances, per-style recognition of generated ones, a
    switch measured against the real 99.9th percentile; bench decompose: its rows on the same model."""
    ckpt, feats, _ = make_tiny_checkpoint(tmp_path, context=12, lookahead=1, residual=True, styles=3)
    data = make_data(tmp_path, feats, ids=("a_1", "a_2", "b_1", "b_2"), seconds=8.0)
    meta = json.loads((data / "features.json").read_text())
    meta["clip_styles"] = {"a_1": "style1", "a_2": "style1", "b_1": "style2", "b_2": "style2"}
    (data / "features.json").write_text(json.dumps(meta))
    (data / "base_filenames_train.txt").write_text("a_1\nb_1\n")
    (data / "base_filenames_test.txt").write_text("a_2\nb_2\n")
    out = tmp_path / "style.json"
    rc = main(["bench", "style", "--data", str(data), "--model", str(ckpt), "--samples", "1", "--seconds", "6",
               "--segment-seconds", "1", "--switch-seconds", "2", "--blend-seconds", "0.5", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert set(res["recognised"]) == {"style1", "style2"} and 0.0 <= res["classifier"]["held_out_accuracy"] <= 1.0
    assert all(r["windows"] > 0 for r in res["recognised"].values())
    assert res["switch"]["songs"] and res["switch"]["real_p999"] > 0 and "switch_without_pop" in res["targets"]
    out = tmp_path / "dec.json"
    assert main(["bench", "decompose", "--data", str(data), "--model", str(ckpt), "--seconds", "4", "--samples", "1",
                 "--json", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["real: features"]["world_speed_ratio"] == pytest.approx(1.0)
    assert rows["rollout"]["world_speed"] > 0 and rows["one-step: model displacement"]["body_speed"] > 0
