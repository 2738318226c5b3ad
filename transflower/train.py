"""`transflower train CONFIG --data DIR --out RUN_DIR`: PyTorch Lightning training, resumable, DDP-ready.

- Config as data: a YAML file (see transflower/hparams/), every value overridable with
  `--override section.key=value` (parsed as YAML, so numbers and lists work). The architecture is in
  `model_config`; what training adds to the loss is in `training_terms`, plug-ins with their own
  parameters (transflower/models/training_terms.py; `--override training_terms.music_swap.p=0.3`).
- Resume after a kill: checkpoints are written atomically every `checkpoint_every_steps` to
  RUN_DIR/checkpoints/last.ckpt; re-running the same command picks it up.
- Scale-out: `training.devices`, `training.num_nodes`, `training.strategy=ddp` go straight to
  Lightning (gloo on CPU, nccl on GPU). Multi-node: run the same command on every node with
  MASTER_ADDR, MASTER_PORT, NODE_RANK and WORLD_SIZE set (torchrun-style; see README).
- Logs: TensorBoard (RUN_DIR/tb) and RUN_DIR/metrics.csv (appended across resumes) with train/val NLL;
  `curves.png` at the end.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import yaml

from transflower.atomic import write_json_atomic
from transflower.errors import UserError

log = logging.getLogger("transflower.train")
DEFAULT_CONFIG = Path(__file__).parent / "hparams" / "transflower_live.yaml"
CONFIG_SECTIONS = {"model", "model_config", "training_terms", "data", "training"}


# ---------------------------------------------------------------------------------------------
# Configuration


def load_config(path, overrides: list[str] | None = None) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: config file not found (the default is {DEFAULT_CONFIG})")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{path}: expected a mapping with sections {sorted(CONFIG_SECTIONS)}")
    unknown = set(cfg) - CONFIG_SECTIONS
    if unknown:
        raise UserError(f"{path}: unknown sections {sorted(unknown)}; expected {sorted(CONFIG_SECTIONS)}")
    base = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for section in ("data", "training"):
        merged = dict(base[section])
        extra = set(cfg.get(section) or {}) - set(merged)
        if extra:
            raise UserError(f"{path}: unknown keys in {section}: {sorted(extra)}; expected some of {sorted(merged)}")
        merged.update(cfg.get(section) or {})
        cfg[section] = merged
    cfg.setdefault("model_config", {})
    from transflower.models.training_terms import build_training_terms, migrate_config

    cfg = migrate_config(cfg)  # a YAML of the older layout: its training keys move out of model_config
    for ov in overrides or []:
        apply_override(cfg, ov)
    build_training_terms(cfg["training_terms"])  # names and parameters checked before any data is read
    validate_training(cfg["training"], cfg["data"])
    return cfg


def apply_override(cfg: dict, override: str) -> None:
    if "=" not in override or "." not in override.split("=", 1)[0]:
        raise UserError(f"--override {override!r}: expected section.key=value, e.g. training.max_steps=500")
    key, value = override.split("=", 1)
    section, name = key.split(".", 1)
    if section not in CONFIG_SECTIONS - {"model"}:
        raise UserError(f"--override {override!r}: unknown section {section!r}; expected one of model_config, training_terms, data, training")
    if section in ("data", "training") and name not in cfg[section]:
        raise UserError(f"--override {override!r}: unknown key {name!r} in {section}; expected one of {sorted(cfg[section])}")
    from transflower.models.training_terms import LEGACY_KEYS, LEGACY_MODELS

    if section == "model_config" and name in LEGACY_KEYS and cfg.get("model") in LEGACY_MODELS:
        section, name = "training_terms", ".".join(LEGACY_KEYS[name])
        log.warning("--override %s: a training term now, read as training_terms.%s", key, name)
    if section == "training_terms":  # TERM=mapping or null (off), or TERM.PARAMETER=value (turns the term on)
        terms = cfg.setdefault("training_terms", {})
        term, _, param = name.partition(".")
        if not param:
            terms[term] = yaml.safe_load(value)
            return
        if not isinstance(terms.get(term), dict):
            terms[term] = {}
        terms[term][param] = yaml.safe_load(value)
        return
    cfg[section][name] = yaml.safe_load(value)


def validate_training(t: dict, d: dict) -> None:
    checks = [("training.batch_size", t["batch_size"], 1), ("training.max_steps", t["max_steps"], 1),
              ("data.seq_len", d["seq_len"], 2), ("data.stride", d["stride"], 1),
              ("training.val_every_steps", t["val_every_steps"], 1), ("training.checkpoint_every_steps", t["checkpoint_every_steps"], 1)]
    for name, value, lo in checks:
        if not isinstance(value, int) or value < lo:
            raise UserError(f"{name}: expected an integer >= {lo}, got {value!r}")
    if not (isinstance(t["lr"], (int, float)) and 0 < t["lr"] < 1):
        raise UserError(f"training.lr: expected a number in (0, 1), got {t['lr']!r}")


def style_indices(values, names: list[str], field: str) -> list[int]:
    """Style names (or indices already resolved, as a run's saved config.yaml holds them) -> the data's
    label indices; names[0] is "auto", which no list may name."""
    unknown = [v for v in values if not (v in names[1:] or (isinstance(v, int) and 1 <= v < len(names)))]
    if unknown:
        raise UserError(f"{field}: {unknown} not among the data's styles {names[1:]}")
    return [v if isinstance(v, int) else names.index(v) for v in values]


def data_hash(data_dir: Path, ids: list[str], modalities: list[str]) -> str:
    h = hashlib.sha256()
    for seq_id in sorted(ids):
        for m in sorted(modalities):
            h.update((data_dir / f"{seq_id}.{m}.npy").read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Lightning module and callbacks (built lazily: torch is imported inside functions)


def build_lightning_module(cfg: dict, dims: dict):
    import lightning as L
    import torch

    from transflower.models import build_model
    from transflower.models.training_terms import build_training_terms

    class LitDance(L.LightningModule):
        def __init__(self, cfg: dict):
            super().__init__()
            self.save_hyperparameters({"cfg": cfg})
            self.cfg = cfg
            self.model = build_model(cfg["model"], cfg["model_config"])
            self.terms = build_training_terms(cfg.get("training_terms"), self.model)

        def training_step(self, batch, batch_idx):
            inputs, outputs = batch
            # the model's NLL with the YAML's training terms; what is logged: the NLL and each added loss apart
            loss, terms = self.terms.loss(self.model, inputs, outputs)
            self.last_train_nll = terms["nll"]  # a tensor: no device sync unless the CSV reads it
            for name, value in terms.items():
                self.log(f"train/{name}", value, prog_bar=True, on_step=True, batch_size=inputs[0].shape[0])
            return loss

        def validation_step(self, batch, batch_idx):
            inputs, outputs = batch
            loss = self.model.loss(inputs, outputs)  # the model alone: every training term is inert in eval mode
            self.log("val/nll", loss, prog_bar=True, on_epoch=True, sync_dist=True, batch_size=inputs[0].shape[0])

        def configure_optimizers(self):
            t = self.cfg["training"]
            opt = torch.optim.AdamW(self.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])
            warm, total = t["warmup_steps"], t["max_steps"]

            def lr_at(step):  # linear warm-up, then cosine decay to 10%
                if step < warm:
                    return (step + 1) / max(1, warm)
                p = min(1.0, (step - warm) / max(1, total - warm))
                return 0.1 + 0.9 * 0.5 * (1 + __import__("math").cos(__import__("math").pi * p))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    model_cfg = cfg["model_config"]
    model_cfg.setdefault("motion_dim", dims["motion"])
    if "audio" in dims:
        model_cfg.setdefault("audio_dim", dims["audio"])
    return LitDance(cfg)


def make_metrics_csv_callback(path: Path, every: int):
    """Appends step, train NLL and validation NLL to a CSV that survives resumes (Lightning's CSVLogger
    starts its file over); rows past the resumed step (logged after the last checkpoint) are dropped."""
    import lightning as L

    class MetricsCsv(L.Callback):
        def on_train_start(self, trainer, pl_module):  # after a checkpoint is restored
            if trainer.global_rank != 0:
                return
            rows = path.read_text().splitlines()[1:] if path.exists() else []
            keep = [r for r in rows if r and int(r.split(",")[0]) <= trainer.global_step]
            path.write_text("step,train/nll,val/nll\n" + "".join(r + "\n" for r in keep))

        def _append(self, trainer, train="", val=""):
            if trainer.global_rank == 0:
                with open(path, "a") as f:
                    f.write(f"{trainer.global_step},{train},{val}\n")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step % every == 0:
                self._append(trainer, train=f"{float(pl_module.last_train_nll):.6f}")

        def on_validation_end(self, trainer, pl_module):
            val = trainer.callback_metrics.get("val/nll")
            if val is not None and not trainer.sanity_checking:
                self._append(trainer, val=f"{float(val):.6f}")

    return MetricsCsv()


def make_atomic_checkpoint_callback(ckpt_dir: Path, every: int, keep_every: int = 0):
    import lightning as L

    class AtomicCheckpoint(L.Callback):
        """Writes last.ckpt every `every` steps and at the end: temp file + os.replace, never half a file."""

        def __init__(self):
            self.best = float("inf")

        def _save(self, trainer, name):
            # save_checkpoint is collective under DDP: every rank calls it, rank 0 writes the file
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_dir / f".{name}.tmp"
            trainer.save_checkpoint(str(tmp))
            if trainer.global_rank == 0:
                os.replace(tmp, ckpt_dir / name)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step % every == 0:
                self._save(trainer, "last.ckpt")
            if keep_every and trainer.global_step % keep_every == 0:  # snapshots to choose from by held-out kinetics
                self._save(trainer, f"step_{trainer.global_step:06d}.ckpt")

        def on_validation_end(self, trainer, pl_module):
            if trainer.sanity_checking:
                return
            val = trainer.callback_metrics.get("val/nll")
            if val is not None and float(val) < self.best:
                self.best = float(val)
                self._save(trainer, "best.ckpt")

        def on_train_end(self, trainer, pl_module):
            self._save(trainer, "last.ckpt")

        def state_dict(self):
            return {"best": self.best}

        def load_state_dict(self, state):
            self.best = state.get("best", float("inf"))

    return AtomicCheckpoint()


# ---------------------------------------------------------------------------------------------
# Entry point


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG), help=f"YAML config (default: {DEFAULT_CONFIG.name})")
    p.add_argument("--data", required=True, help="feature folder written by `transflower features`")
    p.add_argument("--out", required=True, help="run folder: checkpoints, logs, model card; re-run to resume")
    p.add_argument("--override", "-o", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. training.max_steps=500 model_config.d_model=128")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out and start over")


def run(args) -> int:
    cfg = load_config(args.config, args.override)
    return train(cfg, Path(args.data), Path(args.out), resume=not args.fresh)


def train(cfg: dict, data_dir: Path, out_dir: Path, resume: bool = True) -> int:
    import lightning as L
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger

    from transflower.dataset import MultimodalDataset
    from transflower.models import build_model
    from transflower.models.training_terms import TERMS, build_training_terms, migrate_config

    cfg = migrate_config(cfg)  # a copy, in the current layout
    t, d = cfg["training"], cfg["data"]
    if not data_dir.is_dir():
        raise UserError(f"--data {data_dir}: not a folder; run `transflower features` to make one")
    L.seed_everything(t["seed"], workers=True)
    torch.set_num_threads(t.get("torch_threads") or max(1, torch.get_num_threads()))  # 0: torch's default

    feat_meta_path = data_dir / "features.json"
    feat_meta = json.loads(feat_meta_path.read_text()) if feat_meta_path.exists() else {}
    if cfg["model_config"].get("styles") == "auto":  # the data's style labels, if it has any
        cfg["model_config"]["styles"] = len(feat_meta.get("styles") or [])
    build_training_terms(cfg["training_terms"])  # a mapping of known terms, their parameters in range
    for term, params in cfg["training_terms"].items():
        for key in TERMS[term].style_params:
            if isinstance(params, dict) and params.get(key):  # the model knows label indices only
                params[key] = style_indices(params[key], list(feat_meta.get("styles") or []), f"training_terms.{term}.{key}")
    # the window spec comes from the model, so data and model cannot disagree
    probe = build_model(cfg["model"], {**cfg["model_config"], "motion_dim": 1, "audio_dim": 1})
    build_training_terms(cfg["training_terms"], probe)  # what the terms need of the model, before any data is read
    spec = probe.window_spec(d["seq_len"])
    train_set = MultimodalDataset(data_dir, "train", spec, stride=d["stride"],
                                  tempo_splice=float(d.get("tempo_splice") or 0.0), seed=t["seed"],
                                  tempo_splices=int(d.get("tempo_splices") or 1),
                                  music_leads=float(d.get("music_leads") or 0.0))
    val_set = MultimodalDataset(data_dir, "test", spec, stride=max(d["stride"], d["seq_len"] // 2))
    lit = build_lightning_module(cfg, train_set.dims)
    n_params = sum(p.numel() for p in lit.model.parameters())
    log.info("model %s: %.2fM parameters; %d train windows (%d clips), %d val windows",
             cfg["model"], n_params / 1e6, len(train_set), len(train_set.ids), len(val_set))

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if feat_meta:  # export and generate find it here, mid-training too
        write_json_atomic(out_dir / "features.json", feat_meta)
    train_loader, val_loader = make_loaders(train_set, val_set, t, styled=bool(getattr(lit.model.cfg, "styles", 0)))

    strategy = t["strategy"]
    if strategy == "ddp" and t["accelerator"] in ("cpu",):
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(process_group_backend="gloo")
    trainer = L.Trainer(
        accelerator=t["accelerator"], devices=t["devices"], num_nodes=t["num_nodes"], strategy=strategy,
        precision=t["precision"], max_steps=t["max_steps"], gradient_clip_val=t["grad_clip"],
        val_check_interval=t["val_every_steps"], check_val_every_n_epoch=None, limit_val_batches=t["max_val_batches"],
        log_every_n_steps=t["log_every_steps"], enable_checkpointing=False,
        logger=TensorBoardLogger(str(out_dir), name="tb", version=""),
        callbacks=[make_atomic_checkpoint_callback(out_dir / "checkpoints", t["checkpoint_every_steps"], t.get("keep_every_steps", 0)),
                   make_metrics_csv_callback(out_dir / "metrics.csv", t["log_every_steps"])],
        num_sanity_val_steps=0, deterministic=False,
    )
    last = out_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if (resume and last.exists()) else None
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    elif t.get("init_weights"):  # fine-tuning: start from another run's (or the shipped) weights, fresh optimiser
        init_weights(lit.model, Path(t["init_weights"]))
    start = time.time()
    trainer.fit(lit, train_loader, val_loader, ckpt_path=ckpt_path)
    if trainer.global_rank == 0:
        write_model_card(out_dir, cfg, data_dir, train_set, feat_meta, trainer, n_params, time.time() - start)
    return 0


def make_loaders(train_set, val_set, t: dict, styled: bool):
    """The training loader (every style label drawn equally often with `balance_styles` on a styled model) and the
    validation loader."""
    import torch
    from torch.utils.data import DataLoader

    loaders = dict(batch_size=t["batch_size"], num_workers=t["num_workers"], persistent_workers=t["num_workers"] > 0)
    if t.get("balance_styles") and styled:
        from torch.utils.data import WeightedRandomSampler

        from transflower.dataset import style_balanced_weights

        sampler = WeightedRandomSampler(torch.from_numpy(style_balanced_weights(train_set)).double(), len(train_set),
                                        replacement=True, generator=torch.Generator().manual_seed(t["seed"]))
        train_loader = DataLoader(train_set, sampler=sampler, drop_last=True, **loaders)
    else:
        train_loader = DataLoader(train_set, shuffle=True, drop_last=True, **loaders)
    return train_loader, DataLoader(val_set, shuffle=False, **loaders)


def init_weights(model, path: Path) -> None:
    """Load the weights of a `transflower train` checkpoint or a shipped .pt into `model` (same architecture)."""
    from transflower.checkpoint import load_checkpoint

    src, src_cfg = load_checkpoint(path)
    try:
        model.load_state_dict(src.state_dict())
    except RuntimeError as e:
        raise UserError(f"training.init_weights {path}: its weights do not fit this model_config "
                        f"({str(e).splitlines()[0][:200]})") from None
    log.info("initialised from the weights of %s (%s)", path, src_cfg["model"])


def write_model_card(out_dir: Path, cfg: dict, data_dir: Path, train_set, feat_meta: dict, trainer, n_params: int, seconds: float) -> None:
    metrics = read_curves(out_dir / "metrics.csv")
    card = {
        "model": cfg["model"], "config": cfg, "parameters": n_params,
        # the full path: `transflower export` finds the training clips through it (the warm-start seed);
        # scripts/ship_default_model.py strips paths from the card it ships
        "data_dir": str(data_dir), "data_hash": data_hash(data_dir, train_set.ids, sorted(train_set.dims)),
        "train_ids": train_set.ids, "steps": int(trainer.global_step),
        "final_train_nll": metrics["train"][-1][1] if metrics["train"] else None,
        "final_val_nll": metrics["val"][-1][1] if metrics["val"] else None,
        "best_val_nll": min(v for _, v in metrics["val"]) if metrics["val"] else None,
        "fit_seconds_this_run": round(seconds, 1), "features": feat_meta,
    }
    write_json_atomic(out_dir / "model_card.json", card)
    plot_curves(metrics, out_dir / "curves.png", title=f"{cfg['model']} ({n_params / 1e6:.1f}M params)")


def read_curves(path: Path) -> dict:
    import csv

    out = {"train": [], "val": []}
    if not path.exists():
        return out
    with open(path) as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            if row.get("train/nll"):
                out["train"].append((step, float(row["train/nll"])))
            if row.get("val/nll"):
                out["val"].append((step, float(row["val/nll"])))
    return out


def plot_curves(metrics: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    if metrics["train"]:
        s, v = np.array(metrics["train"]).T
        k = max(1, len(v) // 50)
        smooth = np.convolve(v, np.ones(k) / k, mode="valid")
        ax.plot(s, v, alpha=0.25, color="C0")
        ax.plot(s[k - 1 :], smooth, color="C0", label="train NLL")
    if metrics["val"]:
        s, v = np.array(metrics["val"]).T
        ax.plot(s, v, "o-", color="C1", label="validation NLL (test split)")
    ax.set_xlabel("step")
    ax.set_ylabel("NLL per dimension (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
