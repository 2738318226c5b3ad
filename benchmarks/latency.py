"""`transflower bench latency`: per-frame latency of the live step, every approach side by side.

Approaches (one row each, per context length):
  original-recompute  torch, the paper-layout (bidirectional) model recomputed over the whole window
                      every frame, as the seed generates (`transflower.models.transflower_paper`'s
                      `step_full_window`). Until that model exists, `causal-recompute`: the causal
                      TransflowerLive recomputed over the whole window every frame (same cost shape).
  torch-kv-cache      torch, `KVCacheRunner.step` (one new token per layer, ring KV cache).
  onnx-kv-cache       the exported step in onnxruntime through the live `DanceEngine` (2 intra-op
                      threads, spinning on: the `transflower live` default); -1t: 1 thread;
                      -nospin: 2 threads with spinning off.
  *-cuda              the same on the GPU, when torch / onnxruntime see one.
Each step includes its host work (noise draw, cache/window update, rotary angles). Models have the
default live model's size and are randomly initialised unless --checkpoint is given (latency does not
depend on the weights). Timing is interleaved: after a warm-up, every approach runs a block of steps
in turn (rotating the order) until each has --steps, so background load hits all rows alike.
"""
from __future__ import annotations

import gc
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from transflower.benchmarks.latency_approaches import OnnxCrowd, OnnxKV, PaperRecompute, TorchKV, TorchRecompute
from transflower.errors import UserError

log = logging.getLogger("transflower.bench.latency")

DEFAULT_OVERRIDES = ["model_config.d_model=192", "model_config.cross_layers=3", "model_config.flow_hidden=192"]
CONTEXTS = [60, 120, 240, 480]


# ---------------------------------------------------------------------------------------------
# Models


def fabricated_features() -> dict:
    """A features.json good enough for export (real skeleton, feature layout; unit scalers)."""
    from transflower.audio_features import AudioFeatureConfig
    from transflower.motion_features import MotionFeatures
    from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton

    rng = np.random.default_rng(0)
    offsets = np.zeros((len(JOINT_NAMES), 3))
    offsets[1:] = rng.normal(size=(len(JOINT_NAMES) - 1, 3)) * 5 + np.array([0, 10, 0])
    skel = Skeleton(JOINT_NAMES, PARENTS, offsets)
    mf, ac = MotionFeatures(skel), AudioFeatureConfig()
    m_mean = np.zeros(mf.dim)
    m_mean[3] = 95.0
    return {"fps": 20.0, "audio_config": ac.to_dict(), "audio_names": ac.names, "motion_names": mf.names,
            "skeleton": skel.to_dict(), "motion_scaler": {"mean": m_mean.tolist(), "std": [1.0] * mf.dim},
            "audio_scaler": {"mean": [0.0] * ac.dim, "std": [1.0] * ac.dim}}


def model_source(checkpoint=None, overrides=None, features_json=None) -> dict:
    """-> {'model_config': dict, 'state_dict': dict | None, 'features': dict, 'source': str}."""
    if checkpoint:
        from transflower.checkpoint import find_features_meta, read_checkpoint

        cfg, state = read_checkpoint(checkpoint)
        if cfg["model"] != "transflower_live":
            raise UserError(f"{checkpoint}: model {cfg['model']!r}; the latency benchmark runs transflower_live")
        try:
            feats = find_features_meta(checkpoint, cfg, features_json)
        except UserError:
            log.warning("no features.json for %s: using a fabricated one (latency does not depend on it)", checkpoint)
            feats = fabricated_features()
        return {"model_config": dict(cfg["model_config"]), "state_dict": state, "features": feats,
                "source": f"checkpoint {checkpoint}"}
    from transflower.train import DEFAULT_CONFIG, load_config

    ov = list(DEFAULT_OVERRIDES if overrides is None else overrides)
    cfg = load_config(DEFAULT_CONFIG, ov)
    feats = fabricated_features()
    mc = dict(cfg["model_config"])
    mc.setdefault("motion_dim", len(feats["motion_names"]))
    mc.setdefault("audio_dim", len(feats["audio_names"]))
    return {"model_config": mc, "state_dict": None, "features": feats,
            "source": f"{DEFAULT_CONFIG.name} + {' '.join(ov) or 'no overrides'}, random init"}


