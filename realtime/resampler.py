"""`StreamResampler`: streaming polyphase resampling of the audio input to the feature rate, on the
consumer side (the audio callback only copies into the ring buffer), allocation-free with `process_into`.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np


def kaiser_lowpass(numtaps: int, cutoff: float, beta: float = 5.0) -> np.ndarray:
    """A windowed-sinc lowpass FIR, cutoff relative to Nyquist, unit gain at DC: what
    scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta)) designs (tests check it), without
    importing scipy.signal (2.5 s of start-up for this one function)."""
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return h / h.sum()


class StreamResampler:
    """Streaming polyphase resampler (the same Kaiser-windowed FIR that scipy.signal.resample_poly
    designs), for the consumer side. ``process(chunk)`` returns every output sample whose inputs have
    arrived (``process_into(chunk, out)`` writes them into a preallocated array instead: no allocation);
    chunked output equals one-shot output. With ``align=True`` (default) the filter's delay is
    removed, so the concatenated output equals ``resample_poly(x, up, down)`` except for the last few
    samples, which need ``flush()`` (zeros) as resample_poly's zero-padding does. The cost of that
    alignment is ``delay_s`` of latency (about 10 input samples). The filter runs as a compiled kernel
    (transflower.kernels.fir_polyphase)."""

    def __init__(self, in_rate: float, out_rate: float, window=("kaiser", 5.0), align: bool = True,
                 dtype=np.float32, max_chunk: int = 8192):
        from transflower.kernels import fir_polyphase

        ratio = Fraction(in_rate).limit_denominator(100000) / Fraction(out_rate).limit_denominator(100000)
        ratio = ratio.limit_denominator(10000)
        self.in_rate, self.out_rate = float(in_rate), float(out_rate)
        self._args = (in_rate, out_rate, window, align, dtype, max_chunk)
        self.up, self.down = ratio.denominator, ratio.numerator   # out/in = up/down
        self.dtype = np.dtype(dtype)
        self._kernel = fir_polyphase
        L, M = self.up, self.down
        self.passthrough = (L == M == 1)
        self._n_in = self._n_out = self._emitted = 0
        if self.passthrough:
            self.taps_per_phase = 1
            self.delay_s = 0.0
            self._drop = 0
            return
        if window[0] != "kaiser":
            raise ValueError(f"StreamResampler: only a ('kaiser', beta) window is supported, got {window!r}")
        half_len = 10 * max(L, M)
        h = kaiser_lowpass(2 * half_len + 1, 1.0 / max(L, M), float(window[1])) * L
        n_pre_pad = M - half_len % M
        h = np.concatenate([np.zeros(n_pre_pad), h])
        T = -(-h.size // L)
        h = np.concatenate([h, np.zeros(T * L - h.size)])
        # bank[p, t] multiplies x[q - (T-1) + t] for an output whose up-sampled index j has j % L == p,
        # q = j // L (i.e. tap h[p + L*i] on x[q - i], reversed so it is a dot with a forward window)
        self._bank = h.reshape(T, L).T[:, ::-1].copy()
        self.taps_per_phase = T
        self._max_chunk = int(max_chunk)
        self._buf = np.zeros(T - 1 + self._max_chunk, dtype=np.float64)  # history (T-1) + the new chunk
        self._out64 = np.zeros(self.output_length(self._max_chunk) + 2, dtype=np.float64)
        self._drop = (half_len + n_pre_pad) // M if align else 0
        # latency: an output sample needs inputs this far past its own time (the filter's lookahead)
        self.delay_s = (half_len + n_pre_pad) / (L * self.in_rate)

    def output_length(self, n_in: int) -> int:
        """Samples a one-shot resample_poly would return for ``n_in`` inputs."""
        return -(-n_in * self.up // self.down)

    def max_output(self, n_in: int) -> int:
        """The most samples one process_into call can return for ``n_in`` inputs."""
        return n_in if self.passthrough else n_in * self.up // self.down + 2

    def process(self, chunk: np.ndarray) -> np.ndarray:
        x = np.asarray(chunk)
        out = np.empty(self.max_output(x.shape[0]), self.dtype)
        return out[: self.process_into(x, out)]

    def process_into(self, chunk: np.ndarray, out: np.ndarray) -> int:
        """Resample ``chunk``; the new outputs go to out[:n]; returns n (out needs max_output(len(chunk)))."""
        n_chunk = chunk.shape[0]
        if self.passthrough:
            self._n_in += n_chunk
            self._emitted += n_chunk
            out[:n_chunk] = chunk
            return n_chunk
        done = 0
        for s in range(0, n_chunk, self._max_chunk):
            done += self._process_block(chunk[s:s + self._max_chunk], out[done:])
        return done

    def _process_block(self, x, out) -> int:
        L, M, T1 = self.up, self.down, self.taps_per_phase - 1
        n = x.shape[0]
        buf = self._buf
        buf[T1:T1 + n] = x
        n_old = self._n_in
        self._n_in += n
        n_end = -(-self._n_in * L // M)     # outputs n with (n*M)//L <= n_in - 1
        k = 0
        if n_end > self._n_out:
            k = self._kernel(self._bank, buf, n_old, self._n_out, n_end, L, M, self._drop, self._out64)
            self._drop -= min(self._drop, n_end - self._n_out)
            self._n_out = n_end
            out[:k] = self._out64[:k]
            self._emitted += k
        buf[:T1] = buf[n:n + T1]  # keep the newest T-1 inputs as the next block's history
        return k

    def flush(self) -> np.ndarray:
        """Outputs still held back by the filter (feeds zeros, like resample_poly's edge): after it
        the total output is exactly ``output_length(total input)``. The stream ends here (reset()
        to reuse)."""
        if self.passthrough:
            return np.empty(0, self.dtype)
        want = self.output_length(self._n_in) - self._emitted
        if want <= 0:
            return np.empty(0, self.dtype)
        y = self.process(np.zeros(self.taps_per_phase + 2 * (self.down // self.up) + 2))
        return y[:want]

    def reset(self) -> None:
        """Forget the stream (history, counters); same rates and filter."""
        self.__init__(*self._args)
