"""The live path never imports torch or training code (a DJ installs onnxruntime, not a training stack)."""
import subprocess
import sys

LIVE_MODULES = ["transflower.realtime.live", "transflower.realtime.engine", "transflower.realtime.onnx_model", "transflower.realtime.streaming_features", "transflower.realtime.audio_sources",
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
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('export', 'realtime'))))\n")
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
    banned = ("torch", "lightning", "transflower.models", "transflower.train", "transflower.dataset", "export",
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
