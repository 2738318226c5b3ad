"""Streaming audio features: ring buffer -> resampler -> the shared causal extractor, hop by hop.

The consumer side of the audio path (never the audio callback): once per frame the live loop calls
`pull()`, which drains the source's ring buffer, resamples to the feature rate, and runs every complete
hop through `transflower.audio_features.AudioFeatureExtractor` (so onset and tempo state see every hop,
exactly as offline). It keeps the newest row and the arrival time of that row's last sample (from the
callback's timestamps), so the engine can measure audio-in -> pose-out latency.

Arrival-time arithmetic (what `row_arrival` means). The ring stamps its newest sample: `(written,
t_write)` = (index + 1 of the newest sample, time.monotonic() when it was captured: the ADC time for a
PortAudio input). Samples are contiguous in time, so ring sample `i` arrived at
`t_write - (written - 1 - i) / samplerate`. The newest row ends after `feat_samples_done` samples at
the feature rate, i.e. after resampler input sample `feat_samples_done * ratio` (the aligned resampler
maps output n to input time n * ratio; its filter delay only postpones when that output is computed, so
it is part of the measured latency, not of the row's time). Resampler input index `j` is ring index
`j + ring_offset`, where `ring_offset` = samples the ring dropped (overruns) since this source was
attached. Hence

    row_arrival = t_write - (written - ring_offset - feat_samples_done * ratio) / samplerate

validated in tests/test_live.py with a synthetic device whose timestamps are known exactly, including
after an overrun (the older formula counted dropped samples as if they had been read, and so reported
every later frame late by the whole gap).

`attach(source)` moves to another source (a reopened device, possibly at another rate) keeping the
extractor's onset/tempo state; the live watchdog uses it when the audio device comes back.
"""
from __future__ import annotations

import math

import numpy as np

from transflower.realtime.audio_sources import AudioSource
from transflower.realtime.resampler import StreamResampler
from transflower.audio_features import AudioFeatureConfig, AudioFeatureExtractor


class StreamingAudioFeatures:
    def __init__(self, source: AudioSource, config: AudioFeatureConfig, max_block_s: float = 1.0, gain: float = 1.0):
        self.config, self.gain, self.max_block_s = config, float(gain), float(max_block_s)
        self.extractor = AudioFeatureExtractor(config)
        self.hop = self.extractor.hop
        self.fifo = np.zeros(int(config.sample_rate * max_block_s) + 4 * self.hop, np.float32)
        self.fifo_n = 0
        self.rows = 0
        self.row = np.zeros(config.dim, np.float32)
        self.row_arrival = None      # time.monotonic() when the newest row's last sample arrived
        self.level_db = -120.0       # RMS of the newest hop, for the status line
        self.dropped_samples = 0     # device samples lost to ring overruns (all sources so far)
        self.source = None
        self.attach(source)

    def attach(self, source: AudioSource) -> None:
        """Read from `source` from now on (its unread samples included). Feature state is kept; the
        partial hop in the fifo is kept too when the rate is unchanged, else dropped."""
        if self.source is not None:
            self.dropped_samples += self._ring_dropped()
        same_rate = self.source is not None and source.samplerate == self.source.samplerate
        self.source = source
        self.scratch = np.zeros(int(source.samplerate * self.max_block_s) + 1, np.float32)
        self.resampler = StreamResampler(source.samplerate, self.config.sample_rate, max_chunk=len(self.scratch))
        self.resampled = np.zeros(self.resampler.max_output(len(self.scratch)), np.float32)
        self.ratio = source.samplerate / self.config.sample_rate
        if not same_rate:
            self.fifo_n = 0
        self.dev_samples_read = 0    # device-rate samples of this source fed to the resampler
        # feature-rate samples consumed into rows, counted from this source's first resampled sample
        # (a kept partial hop counts as negative: it came from the previous source)
        self.feat_samples_done = -self.fifo_n
        self.ring_start = source.ring.total_read  # ring index of this source's first sample we read

    def _ring_dropped(self) -> int:
        ring = self.source.ring
        return max(0, ring.total_read - self.ring_start - self.dev_samples_read)

    def pull(self) -> int:
        """Consume what arrived; returns how many new feature rows were computed (0 when starved)."""
        ring = self.source.ring
        new_rows = 0
        # drain in blocks of at most max_block_s (after a long stall the ring may hold more)
        while True:
            n = ring.read_into(self.scratch)
            if n == 0:
                break
            new_rows += self._consume(n)
            if n < len(self.scratch):
                break
        if new_rows:
            written, t_write = ring.last_write  # one consistent (count, time) pair, taken after the read
            if written > 0:
                ring_offset = self.ring_start + self._ring_dropped()
                behind = written - ring_offset - self.feat_samples_done * self.ratio
                self.row_arrival = t_write - behind / self.source.samplerate
        return new_rows

    def _consume(self, n: int) -> int:
        self.dev_samples_read += n
        if self.gain != 1.0:
            self.scratch[:n] *= self.gain
        y = self.resampled[: self.resampler.process_into(self.scratch[:n], self.resampled)]
        if self.fifo_n + len(y) > len(self.fifo):  # the loop stalled for long: keep the newest audio
            keep = max(len(self.fifo) - len(y), 0)
            self.feat_samples_done += self.fifo_n - keep
            self.fifo[:keep] = self.fifo[self.fifo_n - keep : self.fifo_n]
            self.fifo_n = keep
            if len(y) > len(self.fifo):
                self.feat_samples_done += len(y) - len(self.fifo)
                y = y[len(y) - len(self.fifo):]
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
            self.level_db = 10 * math.log10(max(float(np.dot(last, last)) * 2.0 / len(last), 1e-12))
            self.fifo[: self.fifo_n - pos] = self.fifo[pos : self.fifo_n]
            self.fifo_n -= pos
            self.feat_samples_done += pos
            self.rows += new_rows
        return new_rows
