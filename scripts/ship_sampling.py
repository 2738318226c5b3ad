"""Change how the shipped default model samples, without retraining or re-exporting it.

    python scripts/ship_sampling.py --noise-correlation 0.5 --style-presets PRESETS.yaml \\
        --quality-json quality.json --style-json style.json --note "why"

With only --quality-json / --style-json it records what the current defaults measure.
The graph and weights stay as they are (no parity check is needed: nothing it checks changes); the
defaults `live` and `generate` read are rewritten, atomically, where they live: the ONNX metadata, the
fp16 checkpoint's `features` and the model card (which keeps a history of these changes).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from ship_default_model import DEST, quality_summary  # scripts/ is on sys.path when run as a script
from transflower.atomic import write_json_atomic
from transflower.errors import UserError
from transflower.styles import check_noise_correlation, load_presets


def main() -> None:
    import onnx

    from transflower.realtime.onnx_model import METADATA_KEY

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="transflower_live")
    ap.add_argument("--temperature", type=float, help="a new default sampling temperature")
    ap.add_argument("--noise-correlation", type=float, help="a new default AR(1) noise correlation (0..0.95)")
    ap.add_argument("--style-presets", type=Path, help="new per-style presets (YAML, replacing the old ones)")
    ap.add_argument("--quality-json", type=Path, help="the `bench quality --json` result for the new defaults")
    ap.add_argument("--style-json", type=Path, help="the `bench style --json` result for the new defaults")
    ap.add_argument("--note", required=True, help="what changed and why, or what was measured (kept in the card)")
    args = ap.parse_args()
    onnx_path, pt_path, card_path = (DEST / f"{args.name}{ext}" for ext in (".onnx", ".pt", ".model_card.json"))
    proto = onnx.load(str(onnx_path))
    entry = next((e for e in proto.metadata_props if e.key == METADATA_KEY), None)
    if entry is None:
        raise UserError(f"{onnx_path}: no {METADATA_KEY} metadata")
    meta = json.loads(entry.value)
    change = {}
    if args.temperature is not None:
        if not 0.0 <= args.temperature <= 5.0:
            raise UserError(f"--temperature {args.temperature}: expected 0..5")
        change["default_temperature"] = float(args.temperature)
    if args.noise_correlation is not None:
        change["default_noise_correlation"] = check_noise_correlation(args.noise_correlation, "--noise-correlation")
    if args.style_presets is not None:
        change["style_presets"] = load_presets(args.style_presets, meta.get("styles") or [])
    if not change and not (args.quality_json or args.style_json):
        raise UserError("nothing to change or record: give --temperature, --noise-correlation, --style-presets, "
                        "or the benchmark results (--quality-json, --style-json) of the current defaults")
    if change:  # a record alone leaves the model files byte for byte as they are
        meta.update(change)
        entry.value = json.dumps(meta)
        tmp = onnx_path.with_name(f".{onnx_path.name}.tmp")
        onnx.save(proto, str(tmp))
        os.replace(tmp, onnx_path)

        ckpt = torch.load(pt_path, map_location="cpu", weights_only=False)
        ckpt["features"] = {**ckpt["features"], **change}
        tmp = pt_path.with_name(f".{pt_path.name}.tmp")
        torch.save(ckpt, tmp)
        os.replace(tmp, pt_path)

    card = json.loads(card_path.read_text())
    card.update(change)
    record = {"date": time.strftime("%Y-%m-%d"), "change": change, "note": args.note}
    if args.quality_json:
        card["quality"] = record["quality"] = quality_summary(json.loads(args.quality_json.read_text()))
    if args.style_json:
        st = json.loads(args.style_json.read_text())
        record["style"] = {"samples": st.get("samples"), "temperature": st.get("temperature"), "songs": st.get("songs"),
                           "recognised": {k: {"share": v.get("share"), "steered_share": v.get("steered_share")}
                                          for k, v in st.get("recognised", {}).items()},
                           "ratios": {k: v.get("ratios") for k, v in st.get("kinetics", {}).items()},
                           "targets": {k: t["ok"] for k, t in st.get("targets", {}).items()}}
    card.setdefault("sampling_changes", []).append(record)
    write_json_atomic(card_path, card)
    print(json.dumps(change, indent=1))


if __name__ == "__main__":
    main()
