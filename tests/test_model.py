"""The causal Transflower: causality, cached stepping equals full recompute (through the ring's wrap)."""
import torch

from transflower.models.transflower import KVCacheRunner, TransflowerConfig, TransflowerLive


def _tiny(context=8):
    cfg = TransflowerConfig(motion_dim=6, audio_dim=5, d_model=32, n_heads=4, motion_layers=1, audio_layers=1,
                            cross_layers=2, context=context, dropout=0.0, flow_steps=2, flow_hidden=16)
    torch.manual_seed(0)
    model = TransflowerLive(cfg).eval()
    for s in model.flow.steps:
        s.norm.initialized.fill_(True)
    with torch.no_grad():  # make the couplings non-trivial
        for p in model.flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_causality_future_inputs_do_not_change_past_outputs():
    model = _tiny()
    m, a = torch.randn(2, 20, 6), torch.randn(2, 20, 5)
    h1 = model.backbone(m, a)
    m2, a2 = m.clone(), a.clone()
    m2[:, 12:] += 5.0
    a2[:, 12:] -= 3.0
    h2 = model.backbone(m2, a2)
    assert torch.allclose(h1[:, :12], h2[:, :12], atol=1e-6)
    assert not torch.allclose(h1[:, 12:], h2[:, 12:], atol=1e-3)


def test_band_limits_what_a_frame_sees():
    model = _tiny(context=4)
    m, a = torch.randn(1, 12, 6), torch.randn(1, 12, 5)
    h1 = model.backbone(m, a)
    m2 = m.clone()
    m2[:, 0] += 10.0  # frame 0 reaches frame t only through stacked layers: 2 layers x 3 frames back
    h2 = model.backbone(m2, a)
    n_layers_motion_path = model.cfg.motion_layers + model.cfg.cross_layers
    reach = n_layers_motion_path * (model.cfg.context - 1)
    assert torch.allclose(h1[:, reach + 1 :], h2[:, reach + 1 :], atol=1e-6)
    assert not torch.allclose(h1[:, 1], h2[:, 1], atol=1e-4)


def test_cached_step_equals_full_recompute():
    model = _tiny(context=8)
    T = 30  # well past the ring's wrap (7 slots)
    m, a = torch.randn(1, T, 6), torch.randn(1, T, 5)
    noise = torch.randn(1, T, 6)
    full = model.sample(m, a, noise=noise)
    runner = KVCacheRunner(model)
    stepped = torch.stack([runner.step(m[:, t], a[:, t], noise[:, t]) for t in range(T)], dim=1)
    assert (full - stepped).abs().max() < 1e-4


def test_tiny_model_overfits_a_batch():
    model = _tiny()
    model.train()
    torch.manual_seed(1)
    m, a = torch.randn(4, 16, 6), torch.randn(4, 16, 5)
    target = torch.roll(m, -1, dims=1) * 0.5 + 0.1 * a[..., :1]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.nll(m, a, target).item()
    for _ in range(150):
        loss = model.nll(m, a, target)
        opt.zero_grad(); loss.backward(); opt.step()
    assert loss.item() < first - 1.0


def test_music_swap_gives_labelled_windows_another_windows_music_and_leaves_auto_ones_alone():
    cfg = TransflowerConfig(motion_dim=6, audio_dim=5, d_model=32, n_heads=4, motion_layers=1, audio_layers=1,
                            cross_layers=1, context=8, flow_steps=2, flow_hidden=16, styles=3, music_swap=0.999,
                            style_dropout=0.0)
    model = TransflowerLive(cfg).train()
    audio = torch.arange(4.0)[:, None, None].expand(4, 10, 5).clone()  # window b's music is all b
    idx = torch.tensor([1, 0, 2, 2])[:, None].expand(4, 10)  # window 1 is "auto"
    every = torch.ones(4, dtype=torch.bool)
    for _ in range(20):  # each labelled window hears a window of another style; the auto one keeps its own
        got = model.swap_music(audio, idx, swap=every)[:, 0, 0].tolist()
        assert got[0] in (1.0, 2.0, 3.0) and got[1] == 1.0 and got[2] in (0.0, 1.0) and got[3] in (0.0, 1.0)
    labels = torch.tensor([1, 1, 2, 2])[:, None].expand(4, 10)  # window 1's label was dropped: its music is style 1
    for _ in range(20):
        got = model.swap_music(audio, idx, labels, swap=every)[:, 0, 0].tolist()
        assert got[0] in (2.0, 3.0) and got[1] == 1.0 and got[2] in (0.0, 1.0) and got[3] in (0.0, 1.0)
    same = torch.ones(4, 10, dtype=torch.long)  # no other style in the batch: the previous window's music
    assert model.swap_music(audio, same, swap=every)[:, 0, 0].tolist() == [3.0, 0.0, 1.0, 2.0]
    assert model.swap_music(audio, idx, swap=torch.zeros(4, dtype=torch.bool)).equal(audio)
    assert torch.equal(model.eval().swap_music(audio, idx), audio)  # never at inference
    model.train().cfg.music_swap = 0.0
    assert torch.equal(model.swap_music(audio, idx), audio)


