"""The wheel as a user installs it: `pip wheel --no-deps .` builds one that, installed (not editable) in a
fresh virtual environment outside the checkout, runs `transflower live` on the shipped model.

To stay fast and offline in CI the fresh environment does not download its dependencies: a `.pth` line
makes the test environment's site-packages visible after its own (the wheel's copy of the project comes
first; the editable install's finder is not activated, as a plain path line processes no .pth files).
Because that also exposes packages the wheel does not declare (torch, ...), the test checks that every
module the live run imported belongs to the standard library, the project, or a declared dependency
(base + `cpu` extra) or one of theirs, transitively."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _setuptools_version() -> tuple:
    try:
        from importlib.metadata import version

        return tuple(int(x) for x in re.findall(r"\d+", version("setuptools"))[:2])
    except Exception:  # noqa: BLE001  not installed
        return (0,)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv bin folder) with the freshly built wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # build from a copy: an in-tree build leaves build/ and *.egg-info in the checkout
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "runs", "__pycache__",
                                                               ".pytest_cache", ".numba_cache", "node_modules", "data_out"))
    wheels = tmp / "wheels"
    # --no-build-isolation: the test environment's setuptools builds it (offline, seconds) when it is
    # recent enough for pyproject.toml (scripts/test.sh installs one); else pip fetches one as users' pip does
    isolation = [] if _setuptools_version() >= (77,) else ["--use-pep517"]
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *(isolation or ["--no-build-isolation"]), "-q",
                        "-w", str(wheels), str(src)], capture_output=True, text=True, env=clean_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = wheels.glob("transflower_live-*.whl")
    venv = tmp / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    vpy = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True, env=clean_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    site = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "zz_test_env_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return vpy, vpy.parent, wheel


def test_wheel_holds_the_model_preview_and_license(installed):
    import zipfile

    names = zipfile.ZipFile(installed[2]).namelist()
    for needed in ("transflower/default_model/transflower_live.onnx", "transflower/default_model/transflower_live.model_card.json",
                   "transflower/bridge/preview/index.html", "transflower/bridge/preview/preview.js",
                   "transflower/hparams/transflower_live.yaml", "transflower/realtime/engine.py", "transflower/export/onnx_export.py",
                   "transflower/benchmarks/music.py"):
        assert needed in names
    # one installed name: nothing generic (realtime, export, bridge, benchmarks) lands in site-packages
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"transflower"}
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_dances_live_on_the_shipped_model(installed, tmp_path, receiver):
    vpy, vbin, _ = installed
    out = tmp_path / "summary.json"
    exe = vbin / ("transflower.exe" if os.name == "nt" else "transflower")
    r = subprocess.run([str(exe), "live", "--demo", "--duration", "3", "--osc", f"127.0.0.1:{receiver.port}",
                        "--status-interval", "0", "--summary-json", str(out), "--seed", "1"],
                       capture_output=True, text=True, cwd=tmp_path, env=clean_env(TRANSFLOWER_LOG_DIR=str(tmp_path / "logs")),
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(out.read_text())
    assert 135 <= s["frames"] <= 225 and s["source"].startswith("demo:") and s["engine_resets"] == 0  # 3 s at 60 fps
    assert receiver.wait_for(frames=s["frames"] + 30, timeout=2.0)  # + the 0.5 s easing into the standing pose
    assert "Traceback" not in r.stderr


def test_live_run_imports_only_declared_dependencies(installed, tmp_path):
    vpy, _, _ = installed
    probe = textwrap.dedent(f"""
        import json, os, re, sys, sysconfig
        from importlib import metadata
        import transflower
        assert transflower.__file__.startswith(sys.prefix), transflower.__file__  # the wheel's copy, not the checkout
        from transflower.cli import main
        rc = main(["live", "--demo", "--duration", "1", "--osc", "127.0.0.1:9", "--status-interval", "0"])
        own = metadata.distribution("transflower-live")
        def names(req):
            return re.split(r"[ ;<>=!~\\[(]", req, 1)[0].lower().replace("_", "-")
        wanted = [names(r) for r in own.requires or [] if "extra ==" not in r or "'cpu'" in r or '"cpu"' in r]
        allowed, todo = set(), list(wanted)
        while todo:  # the declared dependencies and theirs (all of their requirements, extras included)
            n = todo.pop()
            if n in allowed:
                continue
            allowed.add(n)
            try:
                todo += [names(r) for r in metadata.distribution(n).requires or []]
            except metadata.PackageNotFoundError:
                pass
        owners = metadata.packages_distributions()
        stdlib = tuple(sysconfig.get_paths()[k] + os.sep for k in ("stdlib", "platstdlib"))
        def owner_of(t):
            if t in owners:
                return owners[t]
            f = getattr(sys.modules.get(t), "__file__", None)
            if not f or f.startswith(stdlib):
                return None  # built in, or a stdlib / runtime helper
            for p in sys.path:  # an extension module registered under its own name (scipy's cython helpers)
                if p and f.startswith(p.rstrip(os.sep) + os.sep):
                    first = f[len(p.rstrip(os.sep)) + 1:].split(os.sep)[0].split(".")[0]
                    return owners.get(first, [first])
            return [t]
        top = {{m.split(".")[0] for m in list(sys.modules)}}
        stray = {{}}
        for t in sorted(top):
            if t in sys.stdlib_module_names or t in sys.builtin_module_names or t in (
                    "transflower", "realtime", "bridge", "export", "benchmarks", "__main__", "__mp_main__"):
                continue
            dists = owner_of(t)
            if dists is not None and not any(d.lower().replace("_", "-") in allowed for d in dists):
                stray[t] = dists
        print(json.dumps({{"rc": rc, "wanted": wanted, "stray": stray}}))
    """)
    r = subprocess.run([str(vpy), "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                       env=clean_env(TRANSFLOWER_LOG_DIR=str(tmp_path / "logs")), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0
    assert "onnxruntime" in result["wanted"] and "websockets" in result["wanted"]
    assert "python-osc" not in result["wanted"]  # a test-only dependency now
    assert result["stray"] == {}, f"the live run imported undeclared packages: {result['stray']}"
    assert not re.search(r"\btorch\b", json.dumps(result))