def build_live_model(src: dict, context: int):
    import torch

    from transflower.models import build_model

    mc = dict(src["model_config"], context=context, dropout=0.0)
    torch.manual_seed(0)
    model = build_model("transflower_live", mc)
    if src["state_dict"] is not None:
        model.load_state_dict(src["state_dict"])
    else:
        for s in model.flow.steps:
            s.norm.initialized.fill_(True)
    return model.eval()


def export_for_context(src: dict, context: int, tmp: Path, dynamo: bool = True) -> Path:
    import torch

    from transflower.export.onnx_export import export_onnx

    model = build_live_model(src, context)
    cfg = {"model": "transflower_live", "model_config": model.cfg.to_dict()}
    ckpt = tmp / f"ctx{context}.ckpt"
    torch.save({"hyper_parameters": {"cfg": cfg}, "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, ckpt)
    fpath = tmp / "features.json"
    fpath.write_text(json.dumps(src["features"]))
    out = tmp / f"ctx{context}.onnx"
    t0 = time.time()
    export_onnx(ckpt, out, features_json=fpath, dynamo=dynamo, check=False)
    log.info("exported context %d in %.1f s", context, time.time() - t0)
    return out


def paper_model_available():
    """The paper-layout model class if transflower/models/transflower_paper.py provides step_full_window."""
    try:
        from transflower.models import transflower_paper as tp
    except ImportError:
        return None
    for obj in vars(tp).values():
        if isinstance(obj, type) and hasattr(obj, "step_full_window"):
            return tp, obj
    return None


def summarise(ms: np.ndarray) -> dict:
    return {"steps": int(len(ms)), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "mean_ms": float(ms.mean())}


def time_interleaved(approaches: list, steps: int, warmup: int, block: int = 50) -> dict[str, np.ndarray]:
    for a in approaches:
        for _ in range(warmup):
            a.step()
    times = {a.name: [] for a in approaches}
    perf = time.perf_counter_ns
    r = 0
    while min(len(v) for v in times.values()) < steps:
        order = approaches[r % len(approaches):] + approaches[: r % len(approaches)]
        for a in order:
            t = times[a.name]
            n = min(block, steps - len(t))
            gc.collect()
            for _ in range(n):
                t0 = perf()
                a.step()
                t.append(perf() - t0)
        r += 1
    return {k: np.asarray(v, np.float64) / 1e6 for k, v in times.items()}


def machine_info() -> dict:
    import onnxruntime as ort
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "onnxruntime": ort.__version__,
            "loadavg_at_start": [round(x, 2) for x in load] if load else None}


def run_latency(contexts=None, steps: int = 2000, warmup: int = 100, checkpoint=None, overrides=None, features_json=None,
                main_context: int = 120, gpu: str = "auto", block: int = 50, torch_threads: int = 1, dynamo: bool = True,
                progress=print, partial_json=None) -> dict:
    import onnxruntime as ort
    import torch

    # 1 thread: with another process busy on this 2-core machine, torch's 2-thread pool (OpenMP barriers)
    # made a step 3-60x slower (torch-kv-cache p50 12 -> 31 ms, causal-recompute 28 -> 1700 ms, measured)
    torch.set_num_threads(max(1, torch_threads))

    contexts = list(contexts or CONTEXTS)
    src = model_source(checkpoint, overrides, features_json)
    paper = paper_model_available()
    use_cuda_torch = gpu != "off" and torch.cuda.is_available()
    use_cuda_ort = gpu != "off" and "CUDAExecutionProvider" in ort.get_available_providers() and use_cuda_torch
    info = machine_info()
    progress(f"machine: {info['cpu']}, {info['cores']} cores, load {info['loadavg_at_start']}; model: {src['source']}")
    sweep = []
    # the main context first: a run stopped early still has the rows that matter most
    order = sorted(contexts, key=lambda c: (c != main_context, contexts.index(c)))
    with tempfile.TemporaryDirectory(prefix="tf_bench_") as tmp:
        tmp = Path(tmp)
        for ctx in order:
            progress(f"context {ctx}: exporting ONNX ...")
            onnx_path = export_for_context(src, ctx, tmp, dynamo)
            approaches = []
            if paper is not None:
                try:
                    approaches.append(PaperRecompute(paper[0], paper[1], build_live_model(src, ctx).cfg, ctx))
                    approaches[-1].step()
                except Exception as e:  # an interface that changed must not lose the rest of the benchmark
                    log.warning("paper-layout model unusable (%s: %s); timing causal-recompute instead", type(e).__name__, e)
                    approaches = []
            if not approaches:
                approaches.append(TorchRecompute(build_live_model(src, ctx), ctx))
            approaches.append(TorchKV(build_live_model(src, ctx)))
            approaches.append(OnnxKV(onnx_path, threads=2, name="onnx-kv-cache"))
            approaches.append(OnnxKV(onnx_path, threads=1, name="onnx-kv-cache-1t"))
            approaches.append(OnnxKV(onnx_path, threads=2, spinning=False, name="onnx-kv-cache-nospin"))
            if use_cuda_torch:
                approaches.append(TorchRecompute(build_live_model(src, ctx), ctx, device="cuda", name="recompute-cuda"))
                approaches.append(TorchKV(build_live_model(src, ctx), device="cuda", name="torch-kv-cache-cuda"))
            if use_cuda_ort:
                approaches.append(OnnxKV(onnx_path, threads=2, provider="cuda", name="onnx-kv-cache-cuda"))
            progress(f"context {ctx}: timing {len(approaches)} approaches x {steps} steps (interleaved) ...")
            t0 = time.time()
            times = time_interleaved(approaches, steps, warmup, block)
            base = approaches[0].name
            b = summarise(times[base])
            for a in approaches:
                s = summarise(times[a.name])
                row = {"name": a.name, "context": ctx, **s,
                       "speedup_p50": b["p50_ms"] / s["p50_ms"], "speedup_p99": b["p99_ms"] / s["p99_ms"], "baseline": base}
                if isinstance(a, OnnxKV):
                    row["provider"] = a.model.provider
                sweep.append(row)
            progress(f"context {ctx}: {time.time() - t0:.0f} s")
            del approaches
            gc.collect()
            if partial_json:  # after every context, so an interrupted run keeps what it measured
                Path(partial_json).write_text(json.dumps(_result(sweep, contexts, main_context, steps, warmup, info, src, paper), indent=1))
    return _result(sweep, contexts, main_context, steps, warmup, info, src, paper)


def _result(sweep, contexts, main_context, steps, warmup, info, src, paper) -> dict:
    import os

    sweep = sorted(sweep, key=lambda r: r["context"])
    requested, contexts = list(contexts), [c for c in contexts if any(r["context"] == c for r in sweep)]
    main = [r for r in sweep if r["context"] == main_context] or [r for r in sweep if r["context"] == contexts[0]]
    result = {"benchmark": "latency", "rows": [dict(r) for r in main], "sweep": sweep, "contexts": contexts,
              "contexts_requested": requested, "complete": contexts == requested,
              "main_context": main[0]["context"], "steps_per_row": steps, "warmup": warmup, "machine": info,
              "model": {"source": src["source"], "config": src["model_config"], "paper_layout": paper is not None},
              "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
    result["targets"] = check_targets(result)
    return result


def check_targets(result: dict) -> dict:
    rows = {r["name"]: r for r in result["rows"]}
    onnx = rows.get("onnx-kv-cache")
    base = result["rows"][0]
    if onnx is None:
        return {}
    return {"onnx_p99_under_5ms": {"value_ms": onnx["p99_ms"], "ok": onnx["p99_ms"] < 5.0},
            "onnx_10x_vs_original_p50": {"baseline": base["name"], "context": onnx["context"], "speedup": onnx["speedup_p50"],
                                         "ok": onnx["speedup_p50"] >= 10.0}}


# ---------------------------------------------------------------------------------------------
# Sections beyond the context sweep: a crowd, quantised variants, the paper's full-size model

PAPER_FULL = dict(d_model=800, n_heads=10, motion_layers=2, audio_layers=2, cross_layers=12, ff_mult=4,
                  motion_window=120, audio_window=140, flow_steps=16, flow_hidden=512, dropout=0.0)


def variant_rows(onnx_path: Path, tmp: Path, steps: int, warmup: int, block: int, threads: int, progress=print) -> list[dict]:
    """fp32 / int8 / fp16 of one exported model, timed interleaved, with each variant's output error
    against fp32 over the same teacher-forced 200-frame rollout (same noise, same audio)."""
    from transflower.export.quantize import make_variant
    from transflower.realtime.engine import DanceEngine
    from transflower.realtime.onnx_model import OnnxDanceModel

    paths = {"fp32": Path(onnx_path)}
    for v in ("int8", "fp16"):
        paths[v] = tmp / f"variant_{v}.onnx"
        make_variant(onnx_path, paths[v], v)
    approaches = [OnnxKV(p, threads=threads, name=f"onnx-{v}") for v, p in paths.items()]
    progress(f"variants of {Path(onnx_path).name}: timing {len(approaches)} x {steps} steps ...")
    times = time_interleaved(approaches, steps, warmup, block)
    # fidelity: every variant fed the fp32 engine's own poses (teacher forcing), same noise
    rng = np.random.default_rng(0)
    ref_engine = DanceEngine(OnnxDanceModel(paths["fp32"], provider="cpu", threads=threads), seed=0)
    engines = {v: DanceEngine(OnnxDanceModel(p, provider="cpu", threads=threads), seed=0) for v, p in paths.items() if v != "fp32"}
    audio = np.repeat(ref_engine.silence[None], 200, axis=0) + rng.standard_normal((200, ref_engine.audio_dim)).astype(np.float32) * 5
    std = ref_engine.m_std
    err = {v: [] for v in engines}
    for i in range(200):
        noise = rng.standard_normal(ref_engine.motion_dim).astype(np.float32)
        prev = ref_engine.pose.copy()
        ref = ref_engine.step(audio[i], noise=noise).copy()
        for v, e in engines.items():
            e.pose[:] = prev
            err[v].append(np.abs((e.step(audio[i], noise=noise) - ref) / std).max())
    base = summarise(times["onnx-fp32"])
    rows = []
    for v, a in zip(paths, approaches):
        s = summarise(times[a.name])
        rows.append({"name": a.name, "section": "variants", "model": str(onnx_path), "bytes": paths[v].stat().st_size, **s,
                     "speedup_p50": base["p50_ms"] / s["p50_ms"],
                     "max_err_std": float(np.max(err[v])) if v in err else 0.0,
                     "mean_err_std": float(np.mean(err[v])) if v in err else 0.0})
    return rows


def crowd_rows(src: dict, context: int, dancers: list[int], tmp: Path, steps: int, warmup: int, block: int, threads: int,
               progress=print) -> list[dict]:
    path = export_for_context(src, context, tmp)  # `transflower export` declares a dynamic batch axis
    rows = []
    for n in dancers:  # one size at a time: a 64-dancer step is not worth interleaving with a 1-dancer one
        a = OnnxCrowd(path, n, threads=threads)
        progress(f"crowd of {n}: timing {steps} steps ...")
        s = summarise(time_interleaved([a], steps, warmup, block)[a.name])
        rows.append({"name": a.name, "section": "crowd", "context": context, "dancers": n, **s,
                     "per_dancer_p50_ms": s["p50_ms"] / n, "per_dancer_p99_ms": s["p99_ms"] / n,
                     "max_dancers_20fps_p99": int(50.0 // (s["p99_ms"] / n)) if s["p99_ms"] > 0 else None})
    return rows


def paper_full_row(steps: int, warmup: int, progress=print) -> dict | None:
    """The paper's full-size model (FIELD_NOTES: width 800, 10 heads, 2+2+12 layers, 120/140 windows),
    randomly initialised, recomputing its windows every frame as the seed generates."""
    import torch

    paper = paper_model_available()
    if paper is None:
        return None
    tp, cls = paper
    from transflower.audio_features import AudioFeatureConfig

    feats = fabricated_features()
    cfg = tp.TransflowerPaperConfig(motion_dim=len(feats["motion_names"]), audio_dim=AudioFeatureConfig().dim, **PAPER_FULL)
    torch.manual_seed(0)
    model = cls(cfg).eval()
    params = sum(p.numel() for p in model.parameters())
    a = PaperRecompute(tp, cls, None, cfg.motion_window, name="original-recompute-fullsize", model=model)
    progress(f"paper full size ({params / 1e6:.0f}M parameters): timing {steps} steps ...")
    s = summarise(time_interleaved([a], steps, warmup, 10)[a.name])
    return {"name": a.name, "section": "paper-full", "parameters": int(params), "config": PAPER_FULL, **s}


def run_sections(dancers=None, variants_of=None, paper_full: bool = False, steps: int = 300, warmup: int = 20,
                 block: int = 50, threads: int = 1, main_context: int = 120, checkpoint=None, overrides=None,
                 features_json=None, torch_threads: int = 1, progress=print) -> dict:
    import torch

    torch.set_num_threads(max(1, torch_threads))
    info = machine_info()
    progress(f"machine: {info['cpu']}, {info['cores']} cores, load {info['loadavg_at_start']}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tf_bench_") as tmp:
        tmp = Path(tmp)
        if variants_of:
            rows += variant_rows(Path(variants_of), tmp, steps, warmup, block, threads, progress)
        if dancers:
            src = model_source(checkpoint, overrides, features_json)
            rows += crowd_rows(src, main_context, dancers, tmp, steps, warmup, block, threads, progress)
        if paper_full:
            r = paper_full_row(min(steps, 300), min(warmup, 5), progress)
            if r is None:
                progress("no paper-layout model (transflower/models/transflower_paper.py): no full-size row")
            else:
                rows.append(r)
    import os

    return {"benchmark": "latency-sections", "rows": rows, "machine": info, "steps_per_row": steps, "threads": threads,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}


def format_sections(res: dict) -> str:
    lines = []
    for sec, head in (("variants", "| variant | MB | p50 ms | p99 ms | max ms | speedup p50 | max err (std) | mean err (std) |"),
                      ("crowd", "| dancers | step p50 ms | step p99 ms | max ms | per dancer p50 ms | per dancer p99 ms |"),
                      ("paper-full", "| row | parameters | p50 ms | p99 ms | max ms |")):
        rs = [r for r in res["rows"] if r["section"] == sec]
        if not rs:
            continue
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for r in rs:
            if sec == "variants":
                lines.append(f"| {r['name']} | {r['bytes'] / 1e6:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | "
                             f"{r['speedup_p50']:.2f}x | {r['max_err_std']:.3f} | {r['mean_err_std']:.4f} |")
            elif sec == "crowd":
                lines.append(f"| {r['dancers']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | "
                             f"{r['per_dancer_p50_ms']:.3f} | {r['per_dancer_p99_ms']:.3f} |")
            else:
                lines.append(f"| {r['name']} | {r['parameters'] / 1e6:.1f}M | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Output


def format_table(result: dict) -> str:
    lines = ["| approach | context | p50 ms | p99 ms | max ms | speedup p50 | speedup p99 |", "|---|---|---|---|---|---|---|"]
    for r in result["sweep"]:
        lines.append(f"| {r['name']} | {r['context']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | "
                     f"{r['speedup_p50']:.1f}x | {r['speedup_p99']:.1f}x |")
    for k, t in result.get("targets", {}).items():
        lines.append(f"target {k}: {'PASS' if t['ok'] else 'FAIL'} ({', '.join(f'{a}={b:.3g}' if isinstance(b, float) else f'{a}={b}' for a, b in t.items() if a != 'ok')})")
    return "\n".join(lines)


def plot(result: dict, out_png) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(dict.fromkeys(r["name"] for r in result["sweep"]))
    for i, n in enumerate(names):
        rs = [r for r in result["sweep"] if r["name"] == n]
        x = [r["context"] for r in rs]
        color = f"C{i}"
        ax.plot(x, [r["p50_ms"] for r in rs], "o-", color=color, label=f"{n} p50")
        ax.plot(x, [r["p99_ms"] for r in rs], "x--", color=color, alpha=0.6, label=f"{n} p99")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(result["contexts"], [str(c) for c in result["contexts"]])
    ax.set_xlabel("context (frames)")
    ax.set_ylabel("step latency (ms)")
    ax.axhline(50.0, color="grey", lw=0.8, ls=":")
    ax.text(result["contexts"][0], 52, "frame budget at 20 fps", fontsize=7, color="grey")
    ax.set_title(f"live step latency ({result['machine']['cores']} cores: {result['machine']['cpu'][:40]})", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)


def configure_parser(p) -> None:
    p.add_argument("--contexts", type=int, nargs="+", default=None, help="context lengths to sweep (default 60 120 240 480; "
                   "with --dancers / --variants / --paper-full, no sweep unless given)")
    p.add_argument("--dancers", help="crowd rows: comma-separated crowd sizes, e.g. 1,4,16,64 (one batched step each)")
    p.add_argument("--variants", nargs="?", const="default", metavar="MODEL.onnx",
                   help="fp32 / int8 / fp16 rows of an exported model (default: the shipped model), with output error")
    p.add_argument("--paper-full", action="store_true", help="the paper's full-size model (122M parameters) recomputing its window every frame")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads of the --dancers / --variants rows (default 1)")
    p.add_argument("--steps", type=int, default=2000, help="timed steps per approach and context (default 2000)")
    p.add_argument("--warmup", type=int, default=100, help="untimed steps first (default 100)")
    p.add_argument("--block", type=int, default=50, help="steps per interleaved block (default 50)")
    p.add_argument("--checkpoint", help="take the model (sizes and weights) from this checkpoint")
    p.add_argument("--features", help="features.json for --checkpoint (default: found via the run)")
    p.add_argument("--override", "-o", nargs="*", default=None, metavar="SECTION.KEY=VALUE",
                   help=f"config overrides on the default YAML (default: the default run's: {' '.join(DEFAULT_OVERRIDES)})")
    p.add_argument("--main-context", type=int, default=120, help="context of the JSON's `rows` (default 120)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads for the torch rows (default 1)")
    p.add_argument("--legacy-export", action="store_true", help="export with the TorchScript exporter (faster to export; default dynamo, as shipped)")
    p.add_argument("--gpu", choices=["auto", "off"], default="auto", help="also time on the GPU when there is one")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--plot", help="write latency vs context here (PNG)")


def run(args) -> int:
    sections = args.dancers or args.variants or args.paper_full
    if sections:
        try:
            dancers = [int(x) for x in args.dancers.split(",")] if args.dancers else None
        except ValueError:
            raise UserError(f"--dancers {args.dancers}: expected comma-separated crowd sizes, e.g. 1,4,16,64") from None
        if dancers and min(dancers) < 1:
            raise UserError(f"--dancers {args.dancers}: sizes must be >= 1")
        variants_of = None
        if args.variants:
            from transflower.realtime.onnx_model import default_model_path

            variants_of = default_model_path() if args.variants == "default" else Path(args.variants)
            if not Path(variants_of).is_file():
                raise UserError(f"--variants {variants_of}: model file not found")
        res = run_sections(dancers, variants_of, args.paper_full, args.steps, args.warmup, args.block, args.threads,
                           args.main_context, args.checkpoint, args.override, args.features, args.torch_threads)
        print(format_sections(res))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(res, indent=1))
            print(f"wrote {args.json}")
        if args.contexts is None:
            return 0
    args.contexts = args.contexts or CONTEXTS
    if args.steps < 1 or any(c < 2 for c in args.contexts):
        raise UserError("--steps must be >= 1 and every --contexts value >= 2")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    res = run_latency(args.contexts, args.steps, args.warmup, args.checkpoint, args.override, args.features,
                      args.main_context, args.gpu, args.block, args.torch_threads, not args.legacy_export,
                      partial_json=args.json)
    print(format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {plot(res, args.plot)}")
    return 0