def test_style_balanced_weights_draw_every_style_equally(tmp_path):
    import numpy as np

    from transflower.dataset import MultimodalDataset, WindowSpec, style_balanced_weights

    lengths, labels = {"w1": 200, "w2": 300, "c1": 60}, {"w1": 1, "w2": 1, "c1": 2}
    for sid, n in lengths.items():
        np.save(tmp_path / f"{sid}.motion.npy", np.zeros((n, 2), np.float32))
        np.save(tmp_path / f"{sid}.style.npy", np.full((n, 1), labels[sid], np.float32))
    spec = WindowSpec(["motion", "style"], ["motion"], [10, 10], [10], [0, 1], [1])
    ds = MultimodalDataset(tmp_path, "train", spec, stride=5, ids=list(lengths))
    w = style_balanced_weights(ds)
    per_style = {k: w[[i for i, (sid, _) in enumerate(ds.index) if labels[sid] == k]].sum() for k in (1, 2)}
    assert abs(per_style[1] - 0.5) < 1e-9 and abs(per_style[2] - 0.5) < 1e-9
    assert abs(w.sum() - 1.0) < 1e-9


def _tiny_residual(**kw):
    cfg = TransflowerConfig(motion_dim=6, audio_dim=5, d_model=32, n_heads=4, motion_layers=1, audio_layers=1,
                            cross_layers=1, context=8, dropout=0.0, flow_steps=2, flow_hidden=16, residual=True,
                            residual_leak=0.02, **kw)
    torch.manual_seed(0)
    model = TransflowerLive(cfg)
    for s in model.flow.steps:
        s.norm.initialized.fill_(True)
    return model


def test_scheduled_sampling_feeds_the_models_own_one_step_samples_and_keeps_the_first_pose():
    model = _tiny_residual(scheduled_sampling=0.5, scheduled_sampling_temperature=0.7).train()
    m, a = torch.randn(3, 12, 6), torch.randn(3, 12, 5)
    noise = torch.randn(1, 3, 12, 6)
    choose = torch.rand(1, 3, 12, 1) < 0.5
    fed = model.self_fed_input(m, a, noise=noise, choose=choose)
    own = model.sample(m, a, temperature=0.7, noise=noise[0])  # own[t]: a sample of x_t = the input at t + 1
    assert torch.equal(fed[:, 0], m[:, 0])
    use = choose[0, :, 1:, 0]
    assert torch.allclose(fed[:, 1:][use], own[:, :-1][use], atol=1e-5)
    assert torch.equal(fed[:, 1:][~use], m[:, 1:][~use])
    assert use.any() and (~use).any() and not torch.allclose(own[:, :-1], m[:, 1:], atol=1e-2)
    # two passes: the second samples from the first's mix, so its fed poses differ from one-step samples
    model.cfg.scheduled_sampling_passes = 2
    every = torch.ones(2, 3, 12, 1, dtype=torch.bool)
    fed2 = model.self_fed_input(m, a, noise=torch.cat([noise, noise]), choose=every)
    first = torch.cat([m[:, :1], own[:, :-1]], dim=1)
    assert torch.allclose(fed2[:, 1:], model.sample(first, a, temperature=0.7, noise=noise[0])[:, :-1], atol=1e-5)
    # root_velocity: only the leading velocity dims are the model's; the body stays the data's
    model.cfg.scheduled_sampling_passes, model.cfg.scheduled_sampling_features = 1, "root_velocity"
    fed_v = model.self_fed_input(m, a, noise=noise, choose=every[:1])
    V = model.cfg.velocity_dims
    assert torch.allclose(fed_v[:, 1:, :V], own[:, :-1, :V], atol=1e-5) and torch.equal(fed_v[:, :, V:], m[:, :, V:])
    model.cfg.scheduled_sampling_features = "all"
    # never at inference, and no gradient through the samples
    assert torch.equal(model.eval().self_fed_input(m, a), m)
    assert not model.train().self_fed_input(m.requires_grad_(), a).requires_grad


def test_scheduled_sampling_trains_and_survives_far_tail_samples():
    model = _tiny_residual(scheduled_sampling=0.9, scheduled_sampling_passes=2).train()
    m, a = torch.randn(2, 10, 6), torch.randn(2, 10, 5)
    fed = model.self_fed_input(m, a, noise=torch.full((2, 2, 10, 6), 1e6))  # absurd draws: clamped, finite
    assert torch.isfinite(fed).all() and fed.abs().max() <= 25.0
    loss = model.nll(m, a, torch.roll(m, -1, dims=1))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_scheduled_sampling_config_is_checked():
    import pytest

    from transflower.errors import UserError

    for bad in (dict(scheduled_sampling=1.0), dict(scheduled_sampling=-0.1), dict(scheduled_sampling_passes=0),
                dict(scheduled_sampling_temperature=0.0), dict(scheduled_sampling_features="legs")):
        with pytest.raises(UserError, match="scheduled_sampling"):
            TransflowerConfig(**bad)


