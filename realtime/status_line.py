"""The live status line as a DJ or a VTuber reads it, and log messages printed above it.

    12:34  -18 dB 124 bpm  rumba  size 80%  on time  sending

`status_text(StatusFacts)` composes one line that fits `width` (80 columns by default): the show's time,
the music's level and tempo, the style, the dance's size (`size 80%`; `break` in a break of the music), late /
skipped frames, and the receivers' state (`waiting for receiver` while nobody listens); with live control
on, the temperature, and HOLD while the dancers are frozen. When the facts do not fit, the least important
go first (tempo, style, temperature, size, late, hold); the time, the music and the receivers always stay. `--verbose` appends the engine figures (step, engine, host, latency), which only a
wide terminal shows whole.

`StatusLine` writes it: on a terminal, redrawn in place (carriage return and spaces: no escape codes,
so any console shows it) at the status interval, with every log record printed on its own line above it
(the root logger's handlers that write to the same terminal are wrapped while the line is up); anywhere
else (a pipe, a log file) as a plain line every `PLAIN_EVERY_S` seconds, or not at all with interval 0.
"""
from __future__ import annotations

import logging
import math
import shutil
import sys
import threading
from dataclasses import dataclass

STATUS_WIDTH = 80
PLAIN_EVERY_S = 10.0  # a pipe or a log file gets a plain status line this often, not twice a second
STYLE_CHARS = 12      # a longer style name is cut to this


@dataclass
class StatusFacts:
    elapsed: float
    level_db: float = -120.0
    bpm: float | None = None          # the music's tempo (None: not shown, e.g. no music)
    style: str | None = None          # the style danced (None: a model without styles)
    size: float | None = None         # the dance's size from the music's level, 0..1 (None: --no-energy)
    in_break: bool = False
    late: int = 0
    skipped: int = 0
    receivers: str = "sending"        # "sending", "sending to N", "waiting for receiver", ...
    audio_lost_s: float | None = None  # the input is lost since this many seconds
    hold: bool = False
    temperature: float | None = None  # shown while live control is on (None: not shown)
    engine: str = ""                  # --verbose: the engine figures, appended as they are
    pace: float | None = None         # --time-base: the dancer's clock rate, shown beside the tempo (None: no time base)
    listening: bool = False           # --time-base: the count-in (the dancer listens before it starts): shown for the rate


