"""Shared fixtures: `shared_data` is the real-data folder (env TRANSFLOWER_DATA, else <repo>/../shared/data)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# crash logs of `live` runs the tests start go to a throwaway folder, not the user's log folder
os.environ.setdefault("TRANSFLOWER_LOG_DIR", os.path.join(tempfile.gettempdir(), "transflower-test-logs"))


def shared_data_dir() -> Path:
    env = os.environ.get("TRANSFLOWER_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set TRANSFLOWER_DATA or provide ../shared/data)")
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """The tiny exported live model (real skeleton and feature layout, untrained), built once per session."""
    from test_live import tiny_live_model

    return tiny_live_model(tmp_path_factory)


@pytest.fixture
def receiver():
    """A VMC receiver on a free local port."""
    from transflower.bridge.vmc import VmcReceiver

    rx = VmcReceiver(port=0)
    yield rx
    rx.close()
