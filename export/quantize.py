"""`transflower quantize MODEL.onnx OUT.onnx --variant int8|fp16`: smaller / faster variants of an exported model.

- int8: onnxruntime dynamic quantisation of the weights (activations quantised at run time), QUInt8 with
  reduce_range: signed QInt8 weights gave 20-40% output error on AVX2 CPUs without VNNI (FIELD_NOTES),
  QUInt8 / reduce_range ~2-5% at about half the latency. For CPUs. Only the transformer's matrices by
  default (80% of the weights): the flow's stay float32 (`--quantize-flow` to include them).
- fp16: weights and activations in float16 with float32 inputs/outputs kept (the engine binds float32
  buffers); for GPUs: onnxruntime's CPU provider runs much of it through casts, usually slower there.

The transflower metadata is carried over with `"variant"` added, so `transflower live --model OUT.onnx`
and `transflower bench latency --variants` take the file as they take the original. Written atomically.
Whether a variant may ship is a quality question: `transflower bench quality --models NAME=OUT.onnx`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from transflower.errors import UserError

log = logging.getLogger("transflower.quantize")
VARIANTS = ("int8", "fp16")
METADATA_KEY = "transflower"


def flow_nodes(proto) -> list[str]:
    """The nodes that multiply by a flow weight (initializer names keep the module path, `flow.`). A Gemm is
    listed twice: quantize_dynamic first splits it into `<name>_MatMul` + Add, then checks the exclusions."""
    weights = {i.name for i in proto.graph.initializer if "flow" in i.name}
    nodes = [n for n in proto.graph.node if any(x in weights for x in n.input)]
    return [n.name for n in nodes] + [f"{n.name}_MatMul" for n in nodes if n.op_type == "Gemm"]


def make_variant(model_path, out_path, variant: str, quantize_flow: bool = False) -> dict:
    import onnx

    model_path, out_path = Path(model_path), Path(out_path)
    if variant not in VARIANTS:
        raise UserError(f"--variant {variant!r}: expected one of {list(VARIANTS)}")
    if not model_path.is_file():
        raise UserError(f"{model_path}: model file not found")
    try:
        proto = onnx.load(str(model_path))
    except Exception as e:  # noqa: BLE001  a garbage file
        raise UserError(f"{model_path}: not a loadable ONNX model ({type(e).__name__})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise UserError(f"{model_path}: an ONNX file without transflower metadata; export one with `transflower export`")
    meta = json.loads(props[METADATA_KEY])
    if meta.get("variant", "fp32") != "fp32":
        raise UserError(f"{model_path}: already the {meta['variant']} variant; quantise the fp32 export")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=str(out_path.parent))
    os.close(fd)
    try:
        if variant == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            flow = flow_nodes(proto) if not quantize_flow else []
            quantize_dynamic(str(model_path), tmp, weight_type=QuantType.QUInt8, reduce_range=True,
                             nodes_to_exclude=flow)
            q = onnx.load(tmp)
        else:
            from onnxruntime.transformers.float16 import convert_float_to_float16

            q = convert_float_to_float16(proto, keep_io_types=True)
        meta["variant"] = variant
        meta["variant_of"] = model_path.name
        if variant == "int8":
            meta["int8_flow"] = bool(quantize_flow)
        del q.metadata_props[:]
        for k, v in props.items():
            e = q.metadata_props.add()
            e.key, e.value = k, json.dumps(meta) if k == METADATA_KEY else v
        onnx.save(q, tmp)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"variant": variant, "onnx": str(out_path), "bytes": out_path.stat().st_size,
            "fp32_bytes": model_path.stat().st_size}


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an exported (fp32) .onnx model")
    p.add_argument("out", help="the variant's .onnx file to write (atomically)")
    p.add_argument("--variant", choices=VARIANTS, required=True, help="int8: dynamic quantisation for CPUs; fp16: for GPUs")
    p.add_argument("--quantize-flow", action="store_true",
                   help="int8: quantise the flow's coupling nets too (default: only the transformer; the flow's "
                        "outputs are exponentiated scales, where int8 error shows as jerk)")


def run(args) -> int:
    print(json.dumps(make_variant(args.model, args.out, args.variant, quantize_flow=args.quantize_flow), indent=1))
    return 0
