"""Where the things a user should not have to read go: tracebacks and native libraries' stderr.

- `log_dir()`: a per-user folder for run logs (TRANSFLOWER_LOG_DIR overrides it).
- `write_traceback(command)`: an unexpected exception's traceback into a new log file; the CLI prints
  one line naming that file instead of the traceback.
- `NativeStderrToLog`: PortAudio and ALSA print their own error lines from C straight to file
  descriptor 2 (dozens per second while a device is lost), which no Python logging setting reaches.
  For a live session fd 2 is pointed at a log file, and Python's `sys.stderr` (our status line and
  one-line messages) is moved to a duplicate of the original terminal descriptor, so only the C
  library's output is diverted.
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path


def log_dir() -> Path:
    env = os.environ.get("TRANSFLOWER_LOG_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "transflower" / "logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "transflower"
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "transflower" / "logs"


def new_log_path(command: str) -> Path:
    d = log_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{command or 'transflower'}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def write_traceback(command: str, exc: BaseException, path: Path | None = None, argv: list[str] | None = None) -> Path | None:
    """Append the traceback of `exc` (with the command line `argv`) to `path` (default: a new log file);
    returns the file, or None when no log file could be written."""
    text = (f"{time.strftime('%Y-%m-%d %H:%M:%S')} transflower {' '.join(sys.argv[1:] if argv is None else argv)}\n"
            f"python {sys.version.split()[0]} on {sys.platform}\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for candidate in ([path] if path is not None else []) + [None]:
        try:
            p = candidate or new_log_path(command)
            with open(p, "a", encoding="utf-8") as f:
                f.write(text)
            return p
        except OSError:
            continue
    return None


class NativeStderrToLog:
    """Context manager: fd 2 -> a new log file for `command` (`path`), Python's stderr -> the original fd 2.

    Does nothing (`path` stays None) when Python's stderr is already redirected by someone else (a test
    harness, an embedding host) or no log file can be opened: then there is no terminal of ours to
    protect, or nowhere to put the lines. `captured_bytes` afterwards says how much native output went
    to the log."""

    def __init__(self, command: str):
        self.command = command
        self.path: Path | None = None
        self.active = False
        self.captured_bytes = 0

    def __enter__(self) -> "NativeStderrToLog":
        if sys.stderr is None or sys.stderr is not sys.__stderr__:
            return self
        try:
            path = new_log_path(self.command)
            sys.stderr.flush()
            self._saved_fd = os.dup(2)
        except OSError:
            return self
        try:
            self._log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            os.close(self._saved_fd)
            return self
        self.path = path
        self._start = os.fstat(self._log_fd).st_size
        self._old_stderr = sys.stderr
        self._terminal = open(self._saved_fd, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                              errors="backslashreplace", closefd=False)
        os.dup2(self._log_fd, 2)
        sys.stderr = self._terminal
        self._handlers = []
        for h in logging.getLogger().handlers:  # basicConfig's handler holds the old stream object
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is self._old_stderr:
                h.setStream(self._terminal)
                self._handlers.append(h)
        self.active = True
        return self

    def __exit__(self, *exc) -> bool:
        if not self.active:
            return False
        try:
            self._terminal.flush()
        finally:
            os.dup2(self._saved_fd, 2)
            for h in self._handlers:
                h.setStream(self._old_stderr)
            sys.stderr = self._old_stderr
            self._terminal.close()
            os.close(self._saved_fd)
            self.captured_bytes = os.fstat(self._log_fd).st_size - self._start
            os.close(self._log_fd)
            self.active = False
        return False
