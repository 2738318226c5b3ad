"""Streaming audio features: ring buffer -> resampler -> the shared causal extractor, hop by hop.

The consumer side of the audio path (never the audio callback): once per frame the live loop calls
`pull()`, which drains the source's ring buffer, resamples to the feature rate, and runs every complete
hop through `transflower.audio_features.AudioFeatureExtractor` (so onset and tempo state see every hop,
exactly as offline). It keeps the newest row and the arrival time of that row's last sample (from the
callback's timestamps), so the engine can measure audio-in -> pose-out latency.
"""
from __future__ import annotations

import numpy as np

from realtime.audio_sources import AudioSource, StreamResampler
from transflower.audio_features import AudioFeatureConfig, AudioFeatureExtractor


class StreamingAudioFeatures:
    def __init__(self, source: AudioSource, config: AudioFeatureConfig, max_block_s: float = 1.0, gain: float = 1.0):
        self.source, self.config, self.gain = source, config, float(gain)
        self.extractor = AudioFeatureExtractor(config)
        self.hop = self.extractor.hop
        self.resampler = StreamResampler(source.samplerate, config.sample_rate)
        self.ratio = source.samplerate / config.sample_rate
        self.scratch = np.zeros(int(source.samplerate * max_block_s) + 1, np.float32)
        self.fifo = np.zeros(int(config.sample_rate * max_block_s) + 4 * self.hop, np.float32)
        self.fifo_n = 0
        self.dev_samples_read = 0    # device-rate samples consumed from the ring
        self.feat_samples_done = 0   # feature-rate samples already turned into rows
        self.rows = 0
        self.row = np.zeros(config.dim, np.float32)
        self.row_arrival = None      # time.monotonic() when the newest row's last sample arrived
        self.level_db = -120.0       # RMS of the newest hop, for the status line

    def pull(self) -> int:
        """Consume what arrived; returns how many new feature rows were computed (0 when starved)."""
        ring = self.source.ring
        written, t_write = ring.last_write
        n = ring.read_into(self.scratch)
        if n == 0:
            return 0
        self.dev_samples_read += n
        if self.gain != 1.0:
            self.scratch[:n] *= self.gain
        y = self.resampler.process(self.scratch[:n])
        if self.fifo_n + len(y) > len(self.fifo):  # the loop stalled for long: keep the newest audio
            keep = len(self.fifo) - len(y)
            self.feat_samples_done += self.fifo_n - max(keep, 0)
            self.fifo[: max(keep, 0)] = self.fifo[self.fifo_n - max(keep, 0) : self.fifo_n]
            self.fifo_n = max(keep, 0)
        self.fifo[self.fifo_n : self.fifo_n + len(y)] = y
        self.fifo_n += len(y)
        new_rows = 0
        pos = 0
        while self.fifo_n - pos >= self.hop:
            hop = self.fifo[pos : pos + self.hop]
            self.row[:] = self.extractor.push_hop(hop)
            pos += self.hop
            new_rows += 1
        if new_rows:
            last = self.fifo[pos - self.hop : pos]
            self.level_db = float(10 * np.log10(max(np.mean(last * last) * 2.0, 1e-12)))
            self.fifo[: self.fifo_n - pos] = self.fifo[pos : self.fifo_n]
            self.fifo_n -= pos
            self.feat_samples_done += pos
            self.rows += new_rows
            # the newest row ends fifo_n feature samples before the newest resampled sample, which
            # (resampler delay aside) is the newest device sample, written at t_write
            if t_write is not None and written > 0:
                behind_dev = self.fifo_n * self.ratio + (written - self.dev_samples_read)
                self.row_arrival = t_write - behind_dev / self.source.samplerate
        return new_rows
