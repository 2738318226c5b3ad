"""The audio feature definition: the one place it lives.

Every feature is causal: the row for motion frame t sees only audio *before* time t / fps (the
analysis window ends at that instant), so the live extractor, fed one hop at a time, computes exactly
what the offline pass computes over a whole file. Both use `AudioFeatureExtractor.push_hop`; the
offline path simply loops it (a 3-minute song takes well under a second).

Per frame (fps frames per second, hop = sample_rate / fps samples):
- `mel_db[n_mels]`: log-mel power in dB against a *fixed* reference (0 dB = a full-scale sine),
  floored at `floor_db`. The paper normalised to each file's maximum, which a live stream cannot know.
- `rms_db`: the window's RMS level in dB (same reference).
- `onset`: onset strength, the mean positive change of mel_db since the previous frame (as librosa).
- `tempo`: log2(bpm / 120) of the strongest onset periodicity over the last `tempo_window_s` seconds
  (autocorrelation of the onset envelope, with a log-normal prior around 120 bpm).
- `pulse`: the onset envelope one, two and three beat periods ago, averaged: high when a beat is
  expected *now*, so the dancer can hit beats without looking into the future.

Numpy only (the live path imports this module).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from transflower.errors import UserError


@dataclass(frozen=True)
class AudioFeatureConfig:
    sample_rate: int = 24000
    fps: float = 20.0
    n_fft: int = 2048
    n_mels: int = 64
    fmin: float = 30.0
    fmax: float = 11000.0
    floor_db: float = -100.0
    tempo_window_s: float = 6.0
    min_bpm: float = 50.0
    max_bpm: float = 200.0

    @property
    def hop(self) -> int:
        hop = self.sample_rate / self.fps
        if abs(hop - round(hop)) > 1e-9:
            raise UserError(f"audio features: sample_rate {self.sample_rate} is not a whole multiple of fps {self.fps}")
        return int(round(hop))

    @property
    def dim(self) -> int:
        return self.n_mels + 4

    @property
    def names(self) -> list[str]:
        return [f"mel_{i}" for i in range(self.n_mels)] + ["rms_db", "onset", "tempo", "pulse"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AudioFeatureConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise UserError(f"audio feature config: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**d)


def hz_to_mel(f):
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular filters, Slaney-normalised; equals librosa.filters.mel."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


class AudioFeatureExtractor:
    """Causal feature extractor, one hop in, one feature row out. Preallocates everything.

    `push_hop(samples)` takes exactly `config.hop` mono float32 samples at `config.sample_rate` and
    returns the feature row for the frame that starts right after them (a view into an internal buffer:
    copy it if you keep it).
    """

    def __init__(self, config: AudioFeatureConfig | None = None):
        self.config = c = config or AudioFeatureConfig()
        self.hop = c.hop
        self.window = np.hanning(c.n_fft + 1)[:-1].astype(np.float64)  # periodic Hann, as librosa
        # 0 dB = a full-scale sine: its peak bin has |X| = sum(window) / 2
        self.power_ref = (self.window.sum() / 2.0) ** 2
        self.mel_fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax)
        self.amin = 10.0 ** (c.floor_db / 10.0)
        self.tempo_len = int(round(c.tempo_window_s * c.fps))
        self.lags = np.arange(max(2, int(np.floor(60.0 * c.fps / c.max_bpm))), int(np.ceil(60.0 * c.fps / c.min_bpm)) + 1)
        bpms = 60.0 * c.fps / self.lags
        self.lag_prior = np.exp(-0.5 * (np.log2(bpms / 120.0) / 1.0) ** 2)  # librosa's tempo prior, std 1 octave
        self.reset()

    def reset(self) -> None:
        c = self.config
        self.history = np.zeros(c.n_fft, dtype=np.float64)  # the last n_fft samples, oldest first
        self.frame_buf = np.empty(c.n_fft, dtype=np.float64)
        self.prev_mel_db = np.full(c.n_mels, c.floor_db)
        self.onset_hist = np.zeros(self.tempo_len + 1, dtype=np.float64)  # ring of onset values
        self.frames = 0
        self.out = np.zeros(c.dim, dtype=np.float32)

    def push_hop(self, samples: np.ndarray) -> np.ndarray:
        c, hop = self.config, self.hop
        if samples.shape != (hop,):
            raise ValueError(f"push_hop expects {hop} samples, got shape {samples.shape}")
        # slide the analysis window: the window for this frame ends at the newest sample
        self.history[:-hop] = self.history[hop:]
        self.history[-hop:] = samples
        np.multiply(self.history, self.window, out=self.frame_buf)
        spec = np.fft.rfft(self.frame_buf)
        power = spec.real**2 + spec.imag**2
        power /= self.power_ref
        mel = self.mel_fb @ power
        mel_db = 10.0 * np.log10(np.maximum(mel, self.amin))
        rms = np.mean(self.history**2) * 2.0  # x2: a full-scale sine has mean square 1/2 -> 0 dB
        rms_db = 10.0 * np.log10(max(rms, self.amin))
        onset = float(np.mean(np.maximum(0.0, mel_db - self.prev_mel_db))) if self.frames > 0 else 0.0
        self.prev_mel_db[:] = mel_db

        # onset ring: slot (frames mod len) holds the onset of this frame
        n = len(self.onset_hist)
        self.onset_hist[self.frames % n] = onset
        tempo, pulse = self._tempo_and_pulse()
        self.frames += 1

        out = self.out
        out[: c.n_mels] = mel_db
        out[c.n_mels] = rms_db
        out[c.n_mels + 1] = onset
        out[c.n_mels + 2] = tempo
        out[c.n_mels + 3] = pulse
        return out

    def _tempo_and_pulse(self) -> tuple[float, float]:
        n = len(self.onset_hist)
        t = self.frames
        # unroll the ring into time order, oldest first; frames before the start are zeros
        env = np.roll(self.onset_hist, -((t + 1) % n))
        env = env - env.mean()
        # autocorrelation at the candidate lags (small: ~20 lags x 120 frames)
        ac = np.array([np.dot(env[lag:], env[:-lag]) for lag in self.lags])
        score = np.maximum(ac, 0.0) * self.lag_prior
        if score.max() <= 0.0:
            return 0.0, 0.0
        lag = int(self.lags[int(np.argmax(score))])
        bpm = 60.0 * self.config.fps / lag
        # the onset envelope one, two, three periods ago (clipped to the window)
        past = [self.onset_hist[(t - k * lag) % n] for k in (1, 2, 3) if k * lag <= min(t, n - 1)]
        pulse = float(np.mean(past)) if past else 0.0
        return float(np.log2(bpm / 120.0)), pulse


def num_frames_for(num_samples: int, config: AudioFeatureConfig) -> int:
    """Frames whose analysis window ends inside the signal: frame t ends at sample (t+1) * hop."""
    return num_samples // config.hop


def compute_audio_features(y: np.ndarray, sr: int, config: AudioFeatureConfig | None = None,
                           num_frames: int | None = None) -> np.ndarray:
    """Offline features of a whole mono signal: (num_frames, dim) float32.

    Row t is the feature the live path has at frame t: the window ends at sample (t+1)*hop of the
    resampled signal. `num_frames` pads with silence (or truncates) to match a motion clip.
    """
    config = config or AudioFeatureConfig()
    y = resample_offline(np.asarray(y, dtype=np.float64), sr, config.sample_rate)
    hop = config.hop
    n = num_frames if num_frames is not None else num_frames_for(len(y), config)
    if len(y) < n * hop:
        y = np.concatenate([y, np.zeros(n * hop - len(y))])
    ex = AudioFeatureExtractor(config)
    out = np.empty((n, config.dim), dtype=np.float32)
    for t in range(n):
        out[t] = ex.push_hop(y[t * hop : (t + 1) * hop])
    return out


def resample_offline(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return y
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(y, sr_out // g, sr_in // g)


def load_audio_mono(path) -> tuple[np.ndarray, int]:
    """Decode an audio file to mono float32; a clear UserError names the file if it is not audio."""
    import soundfile as sf

    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError with a terse message
        raise UserError(f"{path}: cannot be read as audio ({e}); expected a WAV, FLAC, OGG or MP3 file") from None
    if y.shape[0] == 0:
        raise UserError(f"{path}: the audio file holds no samples")
    return y.mean(axis=1), int(sr)
