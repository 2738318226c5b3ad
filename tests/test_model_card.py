"""The shipped model card: no path of the build machine, and it says where the training data comes from
and on what terms (it travels inside the wheel)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "transflower" / "default_model" / "transflower_live.model_card.json"


def all_strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_strings(v)
    elif isinstance(value, str):
        yield value


def test_shipped_card_has_no_build_machine_paths():
    card = json.loads(CARD.read_text())
    for s in all_strings(card):
        assert not s.startswith("/") and ":\\" not in s, s
    for folder in ("/tmp/", "/root/", "/home/", "/work/"):
        assert folder not in CARD.read_text()


def test_shipped_card_states_data_source_and_terms():
    data = json.loads(CARD.read_text())["training_data"]
    assert "Dance with Melody" in data["name"] and "Tang" in data["citation"] and "2018" in data["citation"]
    assert "without a licence" in data["terms"] and "do not redistribute" in data["terms"]
    assert "MIT" in data["terms"]  # the weights are the project's


def test_ship_script_strips_paths():
    pytest.importorskip("torch")  # the script exports with torch
    spec = importlib.util.spec_from_file_location("ship_default_model", REPO / "scripts" / "ship_default_model.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    card = {"data_dir": "/tmp/tf_data", "onnx": {"onnx": "/work/main/transflower/default_model/x.onnx", "nodes": 3},
            "train_ids": ["DANCE_C_2"], "note": "relative/path stays"}
    assert ship.strip_paths(card) == {"data_dir": "tf_data", "onnx": {"onnx": "x.onnx", "nodes": 3},
                                      "train_ids": ["DANCE_C_2"], "note": "relative/path stays"}
    assert ship.TRAINING_DATA == json.loads(CARD.read_text())["training_data"]
