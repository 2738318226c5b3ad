"""Training terms as plug-ins (transflower/models/training_terms.py): each one's effect and checks, inert in
eval mode; their composition equals the loss the model computed while they were model_config fields; older
configs (the shipped checkpoint's) migrate to the `training_terms` section."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from transflower.errors import UserError
from transflower.models import build_model
from transflower.models.training_terms import (TERMS, MusicSwap, PoseNoise, ScheduledSampling, StyleContrast, StyleDropout,
                                               TrainingTerms, build_training_terms, migrate_config)
from transflower.models.transflower import TransflowerConfig, TransflowerLive

REPO = Path(__file__).resolve().parents[1]
ARCH = dict(motion_dim=6, audio_dim=5, d_model=32, n_heads=4, motion_layers=1, audio_layers=1, cross_layers=1,
            context=8, dropout=0.0, flow_steps=2, flow_hidden=16, residual=True, residual_leak=0.02)


def _tiny_residual(**kw):
    torch.manual_seed(0)
    model = TransflowerLive(TransflowerConfig(**{**ARCH, **kw}))
    for s in model.flow.steps:
        s.norm.initialized.fill_(True)
    return model


def _batch(B=4, T=10, styles=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    m, a = torch.randn(B, T, 6, generator=g), torch.randn(B, T, 5, generator=g)
    labels = (torch.arange(B) % (styles - 1) + 1).float()[:, None, None].expand(B, T, 1)
    return [m, a, labels], [torch.roll(m, -1, dims=1)]


# ---------------------------------------------------------------------------------------------
# Each term


def test_pose_noise_noises_the_encoders_view_and_drops_whole_poses():
    model = _tiny_residual().train()
    x = torch.ones(2, 50, 6)
    noised = PoseNoise(std=0.5).see(model, x)
    assert 0.4 < float((noised - x).std()) < 0.6
    dropped = PoseNoise(dropout=0.5).see(model, x)
    zero = (dropped == 0).all(-1)
    assert zero.any() and (~zero).any() and torch.equal(dropped[~zero], x[~zero])  # whole poses, never parts
    assert torch.equal(PoseNoise(std=0.5, dropout=0.5).see(model.eval(), x), x)


def test_style_dropout_trains_whole_windows_as_auto():
    model = _tiny_residual(styles=4).train()
    idx = torch.tensor([1, 2, 3, 1] * 8)[:, None].expand(32, 10)
    got = StyleDropout(p=0.5).drop_labels(model, idx)
    dropped = (got == 0).all(1)
    assert dropped.any() and (~dropped).any() and torch.equal(got[~dropped], idx[~dropped])
    assert torch.equal(StyleDropout(p=0.5).drop_labels(model.eval(), idx), idx)
    assert StyleDropout().p == 0.3  # the default: what configs of the older layout trained with unless told


def test_music_swap_gives_labelled_windows_another_windows_music_and_leaves_auto_ones_alone():
    model = _tiny_residual(styles=3).train()
    swap_term = MusicSwap(p=0.999)
    audio = torch.arange(4.0)[:, None, None].expand(4, 10, 5).clone()  # window b's music is all b
    idx = torch.tensor([1, 0, 2, 2])[:, None].expand(4, 10)  # window 1 is "auto"
    every = torch.ones(4, dtype=torch.bool)
    for _ in range(20):  # each labelled window hears a window of another style; the auto one keeps its own
        got = swap_term.hear(model, audio, idx, swap=every)[:, 0, 0].tolist()
        assert got[0] in (1.0, 2.0, 3.0) and got[1] == 1.0 and got[2] in (0.0, 1.0) and got[3] in (0.0, 1.0)
    labels = torch.tensor([1, 1, 2, 2])[:, None].expand(4, 10)  # window 1's label was dropped: its music is style 1
    for _ in range(20):
        got = swap_term.hear(model, audio, idx, labels, swap=every)[:, 0, 0].tolist()
        assert got[0] in (2.0, 3.0) and got[1] == 1.0 and got[2] in (0.0, 1.0) and got[3] in (0.0, 1.0)
    same = torch.ones(4, 10, dtype=torch.long)  # no other style in the batch: the previous window's music
    assert swap_term.hear(model, audio, same, swap=every)[:, 0, 0].tolist() == [3.0, 0.0, 1.0, 2.0]
    assert swap_term.hear(model, audio, idx, swap=torch.zeros(4, dtype=torch.bool)).equal(audio)
    assert torch.equal(swap_term.hear(model.eval(), audio, idx), audio)  # never at inference
    assert torch.equal(MusicSwap(p=0.0).hear(model.train(), audio, idx), audio)


def test_scheduled_sampling_feeds_the_models_own_one_step_samples_and_keeps_the_first_pose():
    model = _tiny_residual().train()
    ss = ScheduledSampling(p=0.5, temperature=0.7)
    m, a = torch.randn(3, 12, 6), torch.randn(3, 12, 5)
    noise = torch.randn(1, 3, 12, 6)
    choose = torch.rand(1, 3, 12, 1) < 0.5
    fed = ss.self_fed(model, m, a, noise=noise, choose=choose)
    own = model.sample(m, a, temperature=0.7, noise=noise[0])  # own[t]: a sample of x_t = the input at t + 1
    assert torch.equal(fed[:, 0], m[:, 0])
    use = choose[0, :, 1:, 0]
    assert torch.allclose(fed[:, 1:][use], own[:, :-1][use], atol=1e-5)
    assert torch.equal(fed[:, 1:][~use], m[:, 1:][~use])
    assert use.any() and (~use).any() and not torch.allclose(own[:, :-1], m[:, 1:], atol=1e-2)
    # two passes: the second samples from the first's mix, so its fed poses differ from one-step samples
    every = torch.ones(2, 3, 12, 1, dtype=torch.bool)
    fed2 = ScheduledSampling(p=0.5, passes=2, temperature=0.7).self_fed(model, m, a, noise=torch.cat([noise, noise]), choose=every)
    first = torch.cat([m[:, :1], own[:, :-1]], dim=1)
    assert torch.allclose(fed2[:, 1:], model.sample(first, a, temperature=0.7, noise=noise[0])[:, :-1], atol=1e-5)
    # root_velocity: only the leading velocity dims are the model's; the body stays the data's
    fed_v = ScheduledSampling(p=0.5, temperature=0.7, features="root_velocity").self_fed(model, m, a, noise=noise, choose=every[:1])
    V = model.cfg.velocity_dims
    assert torch.allclose(fed_v[:, 1:, :V], own[:, :-1, :V], atol=1e-5) and torch.equal(fed_v[:, :, V:], m[:, :, V:])
    # each pass's encoder sees its input as the other terms make it (pose noise), the residual's base stays clean
    shifted = ss.self_fed(model, m, a, see=lambda x: x + 1.0, noise=noise, choose=every[:1])
    want = model.sample(m, a, temperature=0.7, noise=noise[0], seen=m + 1.0)
    assert torch.allclose(shifted[:, 1:], want[:, :-1], atol=1e-5)
    # never at inference, and no gradient through the samples
    assert torch.equal(ss.self_fed(model.eval(), m, a), m)
    assert not ss.self_fed(model.train(), m.requires_grad_(), a).requires_grad


def test_scheduled_sampling_trains_and_survives_far_tail_samples():
    model = _tiny_residual().train()
    ss = ScheduledSampling(p=0.9, passes=2)
    m, a = torch.randn(2, 10, 6), torch.randn(2, 10, 5)
    fed = ss.self_fed(model, m, a, noise=torch.full((2, 2, 10, 6), 1e6))  # absurd draws: clamped, finite
    assert torch.isfinite(fed).all() and fed.abs().max() <= 25.0
    loss, _ = TrainingTerms([ss]).loss(model, [m, a], [torch.roll(m, -1, dims=1)])
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_scheduled_sampling_styles_self_feed_only_windows_of_those_styles():
    model = _tiny_residual(styles=4).train()
    ss = ScheduledSampling(p=0.5, styles=[2])
    m, a = torch.randn(3, 12, 6), torch.randn(3, 12, 5)
    every = torch.ones(1, 3, 12, 1, dtype=torch.bool)
    fed = ss.self_fed(model, m, a, noise=torch.randn(1, 3, 12, 6), choose=every, windows=torch.tensor([False, True, False]))
    assert torch.equal(fed[0], m[0]) and torch.equal(fed[2], m[2]) and not torch.allclose(fed[1, 1:], m[1, 1:])
    labels = torch.tensor([1.0, 2.0, 3.0])[:, None, None].expand(3, 12, 1)
    seen = []
    inner = ss.self_fed
    ss.self_fed = lambda *args, windows=None, **kw: seen.append(windows) or inner(*args, windows=windows, **kw)
    loss, _ = TrainingTerms([ss]).loss(model, [m, a, labels], [torch.roll(m, -1, dims=1)])  # only the style-2 window
    assert torch.isfinite(loss) and seen[0].tolist() == [False, True, False]
    for styles in ([4], [0], ["rumba"]):  # out of range, auto, or a name `transflower train` did not resolve
        with pytest.raises(UserError, match=r"training_terms.scheduled_sampling.styles: expected style names of the data"):
            build_training_terms({"scheduled_sampling": {"p": 0.5, "styles": styles}}, model)


def test_style_contrast_is_the_cross_entropy_of_the_models_own_label_posterior():
    model = _tiny_residual(styles=4).train()
    sc = StyleContrast(weight=0.5, windows=2)
    torch.manual_seed(1)
    m, a = torch.randn(4, 10, 6), torch.randn(4, 10, 5)
    target = torch.roll(m, -1, dims=1)
    label = torch.tensor([0, 3, 1, 2])  # an auto window is skipped; the cap keeps the first two labelled ones
    got = sc.contrast(model, m, m, a, target, label)
    logits = torch.stack([torch.stack([model.frame_log_prob(m[b:b + 1], m[b:b + 1], a[b:b + 1], target[b:b + 1],
                                                            model.style_one_hot(torch.full((1, 10), k))).mean()
                                       for k in (1, 2, 3)]) for b in (1, 2)])
    assert torch.allclose(got, F.cross_entropy(logits, torch.tensor([2, 0])) / 6, atol=1e-5)
    assert sc.contrast(model, m, m, a, target, torch.zeros(4, dtype=torch.long)).item() == 0.0
    # the training loss adds it, weighted, to the NLL of the same input, and logs both apart
    labels = label.float()[:, None, None].expand(4, 10, 1)
    loss, logged = TrainingTerms([sc]).loss(model, [m, a, labels], [target])
    nll = model.nll(m, a, target, model.style_one_hot(labels[..., 0].long()))
    assert torch.allclose(loss, nll + 0.5 * got, atol=1e-5)
    assert set(logged) == {"nll", "style_contrast"} and torch.allclose(logged["style_contrast"], got)
    loss0, logged0 = TrainingTerms([StyleContrast(weight=0.0)]).loss(model, [m, a, labels], [target])
    assert torch.allclose(loss0, nll, atol=1e-6) and list(logged0) == ["nll"]


def test_style_contrast_teaches_the_label_to_tell_styles_apart():
    # two styles whose next poses differ only in sign: an untrained model cannot tell them apart by the label;
    # minimising the term alone must make the right label the likelier one for both
    model = _tiny_residual(styles=3).train()
    sc = StyleContrast(weight=1.0)
    torch.manual_seed(2)
    m, a = 0.1 * torch.randn(8, 10, 6), torch.randn(8, 10, 5)
    label = torch.tensor([1, 2] * 4)
    target = m + torch.where(label[:, None, None] == 1, 1.0, -1.0)
    before = sc.contrast(model, m, m, a, target, label).item()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        sc.contrast(model, m, m, a, target, label).backward()
        opt.step()
    after = sc.contrast(model, m, m, a, target, label).item()
    assert before > 0.5 * torch.log(torch.tensor(2.0)).item() / 6 and after < 0.2 * before


ALL_ON = {"pose_noise": {"std": 0.3, "dropout": 0.3}, "style_dropout": {"p": 0.9}, "music_swap": {"p": 0.9},
          "scheduled_sampling": {"p": 0.9, "passes": 2}, "style_contrast": {"weight": 1.0, "windows": 4}}


@pytest.mark.parametrize("name", list(TERMS))
def test_each_term_is_inert_in_eval_mode_and_acts_in_training(name):
    model = _perturbed_model(dropout=0.0).eval()  # without dropout the model's own loss draws nothing
    terms = build_training_terms({name: ALL_ON[name]}, model)
    inputs, outputs = _batch()
    torch.manual_seed(3)
    loss, logged = terms.loss(model, inputs, outputs)
    assert torch.equal(loss, model.loss(inputs, outputs)) and list(logged) == ["nll"]
    model.train()
    torch.manual_seed(3)
    assert not torch.allclose(terms.loss(model, inputs, outputs)[0], model.loss(inputs, outputs))


# ---------------------------------------------------------------------------------------------
# The composition equals the loss of the model that held the terms as config fields


def _old_loss(model, c, inputs, outputs):
    """TransflowerLive.loss as it was while the terms were model_config fields, written out step by step for
    every term on (features all, every window self-fed): each random draw in the order the old code made it."""
    def encoder_input(x):
        x = x + c["pose_noise"] * torch.randn_like(x)
        return x * (torch.rand(x.shape[:-1] + (1,)) >= c["pose_dropout"])

    @torch.no_grad()
    def self_fed_input(motion_in, audio_in, style):
        B, T, D = motion_in.shape
        x = motion_in
        for _ in range(c["scheduled_sampling_passes"]):
            h = model.backbone(encoder_input(x), audio_in, style).reshape(B * T, -1)
            z = torch.randn(B * T, D)
            pred = model.residual_mask * x + model.flow.inverse(z * c["scheduled_sampling_temperature"], h).reshape(B, T, D)
            fed = torch.nan_to_num(pred[:, :-1], nan=0.0, posinf=0.0, neginf=0.0).clamp(-25.0, 25.0)
            use = torch.rand(B, T - 1, 1) < c["scheduled_sampling"]
            x = torch.cat([motion_in[:, :1], torch.where(use, fed, motion_in[:, 1:])], dim=1)
        return x

    motion, audio, target = inputs[0], inputs[1], outputs[0]
    B, T, D = target.shape
    labels = inputs[2][..., 0].long()
    idx = torch.where(torch.rand(B, 1) < c["style_dropout"], torch.zeros_like(labels), labels)
    other = labels[:, 0][None, :] != labels[:, 0][:, None]
    pick = torch.rand(B, B).masked_fill(~other, -1.0).argmax(1)
    partner = torch.where(other.any(1), pick, torch.arange(B).roll(1))
    swap = (torch.rand(B) < c["music_swap"]) & (idx[:, 0] != 0)
    audio = torch.where(swap[:, None, None], audio[partner], audio)
    style = model.style_one_hot(idx)
    seen = encoder_input(self_fed_input(motion, audio, style))
    nll = -model.frame_log_prob(motion, seen, audio, target, style).mean() / D
    rows = (idx[:, 0] > 0).nonzero().flatten()[: c["style_contrast_windows"]]
    logits = [model.frame_log_prob(motion[rows], seen[rows], audio[rows], target[rows],
                                   model.style_one_hot(torch.full((rows.numel(), T), k))).mean(1) for k in range(1, model.cfg.styles)]
    contrast = F.cross_entropy(torch.stack(logits, 1), idx[rows, 0] - 1) / D
    return nll + c["style_contrast"] * contrast, nll, contrast


OLD_FIELDS = dict(pose_noise=0.1, pose_dropout=0.1, style_dropout=0.3, music_swap=0.5, scheduled_sampling=0.5,
                  scheduled_sampling_passes=2, scheduled_sampling_temperature=0.6, style_contrast=1.0, style_contrast_windows=3)


def _perturbed_model(styles=4, dropout=0.1):
    torch.manual_seed(0)
    model = build_model("transflower_live", {**ARCH, "dropout": dropout, "styles": styles})
    for s in model.flow.steps:
        s.norm.initialized.fill_(True)
    with torch.no_grad():  # an untrained flow ignores its condition: make every input matter
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.train()


def _six_windows(styles=4):
    g = torch.Generator().manual_seed(1)
    m, a = torch.randn(6, 10, 6, generator=g), torch.randn(6, 10, 5, generator=g)
    labels = torch.tensor([1., 2., 3., 1., 2., 0.])[:, None, None].expand(6, 10, 1) % styles
    return [m, a, labels], [torch.roll(m, -1, dims=1)]


def test_the_composed_loss_equals_the_old_models_loss_with_every_term_on():
    cfg = migrate_config({"model": "transflower_live", "model_config": {**ARCH, **OLD_FIELDS}})
    model = _perturbed_model()  # dropout on: the backbone's draws interleave with the terms'
    terms = build_training_terms(cfg["training_terms"], model)
    inputs, outputs = _six_windows()
    torch.manual_seed(10)
    loss, logged = terms.loss(model, inputs, outputs)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(10)
    want, nll, contrast = _old_loss(model, OLD_FIELDS, inputs, outputs)
    want.backward()
    assert torch.equal(loss, want) and torch.equal(logged["nll"], nll.detach())
    assert torch.equal(logged["style_contrast"], contrast.detach())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    # the values the model computed before the terms moved out of it (TransflowerLive.loss, same seeds)
    assert abs(loss.item() - 1.892898440361023) < 1e-4 and abs(nll.item() - 1.7076948881149292) < 1e-4


def test_the_yaml_order_of_the_terms_does_not_change_the_loss():
    model = _perturbed_model()
    inputs, outputs = _six_windows()
    losses = []
    for section in (ALL_ON, dict(reversed(list(ALL_ON.items())))):
        torch.manual_seed(4)
        losses.append(build_training_terms(section, model).loss(model, inputs, outputs)[0])
    assert torch.equal(*losses)


# ---------------------------------------------------------------------------------------------
# The section's checks


@pytest.mark.parametrize("section, message", [
    ({"scheduled_sampling": {"passes": 0}}, "training_terms.scheduled_sampling.passes: expected an integer >= 1, got 0"),
    ({"scheduled_sampling": {"passes": 2.0}}, "training_terms.scheduled_sampling.passes: expected an integer >= 1, got 2.0"),
    ({"scheduled_sampling": {"p": 1.0}}, "training_terms.scheduled_sampling.p: expected a value in [0, 1), got 1.0"),
    ({"scheduled_sampling": {"p": -0.1}}, "training_terms.scheduled_sampling.p: expected a value in [0, 1)"),
    ({"scheduled_sampling": {"temperature": 0.0}}, "training_terms.scheduled_sampling.temperature: expected a value > 0"),
    ({"scheduled_sampling": {"features": "legs"}}, "training_terms.scheduled_sampling.features: expected 'all' or 'root_velocity'"),
    ({"scheduled_sampling": {"styles": "rumba"}}, "training_terms.scheduled_sampling.styles: expected a list of style names"),
    ({"pose_noise": {"std": -0.1}}, "training_terms.pose_noise.std: expected a value >= 0"),
    ({"pose_noise": {"dropout": 1.0}}, "training_terms.pose_noise.dropout: expected a value in [0, 1)"),
    ({"style_dropout": {"p": "high"}}, "training_terms.style_dropout.p: expected a value in [0, 1), got 'high'"),
    ({"music_swap": {"p": True}}, "training_terms.music_swap.p: expected a value in [0, 1), got True"),
    ({"style_contrast": {"weight": -1.0}}, "training_terms.style_contrast.weight: expected a weight >= 0"),
    ({"style_contrast": {"windows": 0}}, "training_terms.style_contrast.windows: expected an integer >= 1, got 0"),
    ({"music_swap": {"q": 0.3}}, "training_terms.music_swap: unknown parameters ['q']; expected some of ['p']"),
    ({"music_swap": 0.3}, "training_terms.music_swap: expected a mapping of its parameters"),
    ({"pose_nosie": {"std": 0.1}}, "training_terms: unknown terms ['pose_nosie']; expected some of ['pose_noise', 'style_dropout', "
                                   "'music_swap', 'scheduled_sampling', 'style_contrast']"),
    (["pose_noise"], "training_terms: expected a mapping of term -> parameters"),
])
def test_bad_terms_are_user_errors_naming_the_field(section, message):
    with pytest.raises(UserError) as e:
        build_training_terms(section)
    assert message in str(e.value), str(e.value)


def test_what_a_term_needs_of_the_model_is_checked():
    for styles in (0, 2):
        with pytest.raises(UserError, match=r"training_terms.style_contrast: needs a model with at least two style labels"):
            build_training_terms({"style_contrast": {"weight": 1.0}}, _tiny_residual(styles=styles))
    build_training_terms({"style_contrast": {"weight": 0.0}}, _tiny_residual())  # off: nothing to check
    baseline = build_model("transformer_mse", {"motion_dim": 6, "audio_dim": 5, "d_model": 32, "motion_layers": 1,
                                               "audio_layers": 1, "cross_layers": 1, "context": 16})
    with pytest.raises(UserError, match=r"training_terms \['pose_noise'\]: model TransformerMSE takes none"):
        build_training_terms({"pose_noise": {"std": 0.1}}, baseline)
    assert not build_training_terms({}, baseline) and not build_training_terms(None, baseline)


def test_a_null_term_is_off_and_parameters_left_out_take_their_defaults():
    terms = build_training_terms({"music_swap": None, "style_dropout": False, "scheduled_sampling": {"p": 0.5}})
    assert terms.to_dict() == {"scheduled_sampling": {"p": 0.5, "passes": 1, "temperature": 0.6, "features": "all", "styles": []}}


# ---------------------------------------------------------------------------------------------
# Configs of the older layout


OLD_MODEL_CONFIG = {"d_model": 32, "residual": True, "pose_noise": 0.1, "pose_dropout": 0.0, "styles": 4,
                    "style_dropout": 0.15, "music_swap": 0.3, "scheduled_sampling": 0.8, "scheduled_sampling_passes": 3,
                    "scheduled_sampling_temperature": 0.6, "scheduled_sampling_features": "all",
                    "scheduled_sampling_styles": [], "style_contrast": 1.0, "style_contrast_windows": 8, "motion_dim": 46}
SHIPPED_TERMS = {"pose_noise": {"std": 0.1, "dropout": 0.0}, "style_dropout": {"p": 0.15}, "music_swap": {"p": 0.3},
                 "scheduled_sampling": {"p": 0.8, "passes": 3, "temperature": 0.6, "features": "all", "styles": []},
                 "style_contrast": {"weight": 1.0, "windows": 8}}


def test_migrate_config_moves_the_flat_training_keys_into_the_section():
    old = {"model": "transflower_live", "model_config": OLD_MODEL_CONFIG, "data": {"seq_len": 120}}
    new = migrate_config(old)
    assert new["model_config"] == {"d_model": 32, "residual": True, "styles": 4, "motion_dim": 46}
    assert new["training_terms"] == SHIPPED_TERMS and list(new) == ["model", "model_config", "training_terms", "data"]
    assert old["model_config"] == OLD_MODEL_CONFIG  # the input is left alone
    assert migrate_config(new) == new  # the current layout passes through
    # a config of the older layout that did not say trained with the model's style dropout then, p 0.3
    assert migrate_config({"model": "transflower_live", "model_config": {"pose_noise": 0.1}})["training_terms"] == {
        "pose_noise": {"std": 0.1}, "style_dropout": {"p": 0.3}}
    # in the current layout a flat key must agree with the section
    cur = {"model": "transflower_live", "model_config": {"music_swap": 0.3}, "training_terms": {"music_swap": {"p": 0.3}}}
    assert migrate_config(cur)["training_terms"] == {"music_swap": {"p": 0.3}}
    cur["model_config"]["music_swap"] = 0.5
    with pytest.raises(UserError, match=r"model_config.music_swap = 0.5 and training_terms.music_swap.p = 0.3"):
        migrate_config(cur)
    # another model's config has no such keys: nothing moves
    other = migrate_config({"model": "moglow", "model_config": {"dropout": 0.1}})
    assert other["model_config"] == {"dropout": 0.1} and other["training_terms"] == {}


def test_build_model_leaves_an_older_configs_training_keys_out_of_the_model():
    model = build_model("transflower_live", {**ARCH, **OLD_MODEL_CONFIG, "d_model": 32, "motion_dim": 6})
    assert model.cfg.styles == 4 and not any(hasattr(model.cfg, k) for k in ("pose_noise", "style_dropout", "scheduled_sampling"))


def test_the_shipped_checkpoint_loads_and_its_config_file_is_its_migrated_config():
    from transflower.checkpoint import load_checkpoint
    from transflower.train import load_config

    pt = REPO / "transflower" / "default_model" / "transflower_live.pt"
    saved = torch.load(pt, map_location="cpu", weights_only=False)["hyper_parameters"]["cfg"]
    assert "training_terms" not in saved and saved["model_config"]["style_contrast"] == 1.0  # the older layout
    model, cfg = load_checkpoint(pt)
    assert cfg["training_terms"] == SHIPPED_TERMS and "pose_noise" not in cfg["model_config"]
    assert model.cfg.styles == 4 and not model.training
    shipped = yaml.safe_load((REPO / "transflower" / "default_model" / "transflower_live.config.yaml").read_text())
    for section in ("model", "model_config", "training_terms", "data"):
        assert shipped[section] == cfg[section], section
    # the file starts a run as documented (fine-tuning from the shipped weights)
    again = load_config(REPO / "transflower" / "default_model" / "transflower_live.config.yaml")
    assert again["training_terms"] == SHIPPED_TERMS
    build_training_terms(again["training_terms"], model)


def test_a_loss_mask_scores_only_the_frames_after_the_cut():
    """data.music_leads: the frames before a window's cut are its past only (transflower.dataset's loss_mask)."""
    model = _tiny_residual(styles=4).train()
    inputs, outputs = _batch(B=3, T=10, styles=4)
    mask = torch.ones(3, 10, 1)
    mask[0, :6] = 0.0
    mask[2, :3] = 0.0
    terms = build_training_terms({"pose_noise": {"std": 0.0}})  # a term that changes nothing: the composed path
    torch.manual_seed(0)
    loss, logged = terms.loss(model, inputs, [*outputs, mask])
    style = model.style_one_hot(inputs[2][..., 0].long())
    lp = model.frame_log_prob(inputs[0], inputs[0], inputs[1], outputs[0], style)
    D = outputs[0].shape[-1]
    keep = mask[..., 0] > 0
    assert loss.item() == pytest.approx((-lp[keep].mean() / D).item(), rel=1e-5)
    assert loss.item() != pytest.approx((-lp.mean() / D).item(), rel=1e-3)  # not the mean over every frame
    full, _ = terms.loss(model, inputs, [*outputs, torch.ones(3, 10, 1)])
    assert full.item() == pytest.approx((-lp.mean() / D).item(), rel=1e-5)
