"""The live path never imports torch or training code (a DJ installs onnxruntime, not a training stack)."""
import subprocess
import sys

LIVE_MODULES = ["transflower.realtime.live", "transflower.realtime.engine", "transflower.realtime.onnx_model", "transflower.realtime.resampler", "transflower.realtime.streaming_features", "transflower.realtime.audio_sources",
                "transflower.realtime.frame_clock", "transflower.realtime.ring_buffer", "transflower.realtime.control", "transflower.realtime.midi", "transflower.realtime.crowd",
                "transflower.realtime.timing", "transflower.kernels", "transflower.bridge.vmc", "transflower.bridge.retarget", "transflower.bridge.osc",
                "transflower.bridge.preview"]


def _imported_after(setup: str, training_code_too: bool) -> str:
    extra = "or m.startswith('transflower.models') or m in ('transflower.train', 'transflower.dataset')" if training_code_too else ""
    code = (setup + "import sys\n"
            f"bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m == 'lightning' {extra})\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_live_path_does_not_import_torch_or_training_code():
    bad = _imported_after("".join(f"import {m}\n" for m in LIVE_MODULES), training_code_too=True)
    assert bad == "", f"the live path imported: {bad}"


def test_cli_parser_does_not_import_torch():
    """Building every subcommand's parser (what `transflower live` does first) must stay torch-free."""
    bad = _imported_after("from transflower.cli import build_parser\nbuild_parser()\n", training_code_too=False)
    assert bad == "", f"building the CLI imported: {bad}"


def test_cli_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "transflower.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for sub in ["import", "features", "train", "generate", "export", "live", "view", "bench"]:
        assert sub in out.stdout


def test_core_does_not_reach_up_into_export_or_realtime():
    """Generation and checkpoint loading are core: importing them (and loading a checkpoint's helpers)
    pulls in neither export/ nor realtime/ (an .onnx model still runs in transflower.realtime.engine, imported on demand)."""
    code = ("import transflower.generate, transflower.checkpoint, transflower.floor, transflower.kernels, sys\n"
            "print(','.join(sorted(m for m in sys.modules if m.startswith(('transflower.export', 'transflower.realtime')))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the core imported: {out.stdout.strip()}"


def test_no_import_anywhere_in_the_live_path_reaches_training_or_command_code():
    """The import-time check above cannot see imports inside functions; this one reads every import
    statement of realtime/ and bridge/, wherever it stands: none may reach torch, lightning, the models,
    training, export, or a command module (generate, features, cli)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    banned = ("torch", "lightning", "transflower.models", "transflower.train", "transflower.dataset", "transflower.export",
              "transflower.generate", "transflower.features", "transflower.cli")
    found = []
    for folder in ("realtime", "bridge"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                found += [f"{path.relative_to(root)}:{node.lineno} {n}" for n in names
                          if any(n == b or n.startswith(b + ".") for b in banned)]
    assert found == [], f"the live path imports: {found}"


def test_every_import_of_the_project_uses_its_one_installed_name():
    """The repository's top-level folders install as transflower.realtime / .export / .bridge / .benchmarks
    (pyproject's package-dir): an import of a bare `realtime`, `export`, `bridge` or `benchmarks` would work
    in a checkout and fail in an installed wheel."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    bare = ("realtime", "export", "bridge", "benchmarks")
    found = []
    for folder in ("transflower", "realtime", "export", "bridge", "benchmarks", "tests", "scripts"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
                found += [f"{path.relative_to(root)}:{node.lineno} {n}" for n in names if n.split(".")[0] in bare]
    assert found == [], f"bare imports: {found}"


# the layers ARCHITECTURE.md draws, lowest first; a module imports only from its own layer or those below
LAYERS = ["core", "bridge", "realtime", "app", "export", "benchmarks"]
APP_MODULES = {"cli", "generate", "features", "train", "dataset", "data_import", "import_bvh", "checkpoint", "models",
               "render", "baselines"}


def _layer(module: str):
    parts = module.split(".")
    if parts[0] != "transflower":
        return None  # a third-party or standard module
    if len(parts) > 1 and parts[1] in ("realtime", "bridge", "export", "benchmarks"):
        return parts[1]
    return "app" if len(parts) > 1 and parts[1] in APP_MODULES else "core"


def test_layers_import_one_way():
    """Every import statement in the package (inside functions too) goes to the importer's layer or one below."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    folders = {"transflower": "transflower", "realtime": "transflower.realtime", "export": "transflower.export",
               "bridge": "transflower.bridge", "benchmarks": "transflower.benchmarks"}
    upward, seen = [], set()
    for folder, package in folders.items():
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root / folder).with_suffix("").parts
            module = ".".join([package, *[p for p in rel if p != "__init__"]])
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
                for name in names:
                    a, b = _layer(module), _layer(name)
                    if b is None:
                        continue
                    seen.add((a, b))
                    if LAYERS.index(b) > LAYERS.index(a):
                        upward.append(f"{path.relative_to(root)}:{node.lineno} ({a}) imports {name} ({b})")
    assert upward == [], "imports going up a layer:\n" + "\n".join(upward)
    assert ("realtime", "core") in seen and ("benchmarks", "realtime") in seen  # the walk saw the package