def test_scheduled_sampling_styles_self_feed_only_windows_of_those_styles():
    model = _tiny_residual(styles=4, style_dropout=0.0, scheduled_sampling=0.5, scheduled_sampling_styles=[2])
    model.train()
    m, a = torch.randn(3, 12, 6), torch.randn(3, 12, 5)
    every = torch.ones(1, 3, 12, 1, dtype=torch.bool)
    fed = model.self_fed_input(m, a, noise=torch.randn(1, 3, 12, 6), choose=every, windows=torch.tensor([False, True, False]))
    assert torch.equal(fed[0], m[0]) and torch.equal(fed[2], m[2]) and not torch.allclose(fed[1, 1:], m[1, 1:])
    labels = torch.tensor([1.0, 2.0, 3.0])[:, None, None].expand(3, 12, 1)
    seen = []
    inner = model.self_fed_input
    model.self_fed_input = lambda *args, windows=None, **kw: seen.append(windows) or inner(*args, windows=windows, **kw)
    loss = model.loss([m, a, labels], [torch.roll(m, -1, dims=1)])  # only the style-2 window is self-fed
    assert torch.isfinite(loss) and seen[0].tolist() == [False, True, False]
    import pytest

    from transflower.errors import UserError

    with pytest.raises(UserError, match="scheduled_sampling_styles"):
        TransflowerConfig(styles=4, scheduled_sampling_styles=[4])


def test_style_contrast_is_the_cross_entropy_of_the_models_own_label_posterior():
    import torch.nn.functional as F

    model = _tiny_residual(styles=4, style_dropout=0.0, style_contrast=0.5, style_contrast_windows=2).train()
    torch.manual_seed(1)
    m, a = torch.randn(4, 10, 6), torch.randn(4, 10, 5)
    target = torch.roll(m, -1, dims=1)
    label = torch.tensor([0, 3, 1, 2])  # an auto window is skipped; the cap keeps the first two labelled ones
    got = model.style_contrast_loss(m, m, a, target, label)
    logits = torch.stack([torch.stack([model.frame_log_prob(m[b:b + 1], m[b:b + 1], a[b:b + 1], target[b:b + 1],
                                                            model.style_one_hot(torch.full((1, 10), k))).mean()
                                       for k in (1, 2, 3)]) for b in (1, 2)])
    assert torch.allclose(got, F.cross_entropy(logits, torch.tensor([2, 0])) / 6, atol=1e-5)
    assert model.style_contrast_loss(m, m, a, target, torch.zeros(4, dtype=torch.long)).item() == 0.0
    # the training loss adds it to the NLL of the same (noised, self-fed) input
    model.cfg.pose_noise = 0.0
    labels = label.float()[:, None, None].expand(4, 10, 1)
    loss = model.loss([m, a, labels], [target])
    nll = model.nll(m, a, target, model.style_one_hot(labels[..., 0].long()))
    assert torch.allclose(loss, nll + 0.5 * got, atol=1e-5)
    model.cfg.style_contrast = 0.0
    assert torch.allclose(model.loss([m, a, labels], [target]), nll, atol=1e-6)


def test_style_contrast_teaches_the_label_to_tell_styles_apart():
    # two styles whose next poses differ only in sign: an untrained model cannot tell them apart by the label;
    # minimising the term alone must make the right label the likelier one for both
    model = _tiny_residual(styles=3, style_dropout=0.0, style_contrast=1.0).train()
    torch.manual_seed(2)
    m, a = 0.1 * torch.randn(8, 10, 6), torch.randn(8, 10, 5)
    label = torch.tensor([1, 2] * 4)
    target = m + torch.where(label[:, None, None] == 1, 1.0, -1.0)
    before = model.style_contrast_loss(m, m, a, target, label).item()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        model.style_contrast_loss(m, m, a, target, label).backward()
        opt.step()
    after = model.style_contrast_loss(m, m, a, target, label).item()
    assert before > 0.5 * torch.log(torch.tensor(2.0)).item() / 6 and after < 0.2 * before


def test_style_contrast_config_is_checked():
    import pytest

    from transflower.errors import UserError

    for bad in (dict(styles=4, style_contrast=-1.0), dict(styles=4, style_contrast_windows=0),
                dict(styles=2, style_contrast=1.0), dict(style_contrast=1.0)):
        with pytest.raises(UserError, match="style_contrast"):
            TransflowerConfig(**bad)
