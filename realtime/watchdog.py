"""Keep the show going when the audio input fails.

`AudioWatchdog` is checked once per frame by the live loop (cheap: a few comparisons). It notices a
stalled or failed source (no new samples for `stall_s`, or the source reporting an error), logs it
once, and reopens the input with back-off in a background thread, so opening a device (which can take
seconds) never delays a frame. When a reopened source delivers audio, the loop picks it up with
`take_replacement()` and attaches it to its feature extractor; the watchdog logs the recovery once.
Meanwhile the loop dances to the last music for a moment, then to silence-level features.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger("transflower.live")


class AudioWatchdog:
    def __init__(self, source, factory: Callable[[], object] | None, stall_s: float = 0.5,
                 reopen_after_s: float = 1.0, backoff_s=(0.5, 1.0, 2.0, 4.0, 8.0), first_audio_timeout_s: float = 4.0,
                 clock: Callable[[], float] = time.monotonic):
        self.source = source
        self.factory = factory
        self.stall_s, self.reopen_after_s = float(stall_s), float(reopen_after_s)
        self.backoff_s = tuple(float(b) for b in backoff_s)
        self.first_audio_timeout_s = float(first_audio_timeout_s)
        self.clock = clock
        self.last_audio = clock()
        self.state = "ok"            # ok | stalled | reopening
        self.outages = 0             # stalls/failures noticed
        self.recoveries = 0          # times audio came back (same source or a reopened one)
        self.reopen_attempts = 0
        self.reopened = 0            # sources replaced after a failure
        self.stale_overruns = 0      # ring overruns / input overflows of sources already replaced
        self._outage_start = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._replacement = None
        self._lock = threading.Lock()

    def source_started(self) -> None:
        """The source began delivering now (a file starts with the frame loop): its silence counts from here."""
        self.last_audio = self.clock()

    # ------------------------------------------------------------------ per frame (loop thread)
    def check(self, got_audio: bool) -> str:
        now = self.clock()
        if got_audio:
            self.last_audio = now
            if self.state != "ok":
                self.recoveries += 1
                log.warning("audio input back after %.1f s (%s)", now - self._outage_start, self.source.name)
                self._cancel_reopen()
                self.state = "ok"
            return self.state
        error = getattr(getattr(self.source, "status", None), "error", None)
        silent_for = now - self.last_audio
        if self.state == "ok" and (silent_for > self.stall_s or error):
            self.state = "stalled"
            self.outages += 1
            self._outage_start = self.last_audio
            why = f"source error: {error}" if error else f"no samples for {silent_for:.1f} s"
            log.warning("audio input %s lost (%s); dancing on to silence, reopening it with back-off",
                        self.source.name, why)
        if (self.state == "stalled" and self.factory is not None
                and (silent_for > self.reopen_after_s or error)):
            self.state = "reopening"
            self._start_reopen()
        return self.state

    def take_replacement(self):
        """A reopened source that is delivering audio (once), else None."""
        if self._replacement is None:
            return None
        with self._lock:
            new, self._replacement = self._replacement, None
        if new is None:
            return None
        old = self.source
        self.stale_overruns += _overruns(old)
        self.source = new
        self.reopened += 1
        self._thread = None
        return new

    def overruns(self) -> int:
        return self.stale_overruns + _overruns(self.source)

    @property
    def silent_for(self) -> float:
        return self.clock() - self.last_audio

    # ------------------------------------------------------------------ reopening (background)
    def _start_reopen(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        old = self.source
        self._thread = threading.Thread(target=self._reopen, args=(old,), name="audio-reopen", daemon=True)
        self._thread.start()

    def _cancel_reopen(self) -> None:
        self._stop.set()

    def _reopen(self, old) -> None:
        try:
            old.stop()
        except Exception as e:  # noqa: BLE001  a dead device may fail to close: we replace it anyway
            log.debug("closing the failed audio input: %s", e)
        attempt = 0
        while not self._stop.is_set():
            delay = self.backoff_s[min(attempt, len(self.backoff_s) - 1)]
            attempt += 1
            self.reopen_attempts += 1
            new = None
            try:
                new = self.factory()
                new.start()
                if _wait_for_audio(new, self.first_audio_timeout_s, self._stop):
                    with self._lock:
                        self._replacement = new
                    log.info("audio input reopened: %s (attempt %d)", new.name, attempt)
                    return
                reason = "no audio"
            except Exception as e:  # noqa: BLE001  UserError (device missing), PortAudioError, ...
                reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            if new is not None:
                try:
                    new.stop()
                except Exception:  # noqa: BLE001
                    pass
            if attempt == 1:
                log.info("cannot reopen the audio input yet (%s); retrying with back-off up to %g s",
                         reason, self.backoff_s[-1])
            else:
                log.debug("audio reopen attempt %d failed: %s", attempt, reason)
            self._stop.wait(delay)

    def close(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None:
            t.join(timeout=1.0)
        with self._lock:
            pending, self._replacement = self._replacement, None
        if pending is not None:
            pending.stop()


def _overruns(source) -> int:
    n = int(getattr(getattr(source, "ring", None), "overruns", 0) or 0)
    return n + int(getattr(getattr(source, "status", None), "input_overflows", 0) or 0)


def _wait_for_audio(source, timeout: float, stop: threading.Event) -> bool:
    end = time.monotonic() + timeout
    while source.ring.total_written == 0:
        if time.monotonic() > end or stop.is_set():
            return False
        time.sleep(0.01)
    return True
