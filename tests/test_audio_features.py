"""The causal audio feature definition: filterbank, causality, chunking, tempo and pulse."""
import numpy as np
import pytest

from transflower.audio_features import (AudioFeatureConfig, AudioFeatureExtractor, compute_audio_features,
                                        load_audio_mono, mel_filterbank)
from transflower.errors import UserError

CFG = AudioFeatureConfig()


def click_track(bpm=120.0, seconds=12.0, sr=24000):
    y = np.zeros(int(seconds * sr), np.float32)
    period = int(round(60.0 / bpm * sr))
    click = (np.sin(2 * np.pi * 1000 * np.arange(600) / sr) * np.exp(-np.arange(600) / 120)).astype(np.float32)
    for start in range(0, len(y) - 600, period):
        y[start : start + 600] += 0.8 * click
    return y


def test_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(CFG.sample_rate, CFG.n_fft, CFG.n_mels, CFG.fmin, CFG.fmax)
    ref = librosa.filters.mel(sr=CFG.sample_rate, n_fft=CFG.n_fft, n_mels=CFG.n_mels, fmin=CFG.fmin, fmax=CFG.fmax)
    assert np.abs(ours - ref).max() < 1e-6


def test_fixed_reference_full_scale_sine_is_about_0_db():
    sr = CFG.sample_rate
    y = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr).astype(np.float32)
    f = compute_audio_features(y, sr)
    assert abs(f[-1, CFG.n_mels] - 0.0) < 0.5  # rms_db
    quiet = compute_audio_features(0.01 * y, sr)
    assert abs((f[-1, CFG.n_mels] - quiet[-1, CFG.n_mels]) - 40.0) < 0.5  # absolute, not per-file, levels


def test_causal_future_audio_does_not_change_past_rows():
    rng = np.random.default_rng(0)
    y = rng.normal(size=CFG.sample_rate * 4).astype(np.float32) * 0.1
    a = compute_audio_features(y, CFG.sample_rate)
    y2 = y.copy()
    cut = 40 * CFG.hop  # frame 40's window ends exactly here
    y2[cut:] = rng.normal(size=len(y) - cut) * 0.5
    b = compute_audio_features(y2, CFG.sample_rate)
    assert np.array_equal(a[:40], b[:40])
    assert not np.allclose(a[40:], b[40:])


def test_streaming_one_hop_at_a_time_equals_offline():
    y = click_track(seconds=5)
    off = compute_audio_features(y, CFG.sample_rate)
    ex = AudioFeatureExtractor(CFG)
    live = np.stack([ex.push_hop(y[t * CFG.hop : (t + 1) * CFG.hop]).copy() for t in range(len(off))])
    assert np.array_equal(off, live)


def test_tempo_and_pulse_on_a_click_track():
    y = click_track(bpm=120.0, seconds=12)
    f = compute_audio_features(y, CFG.sample_rate)
    tempo = f[:, CFG.n_mels + 2]
    assert np.all(np.abs(tempo[150:]) < 0.05), "120 bpm -> log2(120/120) = 0"
    pulse, onset = f[:, CFG.n_mels + 3], f[:, CFG.n_mels + 1]
    # the pulse predicts beats from the past: it peaks on the frames where onsets happen
    beat_frames = np.where(onset[150:] > onset[150:].max() * 0.5)[0] + 150
    off_frames = np.setdiff1d(np.arange(150, len(f)), np.concatenate([beat_frames - 1, beat_frames, beat_frames + 1]))
    assert pulse[beat_frames].mean() > 3 * pulse[off_frames].mean()


def test_non_audio_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    with pytest.raises(UserError, match="notes.wav: cannot be read as audio"):
        load_audio_mono(bad)


def test_bad_rate_is_a_clear_error():
    with pytest.raises(UserError, match="not a whole multiple"):
        _ = AudioFeatureConfig(sample_rate=24000, fps=7.0).hop


def _reference_rows(y, c=CFG):
    """The feature definition written plainly in numpy (dense filterbank, np.roll, np.argmax): the compiled
    kernel must compute the same rows."""
    ex = AudioFeatureExtractor(c)
    window, fb = ex.window, mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax)
    history, prev = np.zeros(c.n_fft), np.full(c.n_mels, c.floor_db)
    hist = np.zeros(ex.tempo_len + 1)
    n, rows = len(hist), []
    for t in range(len(y) // c.hop):
        history = np.concatenate([history[c.hop:], y[t * c.hop:(t + 1) * c.hop]])
        spec = np.fft.rfft(history * window)
        mel_db = 10 * np.log10(np.maximum(fb @ (np.abs(spec) ** 2 / ex.power_ref), ex.amin))
        rms_db = 10 * np.log10(max(np.mean(history ** 2) * 2, ex.amin))
        onset = float(np.mean(np.maximum(0, mel_db - prev))) if t > 0 else 0.0
        prev = mel_db
        hist[t % n] = onset
        env = np.roll(hist, -((t + 1) % n))
        env = env - env.mean()
        score = np.maximum([np.dot(env[lag:], env[:-lag]) for lag in ex.lags], 0) * ex.lag_prior
        tempo = pulse = 0.0
        if score.max() > 0:
            lag = int(ex.lags[np.argmax(score)])
            tempo = np.log2(60 * c.fps / lag / 120)
            past = [hist[(t - k * lag) % n] for k in (1, 2, 3) if k * lag <= min(t, n - 1)]
            pulse = float(np.mean(past)) if past else 0.0
        rows.append(np.concatenate([mel_db, [rms_db, onset, tempo, pulse]]))
    return np.array(rows, np.float32)


def test_compiled_hop_equals_the_plain_numpy_definition():
    rng = np.random.default_rng(3)
    y = 0.3 * rng.normal(size=CFG.hop * 200)
    y[: CFG.hop * 10] = 0.0  # silence first: the floor, zero onsets, no tempo yet
    y += click_track(bpm=100.0, seconds=len(y) / CFG.sample_rate)[: len(y)]
    ours = compute_audio_features(y.astype(np.float32), CFG.sample_rate, CFG)
    ref = _reference_rows(y.astype(np.float32))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)
    assert (ref[20:, -2] != 0).mean() > 0.9 and (ref[20:, -1] != 0).mean() > 0.9  # tempo and pulse were exercised
