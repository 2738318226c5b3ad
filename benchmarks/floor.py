"""`transflower bench floor`: what one live step must cost at least, on this CPU.

- Work of one step, counted from the model's parameter shapes and cache sizes (batch 1): every Linear
  weight is used once (a matrix-vector product: 2 FLOPs per weight), attention reads C = context - 1
  cached keys and values per layer (2 x 2 x d x (C + 1) FLOPs per layer), each flow step's 1x1 mixing
  matrix D x D. Bytes: float32 weights + the K/V cache read once + the new K/V written.
- This CPU, measured with numpy: peak matmul GFLOP/s (square float32 GEMM), matrix-vector GFLOP/s
  at the model's own shapes (batch 1: what a step really does), memory bandwidth from DRAM (a 256 MB
  copy) and from cache (a copy of the model's size).
- onnxruntime's own per-run overhead: an Identity graph on one float, and an Identity graph with the
  live step's 8 inputs / 3 outputs at their real shapes (1 and 2 threads).
- Floor = max(FLOPs / matvec rate, bytes / cached bandwidth) (what a perfect kernel would need) + ORT overhead.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from transflower.errors import UserError


def step_cost(model) -> dict:
    """FLOPs and bytes of one live step of a TransflowerLive (counted from its modules)."""
    import torch.nn as nn

    from transflower.models.flows import InvertibleLinear

    c = model.cfg
    C = c.context - 1
    lin = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    mix = sum(m.lower.numel() for m in model.modules() if isinstance(m, InvertibleLinear))
    attn = c.n_layers * 2 * c.d_model * (C + 1)  # q.k over C+1 keys and att @ v, per layer (MACs)
    params = sum(p.numel() for p in model.parameters())
    cache = 2 * c.n_layers * C * c.d_model
    return {"params": params, "macs_linear": lin, "macs_flow_mix": mix, "macs_attention": attn,
            "flops": 2 * (lin + mix + attn), "weight_bytes": 4 * params, "cache_bytes": 4 * cache,
            "bytes": 4 * (params + cache + 2 * c.n_layers * c.d_model), "linear_shapes": linear_shapes(model)}


def linear_shapes(model) -> list[tuple[int, int]]:
    import torch.nn as nn

    return [(m.out_features, m.in_features) for m in model.modules() if isinstance(m, nn.Linear)]


def _best(fn, repeats: int, min_time: float = 0.2) -> float:
    """Best-of (median of fastest third) seconds per call."""
    t = []
    t_end = time.perf_counter() + min_time
    while len(t) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
        if len(t) > 50 * repeats:
            break
    t = np.sort(np.asarray(t))
    return float(np.median(t[: max(1, len(t) // 3)]))


def cpu_rates(shapes, quick: bool = False) -> dict:
    rng = np.random.default_rng(0)
    n = 512 if quick else 1024
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    t = _best(lambda: a @ b, 3)
    gemm = 2 * n ** 3 / t / 1e9
    ws = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    xs = [rng.standard_normal(s[1], dtype=np.float32) for s in shapes]
    flops = 2 * sum(o * i for o, i in shapes)
    t_mv = _best(lambda: [w @ x for w, x in zip(ws, xs)], 20)
    big = (32 if quick else 256) * 2 ** 20 // 4
    src, dst = np.ones(big, np.float32), np.empty(big, np.float32)
    t_big = _best(lambda: np.copyto(dst, src), 3)
    small_n = max(1024, sum(o * i for o, i in shapes))
    s_src, s_dst = np.ones(small_n, np.float32), np.empty(small_n, np.float32)
    t_small = _best(lambda: np.copyto(s_dst, s_src), 20)
    return {"gemm_gflops": gemm, "gemm_n": n, "matvec_gflops": flops / t_mv / 1e9, "matvec_step_ms": t_mv * 1e3,
            "matvec_count": len(shapes), "dram_gb_s": 2 * big * 4 / t_big / 1e9,
            "cached_gb_s": 2 * small_n * 4 / t_small / 1e9, "cached_bytes": small_n * 4}


def identity_graph(inputs: dict[str, tuple]) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    ins, outs, nodes = [], [], []
    for name, shape in inputs.items():
        ins.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        outs.append(helper.make_tensor_value_info(name + "_out", TensorProto.FLOAT, list(shape)))
        nodes.append(helper.make_node("Identity", [name], [name + "_out"]))
    g = helper.make_graph(nodes, "identity", ins, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


def ort_overhead(cfg, runs: int = 3000) -> dict:
    import onnxruntime as ort

    C = cfg.context - 1
    step_inputs = {"motion": (1, cfg.motion_dim), "audio": (1, cfg.audio_dim), "rope_cos": (cfg.head_dim // 2,),
                   "rope_sin": (cfg.head_dim // 2,), "cache_k": (cfg.n_layers, 1, C, cfg.n_heads, cfg.head_dim),
                   "cache_v": (cfg.n_layers, 1, C, cfg.n_heads, cfg.head_dim), "cache_bias": (1, C), "noise": (1, cfg.motion_dim)}
    out = {}
    for label, spec in (("one_float", {"x": (1,)}), ("step_io", step_inputs)):
        model = identity_graph(spec)
        feeds = {k: np.zeros(s, np.float32) for k, s in spec.items()}
        for threads in (1, 2):
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.log_severity_level = 3
            sess = ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
            for _ in range(100):
                sess.run(None, feeds)
            t = np.empty(runs)
            for i in range(runs):
                t0 = time.perf_counter_ns()
                sess.run(None, feeds)
                t[i] = time.perf_counter_ns() - t0
            t /= 1e3
            out[f"{label}_{threads}t"] = {"p50_us": float(np.percentile(t, 50)), "p99_us": float(np.percentile(t, 99))}
    return out


def run_floor(checkpoint=None, overrides=None, context: int = 120, quick: bool = False, latency_json=None) -> dict:
    from transflower.benchmarks.latency import build_live_model, machine_info, model_source

    src = model_source(checkpoint, overrides)
    model = build_live_model(src, context)
    cost = step_cost(model)
    rates = cpu_rates(cost["linear_shapes"], quick)
    ort_o = ort_overhead(model.cfg, runs=500 if quick else 3000)
    t_flops = cost["flops"] / (rates["matvec_gflops"] * 1e9) * 1e3
    t_bytes = cost["bytes"] / (rates["cached_gb_s"] * 1e9) * 1e3
    t_bytes_dram = cost["bytes"] / (rates["dram_gb_s"] * 1e9) * 1e3
    t_peak = cost["flops"] / (rates["gemm_gflops"] * 1e9) * 1e3
    overhead_ms = ort_o["step_io_2t"]["p50_us"] / 1e3
    floor_ms = max(t_flops, t_bytes) + overhead_ms
    rows = [
        {"name": "step FLOPs", "value": cost["flops"], "unit": "FLOP"},
        {"name": "step bytes (weights + KV cache)", "value": cost["bytes"], "unit": "B"},
        {"name": "parameters", "value": cost["params"], "unit": ""},
        {"name": "CPU GEMM peak", "value": rates["gemm_gflops"], "unit": "GFLOP/s"},
        {"name": "CPU matvec at the model's shapes", "value": rates["matvec_gflops"], "unit": "GFLOP/s"},
        {"name": "memory bandwidth, DRAM copy", "value": rates["dram_gb_s"], "unit": "GB/s"},
        {"name": "memory bandwidth, model-sized copy", "value": rates["cached_gb_s"], "unit": "GB/s"},
        {"name": "time at GEMM peak", "value": t_peak, "unit": "ms"},
        {"name": "time at matvec rate", "value": t_flops, "unit": "ms"},
        {"name": "time to stream bytes (cached)", "value": t_bytes, "unit": "ms"},
        {"name": "time to stream bytes (DRAM)", "value": t_bytes_dram, "unit": "ms"},
        {"name": "numpy: the step's matvecs back to back", "value": rates["matvec_step_ms"], "unit": "ms"},
    ]
    for k, v in ort_o.items():
        rows.append({"name": f"onnxruntime empty run ({k.replace('_', ' ')})", "value": v["p50_us"] / 1e3, "p99": v["p99_us"] / 1e3, "unit": "ms"})
    rows.append({"name": "floor = max(matvec, bytes) + ORT overhead", "value": floor_ms, "unit": "ms"})
    res = {"benchmark": "floor", "context": context, "model": {"source": src["source"], "config": model.cfg.to_dict()},
           "cost": {k: v for k, v in cost.items() if k != "linear_shapes"}, "cpu": rates, "ort_overhead": ort_o,
           "floor_ms": floor_ms, "rows": rows, "machine": machine_info()}
    if latency_json:
        lat = json.loads(Path(latency_json).read_text())
        for r in lat.get("sweep", lat.get("rows", [])):
            if r["context"] == context:
                rows.append({"name": f"measured {r['name']} p50 (x floor)", "value": r["p50_ms"], "unit": "ms",
                             "x_floor": r["p50_ms"] / floor_ms})
    return res


def format_table(res: dict) -> str:
    lines = ["| quantity | value | unit |", "|---|---|---|"]
    for r in res["rows"]:
        v = r["value"]
        s = f"{v:.3g}" if isinstance(v, float) else f"{v:,}"
        if "p99" in r:
            s += f" (p99 {r['p99']:.3g})"
        if "x_floor" in r:
            s += f" ({r['x_floor']:.1f}x floor)"
        lines.append(f"| {r['name']} | {s} | {r['unit']} |")
    return "\n".join(lines)


def configure_parser(p) -> None:
    p.add_argument("--checkpoint", help="take the model from this checkpoint (default: the default YAML + overrides)")
    p.add_argument("--override", "-o", nargs="*", default=None, metavar="SECTION.KEY=VALUE",
                   help="config overrides (default: the default run's d_model=192 cross_layers=3 flow_hidden=192)")
    p.add_argument("--context", type=int, default=120, help="context length (default 120)")
    p.add_argument("--quick", action="store_true", help="smaller measurements (for tests)")
    p.add_argument("--latency-json", help="a `bench latency --json` file to compare measured steps with the floor")
    p.add_argument("--json", help="write the results here")


def run(args) -> int:
    if args.context < 2:
        raise UserError("--context must be >= 2")
    res = run_floor(args.checkpoint, args.override, args.context, args.quick, args.latency_json)
    print(format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    return 0
