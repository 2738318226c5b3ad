"""Ship a trained run as the package's default model (transflower/default_model/).

    python scripts/ship_default_model.py runs/default [--name transflower_live]

Writes, atomically: <name>.onnx (what `transflower live` loads), <name>.pt (weights only, fp16, in the
checkpoint layout `transflower generate` / `export` read), model_card.json (config, data hash, steps,
final train/validation NLL, parity), curves.png and config.yaml.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import torch

from export.onnx_export import export_onnx

DEST = Path(__file__).resolve().parent.parent / "transflower" / "default_model"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--name", default="transflower_live")
    ap.add_argument("--checkpoint", default="last.ckpt", help="which checkpoint of the run (default last.ckpt)")
    args = ap.parse_args()
    DEST.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.run / "checkpoints" / args.checkpoint
    card = json.loads((args.run / "model_card.json").read_text())

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    slim = {"hyper_parameters": ckpt["hyper_parameters"], "global_step": ckpt.get("global_step"),
            "state_dict": {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}}
    tmp = DEST / f".{args.name}.pt.tmp"

    report = export_onnx(ckpt_path, DEST / f"{args.name}.onnx", parity_frames=500)
    import onnx

    meta = json.loads(onnx.load(str(DEST / f"{args.name}.onnx")).metadata_props[0].value)
    features = dict(card["features"], seed_motion=meta["seed_motion"])
    slim["features"] = features  # self-contained: generate/export need no data folder
    torch.save(slim, tmp)
    os.replace(tmp, DEST / f"{args.name}.pt")
    card.update(shipped_checkpoint=args.checkpoint, checkpoint_step=int(ckpt.get("global_step") or 0),
                onnx=report, features=None)  # features live in the ONNX metadata; keep the card short
    (DEST / f"{args.name}.model_card.json").write_text(json.dumps(card, indent=1))
    for name in ("curves.png", "config.yaml"):
        if (args.run / name).exists():
            shutil.copy(args.run / name, DEST / f"{args.name}.{name}")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
