"""Ship a trained run as the package's default model (transflower/default_model/).

    python scripts/ship_default_model.py runs/default [--name transflower_live]

Writes, atomically: <name>.onnx (what `transflower live` loads), <name>.pt (weights only, fp16, in the
checkpoint layout `transflower generate` / `export` read), model_card.json (config, data hash, steps,
final train/validation NLL, parity, where the training data comes from and its terms), curves.png and
config.yaml. The card holds no path of the build machine: files are named by their base name only.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from transflower.export.onnx_export import export_onnx
from transflower.atomic import write_bytes_atomic, write_json_atomic

DEST = Path(__file__).resolve().parent.parent / "transflower" / "default_model"

# What the shipped weights were trained on, and on what terms (the card travels with the wheel).
TRAINING_DATA = {
    "name": "Dance with Melody (Tang, Jia, Mao 2018): ballroom dance motion capture paired with music",
    "source": "https://github.com/mhy12345/Music-to-Dance-Motion-Synthesis",
    "citation": "Taoran Tang, Jia Jia, Hanyang Mao. Dance with Melody: An LSTM-autoencoder Approach to "
                "Music-oriented Dance Synthesis. ACM Multimedia 2018, pp. 1598-1606.",
    "terms": "research data published without a licence: cite it, do not redistribute it; the data is not part "
             "of this package. The model weights trained on it are the project's and ship under its MIT licence.",
    "import": "transflower import tang2018 (a fixed-bone-length skeleton fitted to the 23 captured markers)",
}


def strip_paths(value):
    """Absolute paths in a card (data folder, export target) -> their base names."""
    if isinstance(value, dict):
        return {k: strip_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_paths(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name
    return value


def quality_summary(q: dict) -> dict:
    """A `bench quality --json` result, as the card keeps it."""
    return {"command": "transflower bench quality (see benchmarks/README.md)", "temperature": q.get("temperature"),
            "samples": q.get("samples"), "seconds": q.get("seconds"), "songs": q.get("songs"), "ground": q.get("ground"),
            "rows": [{k: r.get(k) for k in ("name", "noise_correlation", "speed_ratio", "jerk_ratio", "spike_ratio",
                                             "slide_ratio", "fid_k", "fid_g", "div_k_across", "beat_align")} for r in q["rows"]],
            "targets": {k: t["ok"] for k, t in q.get("targets", {}).items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--name", default="transflower_live")
    ap.add_argument("--checkpoint", default="last.ckpt", help="which checkpoint of the run (default last.ckpt)")
    ap.add_argument("--temperature", type=float, default=None,
                    help="the default sampling temperature stored in the model (chosen by `bench quality`; default: none = 1)")
    ap.add_argument("--parity-frames", type=int, default=500, help="frames of the torch-vs-onnxruntime parity rollout")
    ap.add_argument("--note", help="how the run was trained, when its config alone does not say (stages, resumed overrides)")
    ap.add_argument("--style-presets", type=Path, help="per-style presets (YAML; chosen by `bench style --split train`)")
    ap.add_argument("--noise-correlation", type=float, default=None,
                    help="the default AR(1) noise correlation stored in the model (default: none = 0)")
    ap.add_argument("--force", action="store_true", help="ship even when the parity check fails")
    ap.add_argument("--quality-json", type=Path, help="the `bench quality --json` result that chose it: summarised in the card")
    args = ap.parse_args()
    DEST.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.run / "checkpoints" / args.checkpoint
    card = json.loads((args.run / "model_card.json").read_text())

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    slim = {"hyper_parameters": ckpt["hyper_parameters"], "global_step": ckpt.get("global_step"),
            "state_dict": {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}}
    tmp = DEST / f".{args.name}.pt.tmp"

    # the parity rollout hears a real test song (unscaled audio rows of the first test clip) when the data is here
    audio, data_dir = None, Path(card.get("data_dir", ""))
    test_ids = card.get("features", {}).get("test_ids") or []
    if test_ids and (data_dir / f"{test_ids[0]}.audio_raw.npy").is_file():
        audio = np.load(data_dir / f"{test_ids[0]}.audio_raw.npy")
    staged = DEST / f".{args.name}.staged.onnx"  # the shipped ONNX is replaced only once its parity holds
    try:
        report = export_onnx(ckpt_path, staged, parity_frames=args.parity_frames,
                             default_temperature=args.temperature, parity_audio=audio, style_presets=args.style_presets,
                             default_noise_correlation=args.noise_correlation)
    except BaseException:
        staged.unlink(missing_ok=True)  # no half-checked ONNX left beside the shipped one
        raise
    parity = report.get("parity") or {}
    if not parity.get("ok") and not args.force:
        staged.unlink(missing_ok=True)
        away = (parity.get("stepwise") or {}).get("reference_ran_away_at")
        raise SystemExit(f"{ckpt_path}: the export's parity check failed (max error {parity.get('max_abs_error')}"
                         + (f"; the torch reference itself ran away at frame {away}: a model that is not stable"
                            if away is not None else "")
                         + "); nothing shipped (--force ships it anyway)")
    os.replace(staged, DEST / f"{args.name}.onnx")
    report["onnx"] = str(DEST / f"{args.name}.onnx")
    import onnx

    meta = json.loads(onnx.load(str(DEST / f"{args.name}.onnx")).metadata_props[0].value)
    features = dict(card["features"], seed_motion=meta["seed_motion"], style_seeds=meta.get("style_seeds") or {},
                    style_presets=meta.get("style_presets") or {})
    if args.temperature is not None:
        features["default_temperature"] = args.temperature
    if args.noise_correlation is not None:
        features["default_noise_correlation"] = args.noise_correlation
    slim["features"] = features  # self-contained: generate/export need no data folder
    torch.save(slim, tmp)
    os.replace(tmp, DEST / f"{args.name}.pt")
    card.update(shipped_checkpoint=args.checkpoint, checkpoint_step=int(ckpt.get("global_step") or 0),
                onnx=report, features=None,  # features live in the ONNX metadata; keep the card short
                training_data=TRAINING_DATA, license="MIT (the weights); see training_data for the data's terms",
                default_temperature=args.temperature, default_noise_correlation=args.noise_correlation,
                style_presets=meta.get("style_presets") or {},
                style_seeds={k: f"{len(v)} frames" for k, v in (meta.get("style_seeds") or {}).items()})
    if args.note:
        card["training_note"] = args.note
    if args.quality_json:
        card["quality"] = quality_summary(json.loads(args.quality_json.read_text()))
    write_json_atomic(DEST / f"{args.name}.model_card.json", strip_paths(card))
    for name in ("curves.png", "config.yaml"):
        if (args.run / name).exists():
            write_bytes_atomic(DEST / f"{args.name}.{name}", (args.run / name).read_bytes())
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