def clock_text(seconds: float) -> str:
    """0:05, 12:34, 1:02:03."""
    s = max(int(seconds), 0)
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def count_text(n: int) -> str:
    """A count in at most 5 characters: 999, 12.3k, 1.2M."""
    n = int(n)
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k" if n < 100_000 else f"{n // 1000}k"
    return f"{n / 1e6:.1f}M" if n < 100_000_000 else f"{n // 1_000_000}M"


def status_text(f: StatusFacts, width: int = STATUS_WIDTH) -> str:
    """The people's line (see the module docstring), at most `width` characters before the engine figures."""
    if f.audio_lost_s is not None:
        music = f"AUDIO LOST {f.audio_lost_s:.0f}s"
    else:
        music = f"{max(f.level_db, -120.0):.0f} dB" if math.isfinite(f.level_db) else "-- dB"
    lateness = "on time" if not (f.late or f.skipped) else f"late {count_text(f.late)} skip {count_text(f.skipped)}"
    # in a break the size is the calm sway's (transflower.energy's break_gain): "break" says it all
    size = None if f.size is None else "break" if f.in_break else f"size {f.size:.0%}"
    style = None if not f.style else (f.style if len(f.style) <= STYLE_CHARS else f.style[:STYLE_CHARS - 1] + "~")
    bpm = f"{f.bpm:.0f} bpm" if f.bpm is not None and math.isfinite(f.bpm) else None
    if f.listening:  # the time base's count-in: the dancer sways while it listens
        bpm = f"{bpm or ''} listening".strip()
    elif f.pace is not None and math.isfinite(f.pace):  # the time base's clock: the dance at x this
        bpm = f"{bpm or ''} x{f.pace:.2f}".strip()
    # (text, priority): the lowest priority is dropped first while the line is too long; None = always shown
    temp = None if f.temperature is None else f"T {f.temperature:.2f}"
    parts = [(clock_text(f.elapsed), None), (music, None), (bpm, 1), (style, 2), (temp, 3), (size, 4), (lateness, 5),
             ("HOLD" if f.hold else None, 6), (f.receivers, None)]
    parts = [(t, p) for t, p in parts if t]
    for prio in sorted({p for _, p in parts if p is not None}):
        if len(_join(parts)) <= width:
            break
        parts = [(t, p) for t, p in parts if p != prio]
    line = _join(parts)[:width]
    return line + ("  | " + f.engine if f.engine else "")


def _join(parts) -> str:
    out = []
    for i, (t, _) in enumerate(parts):
        # the tempo belongs to the music's level: one space between them, two between the others
        out.append(("" if i == 0 else " " if t.endswith(" bpm") else "  ") + t)
    return "".join(out)


def stream_is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or not a file
        return False


class StatusLine:
    """Shows the status line on `stream` (default sys.stderr); `due(elapsed)` says when, `show(text)` draws,
    `close()` takes it off the terminal and unwraps the log handlers. Thread-safe against log records
    from other threads (the audio watchdog, the control listeners)."""

    def __init__(self, interval: float, stream=None, plain_every: float = PLAIN_EVERY_S):
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = stream_is_terminal(self.stream)
        self.every = max(float(interval), 0.0)  # the text is composed this often (the preview page shows it too)
        self.plain_every = max(self.every, float(plain_every))
        self._next = self.every
        self._elapsed, self._plain_next = 0.0, self.plain_every
        self._shown = ""  # the text on the terminal's current line (terminal only)
        self._lock = threading.RLock()
        self._wrapped: list[tuple[logging.Logger, logging.Handler, logging.Handler]] = []
        self.lines = 0  # status lines written (plain) or drawn (terminal)

    @property
    def width(self) -> int:
        """80 columns, less where the terminal is narrower; one column spare so the cursor never wraps."""
        return STATUS_WIDTH if not self.terminal else max(20, min(STATUS_WIDTH, self._columns()) - 1)

    def due(self, elapsed: float) -> bool:
        if self.every <= 0 or elapsed < self._next:
            return False
        self._next = elapsed + self.every
        self._elapsed = elapsed
        return True

    def show(self, text: str) -> None:
        with self._lock:  # `due` said yes: on a terminal drawn now, elsewhere every plain_every seconds
            try:
                if self.terminal:
                    text = text[:self._columns() - 1]  # a wrapped line cannot be redrawn in place
                    self._erase()
                    self._shown = text
                    self._draw()
                elif self._elapsed >= self._plain_next:
                    self._plain_next = self._elapsed + self.plain_every
                    self.stream.write(text + "\n")
                else:
                    return
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken terminal must not stop the show
                return
            self.lines += 1

    @staticmethod
    def _columns() -> int:
        return max(21, shutil.get_terminal_size((STATUS_WIDTH, 24)).columns)

    def _erase(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * len(self._shown) + "\r")

    def _draw(self) -> None:
        if self._shown:
            self.stream.write(self._shown)
            self.stream.flush()

    def attach_logging(self, logger: logging.Logger | None = None) -> "StatusLine":
        """Print the records of `logger`'s (default: root's) handlers that write to this terminal above the line."""
        if not self.terminal:
            return self  # plain lines end with a newline: records never share one
        logger = logger or logging.getLogger()
        for h in list(logger.handlers):
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is self.stream:
                above = _AboveStatus(h, self)
                logger.removeHandler(h)
                logger.addHandler(above)
                self._wrapped.append((logger, h, above))
        return self

    def close(self) -> None:
        """Take the line off the terminal (the summary follows) and restore the log handlers."""
        with self._lock:
            try:
                self._erase()
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._shown = ""
        for logger, h, above in self._wrapped:
            logger.removeHandler(above)
            logger.addHandler(h)
        self._wrapped = []


class _AboveStatus(logging.Handler):
    """A terminal's log handler, wrapped: erase the status line, let the handler print the record, redraw."""

    def __init__(self, inner: logging.Handler, line: StatusLine):
        super().__init__(inner.level)
        self.inner, self.line = inner, line

    def handle(self, record) -> bool:
        with self.line._lock:
            try:
                self.line._erase()
            except (OSError, ValueError):
                pass
            try:
                return self.inner.handle(record)
            finally:
                try:
                    self.line._draw()
                except (OSError, ValueError):
                    pass

    def emit(self, record) -> None:  # handle() does the work
        self.inner.emit(record)


def style_label(names, weights) -> str | None:
    """The style danced: the name of the largest weight, `~name` while blending (None: no style input)."""
    if weights is None or not names:
        return None
    w = [float(x) for x in weights]
    i = max(range(len(w)), key=w.__getitem__)
    return names[i] if w[i] >= 0.99 * sum(w) else "~" + names[i]


RECEIVER_APPS = "VSeeFace, Warudo, the Unity scene in unity_client/, or `transflower view`"


class ReceiverWatch:
    """The VMC targets as people see them. `update()` (a few times a second) says once per target, in words,
    when nobody listens there or it cannot be reached, and what to start; a line again when sends go through.
    `text`: the status line's part, "sending" or "waiting for receiver" while a target refuses (on this
    machine a closed port answers every datagram with "connection refused"; a LAN host may answer nothing,
    and then it reads as sending)."""

    def __init__(self, targets, logger: logging.Logger):
        self.targets, self.log = list(targets), logger
        self.waiting = [False] * len(self.targets)
        self._told = [False] * len(self.targets)
        self.text = self._text()

    def update(self) -> str:
        """One line per kind of change since the last update (a crowd's 16 targets going quiet make one line)."""
        first, again, back = [], [], []
        for i, t in enumerate(self.targets):
            down = not t.healthy
            if down and not self.waiting[i]:
                (again if self._told[i] else first).append(t)
                self._told[i] = True
            elif self.waiting[i] and not down:
                back.append(t)
            self.waiting[i] = down
        if first:
            self.log.warning(self.hint(first))
        if again:
            self.log.info("no receiver at %s again; waiting for it (the dance goes on)", _names(again))
        if back:
            self.log.info("a receiver is listening at %s; sending", _names(back))
        self.text = self._text()
        return self.text

    @staticmethod
    def hint(targets) -> str:
        """What is wrong at these targets, and what to start there."""
        refused = [t for t in targets if "refused" in t.last_error.lower()]
        other = [t for t in targets if t not in refused]
        what = [f"nobody is listening at {_names(refused)}"] if refused else []
        what += [f"cannot reach {_names(other)} ({other[0].last_error.split(': ', 1)[-1]})"] if other else []
        return (f"{'; '.join(what)}: start a VMC receiver there ({RECEIVER_APPS}), or point --osc at one; "
                "the dance goes on meanwhile")

    def _text(self) -> str:
        n, k = len(self.targets), sum(self.waiting)
        if k == 0:
            return "sending" if n == 1 else f"sending to {n}"
        return "waiting for receiver" if n == 1 else f"waiting for {k} of {n} receivers"


def _names(targets, most: int = 3) -> str:
    """"a:1, b:2, c:3 and 13 more"."""
    names = [f"{t.host}:{t.port}" for t in targets]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
