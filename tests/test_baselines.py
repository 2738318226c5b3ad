"""Baselines of issue 3 (transformer_mse, moglow, transflower_paper) and the live model's cached step.

Tiny models, a few optimiser steps: each overfits a tiny batch; each baseline generates the right shape
deterministically and respects its causality (or, for the paper layout, its designed non-causality); the
live model's KVCacheRunner rollout equals the full-recompute sampler (the live model itself is sampled by
transflower.realtime.engine.DanceEngine: tests/test_engine.py).
"""
import numpy as np
import pytest
import torch

from transflower.models import build_model
from transflower.models.transflower import KVCacheRunner

DM, DA = 6, 5
TINY = {
    "transflower_live": dict(d_model=32, n_heads=4, motion_layers=1, audio_layers=1, cross_layers=2, context=8,
                             lookahead=2, dropout=0.0, flow_steps=2, flow_hidden=16),
    "transformer_mse": dict(d_model=32, n_heads=4, motion_layers=1, audio_layers=1, cross_layers=2, context=8,
                            lookahead=2, dropout=0.0),
    "moglow": dict(hidden=32, lstm_layers=2, lookahead=2, dropout=0.0, flow_steps=2, flow_hidden=16),
    "transflower_paper": dict(d_model=32, n_heads=4, motion_layers=1, audio_layers=1, cross_layers=1, ff_mult=2,
                              motion_window=8, audio_window=11, dropout=0.0, flow_steps=2, flow_hidden=16),
}
FLOWS = ["transflower_live", "moglow", "transflower_paper"]
BASELINES = [n for n in TINY if n != "transflower_live"]  # the models with a torch `generate` of their own


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one intra-op thread is faster, and 10x faster when the cores are busy (measured)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(name, perturb=True, seed=0):
    torch.manual_seed(seed)
    model = build_model(name, {**TINY[name], "motion_dim": DM, "audio_dim": DA}).eval()
    if hasattr(model, "flow") and perturb:  # an untrained flow is the identity: make the couplings non-trivial
        for s in model.flow.steps:
            s.norm.initialized.fill_(True)
        with torch.no_grad():
            for p in model.flow.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return model


