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


def test_loss_is_the_teacher_forced_nll_under_the_windows_own_labels():
    """What validation reports: the model alone, the encoder seeing the data's past and the clip's label."""
    cfg = TransflowerConfig(motion_dim=6, audio_dim=5, d_model=32, n_heads=4, motion_layers=1, audio_layers=1,
                            cross_layers=1, context=8, dropout=0.0, flow_steps=2, flow_hidden=16, styles=3)
    torch.manual_seed(0)
    model = TransflowerLive(cfg).eval()
    m, a = torch.randn(2, 10, 6), torch.randn(2, 10, 5)
    labels = torch.tensor([1.0, 2.0])[:, None, None].expand(2, 10, 1)
    target = torch.roll(m, -1, dims=1)
    style = model.style_one_hot(labels[..., 0].long())
    want = -model.frame_log_prob(m, m, a, target, style).mean() / 6
    assert torch.allclose(model.loss([m, a, labels], [target]), want) and torch.allclose(model.nll(m, a, target, style), want)


def test_sample_with_a_seen_past_keeps_the_data_as_the_residual_base():
    cfg = TransflowerConfig(motion_dim=6, audio_dim=5, d_model=32, n_heads=4, motion_layers=1, audio_layers=1,
                            cross_layers=1, context=8, dropout=0.0, flow_steps=2, flow_hidden=16, residual=True)
    torch.manual_seed(0)
    model = TransflowerLive(cfg).eval()
    m, a, z = torch.randn(1, 10, 6), torch.randn(1, 10, 5), torch.randn(1, 10, 6)
    seen = m + 0.5
    got = model.sample(m, a, noise=z, seen=seen)
    h = model.backbone(seen, a).reshape(10, -1)
    assert torch.allclose(got, model.residual_mask * m + model.flow.inverse(z.reshape(10, 6), h).reshape(1, 10, 6))
    assert torch.equal(model.sample(m, a, noise=z, seen=m), model.sample(m, a, noise=z))
