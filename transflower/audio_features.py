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

Numpy and the compiled kernel `transflower.kernels.audio_hop` (the live path imports this module; no torch).
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
    def lags(self) -> np.ndarray:
        """The onset-autocorrelation lags (frames) the tempo is chosen among, min_bpm..max_bpm."""
        return np.arange(max(2, int(np.floor(60.0 * self.fps / self.max_bpm))), int(np.ceil(60.0 * self.fps / self.min_bpm)) + 1)

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
        from transflower import kernels

        self.config = c = config or AudioFeatureConfig()
        self.hop, self._fps = c.hop, float(c.fps)
        self._kernel = kernels.audio_hop
        self.window = np.hanning(c.n_fft + 1)[:-1].astype(np.float64)  # periodic Hann, as librosa
        # 0 dB = a full-scale sine: its peak bin has |X| = sum(window) / 2
        self.power_ref = (self.window.sum() / 2.0) ** 2
        mel_fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax)
        # each triangle's nonzero band, packed: the kernel reads 2k weights, not the 64 x 1025 matrix
        bands = [np.flatnonzero(row) for row in mel_fb]
        self.mel_lo = np.array([b[0] if len(b) else 0 for b in bands], np.int64)
        widths = [b[-1] - b[0] + 1 if len(b) else 0 for b in bands]
        self.mel_off = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        self.mel_w = np.concatenate([row[lo:lo + w] for row, lo, w in zip(mel_fb, self.mel_lo, widths)])
        self.amin = 10.0 ** (c.floor_db / 10.0)
        self.tempo_len = int(round(c.tempo_window_s * c.fps))
        self.lags = c.lags
        bpms = 60.0 * c.fps / self.lags
        self.lag_prior = np.exp(-0.5 * (np.log2(bpms / 120.0) / 1.0) ** 2)  # librosa's tempo prior, std 1 octave
        self.reset()

    def reset(self) -> None:
        c = self.config
        self.history = np.zeros(c.n_fft, dtype=np.float64)  # the last n_fft samples, oldest first
        self.frame_buf = np.empty(c.n_fft, dtype=np.float64)
        self.spec = np.empty(c.n_fft // 2 + 1, dtype=np.complex128)
        self.prev_mel_db = np.full(c.n_mels, c.floor_db)
        self.onset_hist = np.zeros(self.tempo_len + 1, dtype=np.float64)  # ring of onset values
        self.env = np.zeros_like(self.onset_hist)  # the kernel's scratch
        self.frames = 0
        self.out = np.zeros(c.dim, dtype=np.float32)

    def push_hop(self, samples: np.ndarray) -> np.ndarray:
        """One hop in -> the row: the window's FFT (numpy, into a kept buffer), then mel / level / onset /
        tempo / pulse in one compiled pass (transflower.kernels.audio_hop)."""
        hop = self.hop
        if samples.shape != (hop,):
            raise ValueError(f"push_hop expects {hop} samples, got shape {samples.shape}")
        # slide the analysis window: the window for this frame ends at the newest sample
        self.history[:-hop] = self.history[hop:]
        self.history[-hop:] = samples
        np.multiply(self.history, self.window, out=self.frame_buf)
        np.fft.rfft(self.frame_buf, out=self.spec)
        self._kernel(self.spec, self.power_ref, self.mel_lo, self.mel_off, self.mel_w, self.amin, self.history,
                     self.prev_mel_db, self.onset_hist, self.frames, self._fps, self.lags, self.lag_prior,
                     self.env, self.out)
        self.frames += 1
        return self.out


def silence_row(audio_config: dict) -> np.ndarray:
    """The feature row of digital silence (an audio config as a dict, as models carry it): what a model hears
    during its warm start and past a song's end."""
    ex = AudioFeatureExtractor(AudioFeatureConfig.from_dict(audio_config))
    return ex.push_hop(np.zeros(ex.hop, np.float32)).copy()


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
