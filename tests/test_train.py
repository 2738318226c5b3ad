"""`transflower train` end to end on a tiny synthetic feature folder (same format as `transflower features`).

(a) a short run writes last.ckpt, model_card.json and curves.png; every registered model trains through
the same path from its shipped YAML; (b) re-running a killed run resumes from its checkpoint's step;
(c) DDP with 2 CPU processes (gloo) through the `transflower` CLI; (d) bad configs are UserErrors.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import transflower.train as train_mod
from transflower.cli import main as cli_main
from transflower.errors import UserError
from transflower.train import DEFAULT_CONFIG, load_config, train

HPARAMS = Path(train_mod.__file__).parent / "hparams"
TINY_LIVE = ["model_config.d_model=32", "model_config.motion_layers=1", "model_config.audio_layers=1",
             "model_config.cross_layers=1", "model_config.flow_steps=2", "model_config.flow_hidden=16",
             "model_config.context=16"]
FAST = ["data.seq_len=16", "data.stride=8", "training.batch_size=4", "training.log_every_steps=1",
        "training.max_val_batches=2", "training.warmup_steps=1", "training.accelerator=cpu", "training.num_workers=0"]


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """4 clips (3 train, 1 test) of standardised-looking features, 46 motion + 68 audio dims, 20 fps."""
    d = tmp_path_factory.mktemp("features")
    rng = np.random.default_rng(0)
    ids = ["clip_a", "clip_b", "clip_c", "clip_d"]
    for i, sid in enumerate(ids):
        T = 170 + 10 * i  # long enough for the paper layout's 120 + 1 / 140-frame windows
        t = np.arange(T)[:, None]
        audio = np.sin(t * rng.uniform(0.05, 0.5, 68)) + 0.3 * rng.normal(size=(T, 68))
        motion = np.sin(t * rng.uniform(0.05, 0.3, 46) + audio[:, :1]) + 0.1 * rng.normal(size=(T, 46))
        np.save(d / f"{sid}.motion.npy", motion.astype(np.float32))
        np.save(d / f"{sid}.audio.npy", audio.astype(np.float32))
    (d / "base_filenames_train.txt").write_text("\n".join(ids[:3]) + "\n")
    (d / "base_filenames_test.txt").write_text(ids[3] + "\n")
    (d / "features.json").write_text(json.dumps({"fps": 20.0, "train_ids": ids[:3], "test_ids": ids[3:]}))
    return d


def _ckpt_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])


def test_short_run_writes_checkpoint_model_card_and_curves(data_dir, tmp_path):
    cfg = load_config(DEFAULT_CONFIG, TINY_LIVE + FAST + ["training.max_steps=5", "training.val_every_steps=5"])
    out = tmp_path / "run"
    assert train(cfg, data_dir, out) == 0
    assert (out / "checkpoints" / "last.ckpt").is_file() and _ckpt_step(out / "checkpoints" / "last.ckpt") == 5
    assert (out / "curves.png").stat().st_size > 1000
    card = json.loads((out / "model_card.json").read_text())
    assert card["model"] == "transflower_live" and card["steps"] == 5
    assert isinstance(card["data_hash"], str) and len(card["data_hash"]) == 16
    assert card["train_ids"] == ["clip_a", "clip_b", "clip_c"]
    for k in ("final_train_nll", "final_val_nll", "best_val_nll"):
        assert isinstance(card[k], float) and np.isfinite(card[k]), (k, card[k])
    assert card["config"]["model_config"]["motion_dim"] == 46 and card["config"]["model_config"]["audio_dim"] == 68
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["max_steps"] == 5
    # the data hash names the data: another folder's content gives another hash
    assert card["data_hash"] == train_mod.data_hash(data_dir, card["train_ids"], ["audio", "motion"])


TINY_BASELINES = {
    "transformer_mse": ["model_config.d_model=32", "model_config.motion_layers=1", "model_config.audio_layers=1",
                        "model_config.cross_layers=1", "model_config.context=16"],
    "moglow": ["model_config.hidden=32", "model_config.flow_steps=2", "model_config.flow_hidden=16"],
    "transflower_paper": ["model_config.d_model=32", "model_config.motion_layers=1", "model_config.audio_layers=1",
                          "model_config.cross_layers=1", "model_config.flow_steps=2", "model_config.flow_hidden=16"],
}


@pytest.mark.parametrize("name", sorted(TINY_BASELINES))
def test_baseline_yaml_trains_through_the_same_path(name, data_dir, tmp_path):
    """Each shipped baseline config loads, shrinks by override, trains 2 steps and writes its card."""
    cfg = load_config(HPARAMS / f"{name}.yaml", TINY_BASELINES[name] + FAST + ["training.max_steps=2", "training.val_every_steps=2"])
    assert cfg["model"] == name
    out = tmp_path / name
    assert train(cfg, data_dir, out) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["model"] == name and card["steps"] == 2 and np.isfinite(card["final_val_nll"])


def test_rerun_resumes_from_the_checkpoint_step(data_dir, tmp_path, monkeypatch):
    """A run stopped after 4 steps (its last.ckpt is what a kill leaves) continues at step 4 when re-run."""
    steps_seen = []
    make = train_mod.make_atomic_checkpoint_callback

    def recording(ckpt_dir, every, keep_every=0):  # wrap the run's own callback to record the step of every batch
        cb = make(ckpt_dir, every, keep_every)
        orig = cb.on_train_batch_end

        def on_train_batch_end(trainer, *a, **kw):
            steps_seen.append(trainer.global_step)
            return orig(trainer, *a, **kw)

        cb.on_train_batch_end = on_train_batch_end
        return cb

    monkeypatch.setattr(train_mod, "make_atomic_checkpoint_callback", recording)
    out = tmp_path / "run"
    base = TINY_LIVE + FAST + ["training.val_every_steps=100", "training.checkpoint_every_steps=2"]
    train(load_config(DEFAULT_CONFIG, base + ["training.max_steps=4"]), data_dir, out)
    assert steps_seen == [1, 2, 3, 4] and _ckpt_step(out / "checkpoints" / "last.ckpt") == 4
    steps_seen.clear()
    train(load_config(DEFAULT_CONFIG, base + ["training.max_steps=8"]), data_dir, out)
    assert steps_seen == [5, 6, 7, 8], steps_seen  # not [1, ..., 8]: the optimiser and step came back
    assert _ckpt_step(out / "checkpoints" / "last.ckpt") == 8
    assert json.loads((out / "model_card.json").read_text())["steps"] == 8
    curve = train_mod.read_curves(out / "metrics.csv")["train"]
    steps = [st for st, _ in curve]
    assert steps == sorted(steps) and steps[0] <= 4 and steps[-1] == 8  # the curve spans both runs
    # --fresh ignores the checkpoint
    steps_seen.clear()
    train(load_config(DEFAULT_CONFIG, base + ["training.max_steps=2"]), data_dir, out, resume=False)
    assert steps_seen == [1, 2]


def _cli_command() -> list[str]:
    script = Path(sys.executable).parent / "transflower"
    return [str(script)] if script.exists() else [sys.executable, "-m", "transflower.cli"]


@pytest.mark.slow
def test_ddp_two_cpu_processes_through_the_cli(data_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = _cli_command() + ["train", str(DEFAULT_CONFIG), "--data", str(data_dir), "--out", str(out), "--override",
                            *TINY_LIVE, *FAST, "training.max_steps=3", "training.val_every_steps=3",
                            "training.devices=2", "training.strategy=ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # Lightning picks a free MASTER_PORT
    for k in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "MEMBER: 2/2" in log and "gloo" in log, log[-3000:]  # two ranks, gloo backend
    assert _ckpt_step(out / "checkpoints" / "last.ckpt") == 3
    card = json.loads((out / "model_card.json").read_text())
    assert card["steps"] == 3 and card["config"]["training"]["devices"] == 2


# (d) bad configuration input: one clear UserError, never a traceback from deep inside


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, words", [
    ("model: transflower_live\ntraining:\n  max_step: 5\n", ["unknown keys in training", "max_step"]),
    ("model: transflower_live\ndata:\n  seqlen: 5\n", ["unknown keys in data", "seqlen"]),
    ("model: transflower_live\noptimizer:\n  lr: 0.1\n", ["unknown sections", "optimizer"]),
    ("model: [unclosed\n", ["not valid YAML"]),
    ("model: transflower_live\ntraining_terms:\n  music_swp: {p: 0.1}\n", ["training_terms: unknown terms", "music_swp"]),
    ("model: transflower_live\ntraining_terms:\n  music_swap: {p: 0.1}\nmodel_config:\n  music_swap: 0.2\n",
     ["model_config.music_swap = 0.2 and training_terms.music_swap.p = 0.1"]),
    ("- a\n- b\n", ["expected a mapping"]),
])
def test_bad_config_file_is_a_user_error(tmp_path, text, words):
    with pytest.raises(UserError) as e:
        load_config(_write(tmp_path, text))
    for w in words:
        assert w in str(e.value), str(e.value)


def test_missing_config_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("override, words", [
    ("training.max_steps", ["expected section.key=value"]),  # no '='
    ("max_steps=5", ["expected section.key=value"]),  # no section
    ("optim.lr=0.1", ["unknown section", "optim"]),
    ("model.name=x", ["unknown section"]),
    ("training.max_step=5", ["unknown key", "max_step"]),
    ("data.seqlen=5", ["unknown key", "seqlen"]),
    ("training.max_steps=0", ["training.max_steps", ">= 1"]),
    ("training.batch_size=-4", ["training.batch_size", ">= 1"]),
    ("training.batch_size=abc", ["training.batch_size", "integer"]),
    ("training.batch_size=2.5", ["training.batch_size", "integer"]),
    ("data.seq_len=1", ["data.seq_len", ">= 2"]),
    ("data.stride=0", ["data.stride"]),
    ("training.lr=2", ["training.lr", "(0, 1)"]),
    ("training.lr=-1e-3", ["training.lr"]),
    ("training.val_every_steps=0", ["training.val_every_steps"]),
    ("training.checkpoint_every_steps=0", ["training.checkpoint_every_steps"]),
    ("training_terms.scheduled_sampling.passes=0", ["training_terms.scheduled_sampling.passes: expected an integer >= 1, got 0"]),
    ("training_terms.style_dropout.p=1.5", ["training_terms.style_dropout.p", "[0, 1)"]),
    ("training_terms.pose_nosie.std=0.1", ["training_terms: unknown terms ['pose_nosie']", "'pose_noise'", "'style_contrast'"]),
    ("training_terms.music_swap.q=0.3", ["training_terms.music_swap: unknown parameters ['q']"]),
    ("model_config.scheduled_sampling_passes=0", ["training_terms.scheduled_sampling.passes: expected an integer >= 1"]),
])
def test_bad_override_is_a_user_error(override, words):
    with pytest.raises(UserError) as e:
        load_config(DEFAULT_CONFIG, [override])
    for w in words:
        assert w in str(e.value), str(e.value)


@pytest.mark.parametrize("name", ["transflower_live", "transformer_mse", "moglow", "transflower_paper"])
def test_unknown_model_config_key_is_a_user_error(name, data_dir, tmp_path):
    cfg = load_config(HPARAMS / f"{name}.yaml", ["model_config.d_modle=64"])
    with pytest.raises(UserError, match=r"model_config: unknown keys \['d_modle'\]"):
        train(cfg, data_dir, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("name, override, words", [
    ("transformer_mse", "model_config.d_model=30", ["model_config.d_model", "n_heads"]),
    ("transformer_mse", "model_config.context=1", ["model_config.context", ">= 2"]),
    ("transformer_mse", "model_config.lookahead=-1", ["model_config.lookahead", ">= 0"]),
    ("moglow", "model_config.hidden=0", ["model_config.hidden", ">= 1"]),
    ("moglow", "model_config.dropout=1.5", ["model_config.dropout", "[0, 1)"]),
    ("transflower_paper", "model_config.audio_window=abc", ["model_config.audio_window", "integer"]),
    ("transflower_paper", "model_config.n_heads=3", ["model_config.d_model", "n_heads"]),
])
def test_out_of_range_baseline_model_config_is_a_user_error(name, override, words, data_dir, tmp_path):
    cfg = load_config(HPARAMS / f"{name}.yaml", [override])
    with pytest.raises(UserError) as e:
        train(cfg, data_dir, tmp_path / "run")
    for w in words:
        assert w in str(e.value), str(e.value)


def test_unknown_model_is_a_user_error(data_dir, tmp_path):
    cfg = load_config(_write(tmp_path, "model: transfloower\n"))
    with pytest.raises(UserError, match="unknown model 'transfloower'"):
        train(cfg, data_dir, tmp_path / "run")


def test_cli_prints_one_line_and_exits_2(data_dir, tmp_path, capsys):
    rc = cli_main(["train", "--data", str(data_dir), "--out", str(tmp_path / "run"), "-o", "training.lr=5"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: training.lr") and err.count("\n") == 1, err
    rc = cli_main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")])
    assert rc == 2 and "--data" in capsys.readouterr().err


def test_unknown_scheduled_sampling_style_is_a_user_error(data_dir, tmp_path):
    cfg = load_config(HPARAMS / "transflower_live.yaml", ["training_terms.scheduled_sampling.p=0.5",
                                                          "training_terms.scheduled_sampling.styles=[tango]"])
    with pytest.raises(UserError, match=r"training_terms.scheduled_sampling.styles: \['tango'\] not among the data's styles"):
        train(cfg, data_dir, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_training_terms_are_overridden_like_any_section():
    base = yaml.safe_load(DEFAULT_CONFIG.read_text())["training_terms"]
    assert base == {"pose_noise": {"std": 0.1, "dropout": 0.0}, "style_dropout": {"p": 0.3}}  # the default: these on
    cfg = load_config(DEFAULT_CONFIG, ["training_terms.scheduled_sampling.p=0.5", "training_terms.pose_noise.std=0.2",
                                       "training_terms.music_swap={p: 0.3}", "training_terms.style_dropout=null"])
    assert cfg["training_terms"] == {"pose_noise": {"std": 0.2, "dropout": 0.0}, "style_dropout": None,
                                     "music_swap": {"p": 0.3}, "scheduled_sampling": {"p": 0.5}}
    # an override written as before the section existed is read as the term's parameter
    cfg = load_config(DEFAULT_CONFIG, ["model_config.style_dropout=0.15", "model_config.scheduled_sampling_passes=3"])
    assert cfg["training_terms"]["style_dropout"] == {"p": 0.15} and cfg["training_terms"]["scheduled_sampling"] == {"passes": 3}
    assert "style_dropout" not in cfg["model_config"]


def test_a_config_of_the_older_layout_still_trains_and_its_run_writes_the_new_one(data_dir, tmp_path):
    """A YAML whose model_config holds the training keys (as before the training_terms section): they move."""
    old = yaml.safe_load(DEFAULT_CONFIG.read_text())
    old["model_config"].update(pose_noise=0.1, pose_dropout=0.0, style_dropout=0.3, scheduled_sampling=0.5,
                               scheduled_sampling_passes=1, style_contrast=0.0, style_contrast_windows=8)
    del old["training_terms"]
    cfg = load_config(_write(tmp_path, yaml.safe_dump(old)), TINY_LIVE + FAST + ["training.max_steps=2", "training.val_every_steps=2"])
    assert cfg["training_terms"]["scheduled_sampling"] == {"p": 0.5, "passes": 1} and "pose_noise" not in cfg["model_config"]
    assert train(cfg, data_dir, tmp_path / "run") == 0
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert written["training_terms"] == cfg["training_terms"] and "scheduled_sampling" not in written["model_config"]


def test_style_indices_take_names_or_a_saved_configs_indices():
    from transflower.train import style_indices

    names = ["auto", "cha-cha", "rumba", "waltz"]
    assert style_indices(["rumba", "cha-cha"], names, "f") == [2, 1]
    assert style_indices([2, 1], names, "f") == [2, 1]  # a run's config.yaml, already resolved
    for bad in (["auto"], [0], [4], ["tango"]):
        with pytest.raises(UserError, match="not among the data's styles"):
            style_indices(bad, names, "f")


def test_style_contrast_trains_end_to_end_and_the_curve_keeps_the_nll(data_dir, tmp_path):
    import shutil

    styled = tmp_path / "styled"
    shutil.copytree(data_dir, styled)
    labels = {"clip_a": 1, "clip_b": 2, "clip_c": 1, "clip_d": 2}
    for sid, k in labels.items():
        n = np.load(styled / f"{sid}.motion.npy").shape[0]
        np.save(styled / f"{sid}.style.npy", np.full((n, 1), k, np.float32))
    meta = json.loads((styled / "features.json").read_text())
    (styled / "features.json").write_text(json.dumps({**meta, "styles": ["auto", "slow", "fast"]}))
    cfg = load_config(DEFAULT_CONFIG, TINY_LIVE + FAST + [
        "training.max_steps=4", "training.val_every_steps=4", "training_terms.style_contrast.weight=1.0",
        "training_terms.style_dropout=null", "training_terms.scheduled_sampling.p=0.5"])
    out = tmp_path / "run"
    assert train(cfg, styled, out) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["config"]["model_config"]["styles"] == 3 and card["steps"] == 4
    rows = [r.split(",") for r in (out / "metrics.csv").read_text().splitlines()[1:]]
    train_nll = [float(r[1]) for r in rows if r[1]]
    assert len(train_nll) == 4 and all(np.isfinite(train_nll))


def test_training_step_logs_the_nll_and_the_style_contrast_apart():
    from transflower.train import build_lightning_module

    cfg = load_config(DEFAULT_CONFIG, TINY_LIVE + ["model_config.styles=3", "training_terms.style_contrast.weight=2.0",
                                                   "training_terms.style_dropout.p=0.0"])
    lit = build_lightning_module(cfg, {"motion": 6, "audio": 5})
    logged = {}
    lit.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    torch.manual_seed(0)
    m = torch.randn(4, 16, 6)
    labels = torch.tensor([1.0, 2.0, 1.0, 2.0])[:, None, None].expand(4, 16, 1)
    loss = lit.training_step(([m, torch.randn(4, 16, 5), labels], [torch.roll(m, -1, dims=1)]), 0)
    assert set(logged) == {"train/nll", "train/style_contrast"} and logged["train/style_contrast"] > 0
    assert abs(float(loss) - (logged["train/nll"] + 2.0 * logged["train/style_contrast"])) < 1e-4
    assert float(lit.last_train_nll) == logged["train/nll"]


def test_retired_options_load_at_their_kept_value_and_are_refused_otherwise():
    """A checkpoint saved with a removed training option at the value that keeps its behaviour still loads."""
    from transflower.models import build_model

    base = {"motion_dim": 6, "audio_dim": 5, "d_model": 32, "n_heads": 4, "motion_layers": 1, "audio_layers": 1,
            "cross_layers": 1, "flow_steps": 2, "flow_hidden": 16}
    model = build_model("transflower_live", {**base, "contact": 0.0, "contact_cm": 5.0, "flow_skip": False,
                                             "velocity_leak": 1.0, "contact_styles": []})
    assert not hasattr(model.cfg, "contact")
    with pytest.raises(UserError, match="model_config.contact = 1.0: this training option was removed"):
        build_model("transflower_live", {**base, "contact": 1.0})
    with pytest.raises(UserError, match="unknown keys \\['contactt'\\]"):
        build_model("transflower_live", {**base, "contactt": 1.0})


def test_a_run_can_start_from_another_runs_weights(data_dir, tmp_path):
    from transflower.checkpoint import load_checkpoint
    from transflower.models import build_model

    d = data_dir
    cfg = load_config(DEFAULT_CONFIG, TINY_LIVE + FAST + ["training.max_steps=3", "training.val_every_steps=3",
                                                          "training_terms.scheduled_sampling.p=0.5"])
    first = tmp_path / "first"
    assert train(cfg, d, first) == 0
    assert card_steps(first) == 3
    # a fine-tune from those weights: its model starts exactly there (a fresh optimiser, step 0)
    model, _ = load_checkpoint(first / "checkpoints" / "last.ckpt")
    fresh = build_model("transflower_live", {**cfg["model_config"], "motion_dim": 46, "audio_dim": 68})
    train_mod.init_weights(fresh, first / "checkpoints" / "last.ckpt")
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    ft = load_config(DEFAULT_CONFIG, TINY_LIVE + FAST + ["training.max_steps=2", "training.val_every_steps=2",
                                                         f"training.init_weights={first / 'checkpoints' / 'last.ckpt'}"])
    assert train(ft, d, tmp_path / "ft") == 0 and card_steps(tmp_path / "ft") == 2
    other = build_model("transflower_live", {**cfg["model_config"], "d_model": 48, "motion_dim": 46, "audio_dim": 68})
    with pytest.raises(UserError, match="do not fit this model_config"):
        train_mod.init_weights(other, first / "checkpoints" / "last.ckpt")
    # a checkpoint saved with the older layout (training keys in model_config) loads, fine-tunes and resumes
    old = tmp_path / "old"
    (old / "checkpoints").mkdir(parents=True)
    ckpt = torch.load(first / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    saved = ckpt["hyper_parameters"]["cfg"]
    saved["model_config"].update(pose_noise=0.1, pose_dropout=0.0, style_dropout=0.3, scheduled_sampling=0.5,
                                 scheduled_sampling_passes=1, style_contrast=0.0)
    del saved["training_terms"]
    torch.save(ckpt, old / "checkpoints" / "last.ckpt")
    model_old, cfg_old = load_checkpoint(old / "checkpoints" / "last.ckpt")
    assert cfg_old["training_terms"]["scheduled_sampling"] == {"p": 0.5, "passes": 1} and "pose_noise" not in cfg_old["model_config"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model_old.state_dict().values()))
    train_mod.init_weights(fresh, old / "checkpoints" / "last.ckpt")
    resumed = load_config(DEFAULT_CONFIG, TINY_LIVE + FAST + ["training.max_steps=5", "training.val_every_steps=5",
                                                              "training_terms.scheduled_sampling.p=0.5"])
    assert train(resumed, d, old) == 0 and _ckpt_step(old / "checkpoints" / "last.ckpt") == 5


def card_steps(run: Path) -> int:
    return json.loads((run / "model_card.json").read_text())["steps"]
