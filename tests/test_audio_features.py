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