def song(T=80, seed=0):
    """A smooth synthetic 'dance' whose motion follows its 'music': (T, DM), (T, DA) float32 tensors."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    audio = np.sin(t * rng.uniform(0.1, 0.5, DA) + rng.uniform(0, 6, DA)) + 0.1 * rng.normal(size=(T, DA))
    motion = np.sin(t * rng.uniform(0.1, 0.3, DM) + rng.uniform(0, 6, DM)) + 0.3 * audio[:, :1]
    return torch.tensor(motion, dtype=torch.float32), torch.tensor(audio, dtype=torch.float32)


def batch(model, n=4, seq_len=12, T=80):
    """n windows cut from one synthetic song exactly as transflower.dataset cuts them (the model's spec)."""
    spec = model.window_spec(seq_len)
    arrs = dict(zip(["motion", "audio"], song(T)))
    starts = np.linspace(0, T - spec.span, n).astype(int)

    def cut(mods, offs, lens):
        return [torch.stack([arrs[m][s + o : s + o + k] for s in starts]) for m, o, k in zip(mods, offs, lens)]

    return (cut(spec.input_modalities, spec.input_time_offsets, spec.input_lengths),
            cut(spec.output_modalities, spec.output_time_offsets, spec.output_lengths))


def frame_noise(n, seed):
    """The noise generate() draws: one (1, DM) draw per frame from a seeded generator (a single (n, DM)
    draw gives other numbers: torch's CPU normal sampler is vectorised from 16 values up)."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randn(1, DM, generator=g) for _ in range(n)])


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_model_overfits_a_tiny_batch(name):
    model = tiny(name, perturb=False).train()
    inputs, outputs = batch(model)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(120):
        loss = model.loss(inputs, outputs)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    if name == "transformer_mse":  # MSE on unit-scale data: starts near 0.5-1
        assert losses[-1] < 0.1 * losses[0], losses[::20]
    else:  # NLL per dimension (nats): a memorised batch drops by well over a nat
        assert losses[-1] < losses[0] - 1.0, losses[::20]


@pytest.mark.parametrize("name", BASELINES)
def test_generate_shape_and_determinism(name):
    model = tiny(name)
    motion, audio = song(60)
    seed_motion, audio = motion[:5], audio[5:45]
    gen = lambda s, temp=1.0: model.generate(seed_motion, audio, 30, temp, torch.Generator().manual_seed(s))  # noqa: E731
    a, b = gen(7), gen(7)
    assert a.shape == (30, DM) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not model.training
    if name in FLOWS:
        assert not torch.allclose(a, gen(8), atol=1e-4)  # the noise matters
        assert torch.allclose(gen(9, 0.0), gen(10, 0.0))  # temperature 0: the flow's mode path, noise-free
    else:
        assert torch.equal(a, gen(8, 0.5))  # deterministic regression: seed and temperature ignored
    # audio may be longer than needed and the seed shorter than any window (front/back padding)
    assert model.generate(seed_motion[:1], audio[:3], 4, 1.0, torch.Generator().manual_seed(0)).shape == (4, DM)


def _lookahead(model):
    """How many audio frames past the generated frame the model reads."""
    c = model.cfg
    return c.future_frames - 1 if hasattr(c, "future_frames") else c.lookahead


@pytest.mark.parametrize("name", BASELINES)
def test_generate_reads_audio_only_up_to_its_lookahead(name):
    model = tiny(name)
    motion, audio = song(60)
    seed_motion, audio = motion[:10], audio[10:50]
    k = 20  # change the music from frame k on
    audio2 = audio.clone()
    audio2[k:] += 3.0
    g = lambda a: model.generate(seed_motion, a, 30, 1.0, torch.Generator().manual_seed(3))  # noqa: E731
    out1, out2 = g(audio), g(audio2)
    first_affected = k - _lookahead(model)  # frame i hears audio up to i + lookahead
    assert torch.equal(out1[:first_affected], out2[:first_affected])
    assert not torch.allclose(out1[first_affected], out2[first_affected], atol=1e-5)


def test_transformer_mse_is_causal():
    model = tiny("transformer_mse")
    m, a = torch.randn(2, 20, DM), torch.randn(2, 20, DA)
    y1 = model(m, a)
    m2, a2 = m.clone(), a.clone()
    m2[:, 12:] += 5.0
    a2[:, 12:] -= 3.0
    y2 = model(m2, a2)
    assert torch.allclose(y1[:, :12], y2[:, :12], atol=1e-6)
    assert not torch.allclose(y1[:, 12:], y2[:, 12:], atol=1e-3)


def test_moglow_is_causal_up_to_its_lookahead():
    model = tiny("moglow")
    L = model.cfg.lookahead
    m, a = torch.randn(2, 20, DM), torch.randn(2, 20 + L, DA)  # audio_in[t : t+L+1] is frame t's music
    h1, _ = model(m, a)
    m2 = m.clone()
    m2[:, 12:] += 5.0
    h2, _ = model(m2, a)
    assert torch.allclose(h1[:, :12], h2[:, :12], atol=1e-6)
    assert not torch.allclose(h1[:, 12], h2[:, 12], atol=1e-4)
    a2 = a.clone()
    a2[:, 12 + L :] -= 3.0  # first heard at frame 12
    h3, _ = model(m, a2)
    assert torch.allclose(h1[:, :12], h3[:, :12], atol=1e-6)
    assert not torch.allclose(h1[:, 12], h3[:, 12], atol=1e-4)


def test_moglow_generate_state_equals_teacher_forced_sequence():
    """Stepping the LSTM state frame by frame is the same computation as one pass over the sequence."""
    model = tiny("moglow")
    motion, audio = song(60)
    seed_motion, audio = motion[:6], audio[6:40]
    out = model.generate(seed_motion, audio, 20, 1.0, torch.Generator().manual_seed(5))
    noise = frame_noise(20, 5)
    L, S = model.cfg.lookahead, 6
    seq = torch.cat([seed_motion, out[:-1]])  # poses x_{-S}..x_{18}, each predicting the next
    idx = torch.arange(-S + 1, 20 + L).clamp(0, len(audio) - 1)  # audio a_{-S+1}..a_{19+L}
    h, _ = model(seq[None], audio[idx][None])
    ref = model.flow.inverse(noise, h[0, S - 1 :])
    assert (ref - out).abs().max() < 1e-4


def test_paper_model_hears_the_future_inside_its_window():
    model = tiny("transflower_paper")
    c = model.cfg
    m, a = torch.randn(2, c.motion_window, DM), torch.randn(2, c.audio_window, DA)
    h1 = model(m, a)
    a2 = a.clone()
    a2[:, c.motion_window :] += 3.0  # audio of the predicted frame and after: the future, by design
    assert not torch.allclose(h1, model(m, a2), atol=1e-4)
    m2 = m.clone()
    m2[:, 0] += 3.0  # the oldest pose in the window still matters (no band, no causal mask)
    assert not torch.allclose(h1, model(m2, a), atol=1e-4)
    spec = model.window_spec(999)  # fixed by the config, whatever data.seq_len says
    assert spec.input_lengths == [c.motion_window, c.audio_window] and spec.output_lengths == [1]
    assert spec.input_time_offsets == [0, 0] and spec.output_time_offsets == [c.motion_window]


def test_paper_model_step_full_window_matches_generate():
    model = tiny("transflower_paper")
    c = model.cfg
    motion, audio = song(60)
    seed_motion, audio = motion[: c.motion_window], audio[c.motion_window :]
    out = model.generate(seed_motion, audio, 3, 0.7, torch.Generator().manual_seed(1))
    noise = frame_noise(3, 1) * 0.7
    # frame 0 sees the whole seed and audio a_{-Wm}..a_{Wa-Wm-1}, the negative indices clamped to row 0
    aw = audio[(torch.arange(c.audio_window) - c.motion_window).clamp(0)]
    first = model.step_full_window(seed_motion[None], aw[None], noise[:1])
    assert (first[0] - out[0]).abs().max() < 1e-5


def hand_rolled(model, seed_motion, audio, noise):
    """A rollout by hand with a KVCacheRunner, fed this (n, DM) noise; audio has n rows."""
    L, S, n = model.cfg.lookahead, len(seed_motion), len(noise)
    aidx = lambda j: min(max(j, 0), n - 1)  # noqa: E731
    runner = KVCacheRunner(model)
    for j in range(-S, -1):
        runner.step(seed_motion[j + S][None], audio[aidx(j + 1 + L)][None], torch.zeros(1, DM))
    prev, ref = seed_motion[-1][None], []
    for i in range(n):
        prev = runner.step(prev, audio[aidx(i + L)][None], noise[i][None])
        ref.append(prev[0])
    return torch.stack(ref)


def test_live_kv_cache_rollout_equals_full_recompute():
    """The cached step (what the export traces and the engine runs) rolled out past the ring's wrap is the
    band-masked model recomputed over the whole generated sequence."""
    model = tiny("transflower_live").eval()
    L, S, n = model.cfg.lookahead, 5, 25  # 25 frames: past the ring's wrap (context 8 -> 7 slots)
    motion, audio = song(60)
    seed_motion, audio = motion[:S], audio[S:S + n]  # N == n: the last L frames pad with the last row
    noise = frame_noise(n, 11) * 0.8
    out = hand_rolled(model, seed_motion, audio, noise)

    # and the cached rollout is the band-masked model recomputed over the whole generated sequence
    seq = torch.cat([seed_motion, out[:-1]])
    a_in = audio[torch.arange(-S + 1 + L, n + L).clamp(0, n - 1)]
    full_noise = torch.cat([torch.zeros(S - 1, DM), noise])
    full = model.sample(seq[None], a_in[None], noise=full_noise[None])[0, S - 1 :]
    assert (full - out).abs().max() < 1e-4
