"""Single-producer single-consumer audio ring buffer for the live path.

The producer is an audio callback (PortAudio thread, or a paced feeder thread); the consumer is the
engine loop. No locks: each counter is written by exactly one side and only ever grows, and Python
int/tuple attribute stores are atomic under the interpreter lock.

- ``_w_reserve`` / ``_w``: producer-only. ``_w_reserve`` is raised to the new end *before* the copy,
  ``_w`` after it (a seqlock): samples ``[_w - capacity, _w)`` are readable, and a sample with index
  ``i < _w_reserve - capacity`` may have been (or be being) overwritten.
- ``_r``: consumer-only read counter.

If the consumer is too slow the producer overwrites the oldest unread samples (a real device would
drop them too) and counts ``overruns`` / ``overrun_samples``; it never raises or blocks. The
consumer notices the gap on its next read, skips to the oldest intact sample, counts it in
``dropped_samples`` and, if a write raced with its copy, discards the torn head (``torn_reads``), so
what it returns is always a contiguous, in-order run of the stream.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["AudioRingBuffer"]


class AudioRingBuffer:
    """Fixed-capacity SPSC ring of samples (mono by default, or ``(capacity, channels)`` frames)."""

    def __init__(self, capacity_samples: int, dtype=np.float32, channels: int | None = None):
        capacity_samples = int(capacity_samples)
        if capacity_samples <= 0:
            raise ValueError(f"capacity_samples must be > 0, got {capacity_samples}")
        shape = (capacity_samples,) if channels is None else (capacity_samples, int(channels))
        self._buf = np.zeros(shape, dtype=dtype)
        self.capacity = capacity_samples
        self.dtype = self._buf.dtype
        # producer-owned
        self._w = 0
        self._w_reserve = 0
        self.writes = 0
        self.overruns = 0
        self.overrun_samples = 0
        # (write counter after the write, time.monotonic of the block's newest sample): one tuple so
        # the consumer never sees a count from one write with the time of another.
        self._stamp: tuple[int, float] = (0, 0.0)
        # consumer-owned
        self._r = 0
        self.dropped_samples = 0
        self.skipped_samples = 0
        self.torn_reads = 0

    # ------------------------------------------------------------------ producer side
    def write(self, block: np.ndarray, timestamp: float | None = None) -> None:
        """Append ``block`` (any length; at most two slice copies). Never blocks, never raises on
        overrun. ``timestamp``: time.monotonic() of the block's newest sample (defaults to now)."""
        n = block.shape[0]
        if n == 0:
            return
        cap = self.capacity
        w = self._w
        if n > cap:  # only the newest `cap` samples can survive
            block = block[n - cap:]
            skip = n - cap
        else:
            skip = 0
        # overrun accounting against the consumer's (possibly stale: only conservative) read counter
        r = self._r
        lost_before = w - r - cap
        lost_after = w + n - r - cap
        if lost_after > 0:
            self.overruns += 1
            self.overrun_samples += lost_after - (lost_before if lost_before > 0 else 0)
        self._w_reserve = w + n  # publish "about to overwrite up to here" before touching the data
        start = (w + skip) % cap
        m = block.shape[0]
        first = cap - start
        if m <= first:
            self._buf[start:start + m] = block
        else:
            self._buf[start:] = block[:first]
            self._buf[:m - first] = block[first:]
        self._w = w + n
        self.writes += 1
        self._stamp = (w + n, time.monotonic() if timestamp is None else timestamp)

    # ------------------------------------------------------------------ consumer side
    def available(self) -> int:
        """Unread samples still held (at most ``capacity``)."""
        a = self._w - self._r
        return a if a < self.capacity else self.capacity

    @property
    def total_written(self) -> int:
        return self._w

    @property
    def total_read(self) -> int:
        return self._r

    @property
    def last_write_time(self) -> float:
        """time.monotonic() of the newest sample written (0.0 before the first write)."""
        return self._stamp[1]

    @property
    def last_write(self) -> tuple[int, float]:
        """(write counter, time.monotonic() of that sample): the engine's audio-in timestamp."""
        return self._stamp

    def _copy_out(self, start: int, out: np.ndarray, k: int) -> None:
        cap = self.capacity
        s = start % cap
        first = cap - s
        if k <= first:
            out[:k] = self._buf[s:s + k]
        else:
            out[:first] = self._buf[s:]
            out[first:k] = self._buf[:k - first]

    def _read(self, out: np.ndarray, latest: bool) -> int:
        n = out.shape[0]
        cap = self.capacity
        while True:
            w = self._w
            r = self._r
            oldest = w - cap
            if r < oldest:  # the producer lapped us
                self.dropped_samples += oldest - r
                r = oldest
            avail = w - r
            if latest:
                k = avail if avail < n else n
                self.skipped_samples += avail - k
                start = w - k
            else:
                k = avail if avail < n else n
                start = r
            if k <= 0:
                self._r = r
                return 0
            self._copy_out(start, out, k)
            # seqlock check: anything below reserve - cap may have been overwritten during the copy
            safe_from = self._w_reserve - cap
            if start >= safe_from:
                self._r = start + k
                return k
            self.torn_reads += 1
            torn = safe_from - start
            if torn < k:  # keep the intact tail, move it to the front (rare path)
                out[:k - torn] = out[torn:k].copy()
                self.dropped_samples += torn
                self._r = start + k
                return k - torn
            self.dropped_samples += k
            self._r = start + k  # everything torn: try again from the new oldest sample

    def read_into(self, out: np.ndarray) -> int:
        """Copy the oldest unread samples into ``out[:k]``, advance, return ``k`` (<= len(out))."""
        return self._read(out, latest=False)

    def read_latest_into(self, out: np.ndarray) -> int:
        """Copy the newest unread samples (up to len(out)) into ``out[:k]``, skipping older unread
        ones (counted in ``skipped_samples``); return ``k``. For a consumer that fell behind."""
        return self._read(out, latest=True)

    def peek_latest_into(self, out: np.ndarray) -> int:
        """Copy the newest ``min(len(out), written, capacity)`` samples (read or not) without
        advancing; returns the count, or 0 if a write tore the copy (call again)."""
        w = self._w
        k = min(out.shape[0], w, self.capacity)
        if k <= 0:
            return 0
        self._copy_out(w - k, out, k)
        return k if w - k >= self._w_reserve - self.capacity else 0

    def clear(self) -> None:
        """Consumer side: drop everything unread."""
        self._r = self._w

    def stats(self) -> dict:
        return dict(capacity=self.capacity, written=self._w, read=self._r, writes=self.writes,
                    overruns=self.overruns, overrun_samples=self.overrun_samples,
                    dropped_samples=self.dropped_samples, skipped_samples=self.skipped_samples,
                    torn_reads=self.torn_reads)
