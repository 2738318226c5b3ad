"""Several songs as one live input: `transflower live --input a.ogg b.ogg` or `--input FOLDER` (its audio
files in name order), `--loop` to start over after the last.

The songs reach the ring as one continuous signal at the first song's sample rate (the others resampled
to it), so the live loop never notices a change of song: the dancer carries its motion across them, with
no reset between tracks. The next song is decoded by a helper thread while the current one plays; a song
that turns out undecodable is skipped with one line naming it.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from transflower.realtime.audio_sources import ArraySource, _decode
from transflower.realtime.resampler import StreamResampler
from transflower.errors import DataError, UserError

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus")


def playlist_files(inputs) -> list[Path]:
    """--input values (files, folders) -> the audio files to play, in order; UserError naming a bad one."""
    files: list[Path] = []
    for item in [inputs] if isinstance(inputs, (str, Path)) else inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES),
                           key=lambda f: f.name.lower())
            if not found:
                raise UserError(f"--input {p}: no audio files in this folder (expected {', '.join(AUDIO_SUFFIXES)})")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"--input {p}: file not found")
    if not files:
        raise UserError("--input: expected one or more audio files or folders")
    return files


class PlaylistSource(ArraySource):
    """Audio files played one after another as one stream (see the module docstring); `track` is the one
    playing (index into `paths`)."""

    def __init__(self, paths, realtime: bool = True, loop: bool = False, audible: bool = False,
                 hop_s: float = 0.01, ring_seconds: float = 2.0):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise UserError("--input: expected one or more audio files")
        first, sr = _decode(self.paths[0])
        super().__init__(first, sr, f"playlist:{len(self.paths)} files", realtime=realtime, loop=loop,
                         audible=audible, hop_s=hop_s, ring_seconds=ring_seconds)
        self.track = 0
        self._next: tuple[int, np.ndarray | None] | None = None
        self._loader: threading.Thread | None = None
        self._load_ahead(0)

    def _following(self, i: int) -> int | None:
        if i + 1 < len(self.paths):
            return i + 1
        return 0 if self.loop else None

    def _load_ahead(self, i: int) -> None:
        """Decode the song after song i in a helper thread (none after the last, unless looping)."""
        j = self._following(i)
        if j is None:
            return

        def load():
            try:
                self._next = (j, self._load(j))
            except DataError as e:
                log.warning("%s; skipping it", e)
                self._next = (j, None)

        self._loader = threading.Thread(target=load, name="playlist-loader", daemon=True)
        self._loader.start()

    def _load(self, i: int) -> np.ndarray:
        data, sr = _decode(self.paths[i])
        if sr != self.samplerate:  # one stream, one rate: the first song's
            r = StreamResampler(sr, self.samplerate)
            data = np.concatenate([r.process(data), r.flush()]).astype(np.float32)
        return data

    def _at_end(self) -> bool:
        """The song ended: on to the next one (decoded ahead), or finish after the last unless looping."""
        for _ in range(len(self.paths)):  # at most once round the list: every song may have failed
            if self._loader is not None:
                self._loader.join()  # normally done long ago: a song lasts longer than its decoding
                self._loader = None
            if self._next is None:
                return False
            j, data = self._next
            self._next = None
            self._load_ahead(j)
            if data is not None and data.size:
                self.data, self.position, self.track = data, 0, j
                log.info("now playing %s (%d of %d)", self.paths[j].name, j + 1, len(self.paths))
                return True
        return False

    def stop(self) -> None:
        super().stop()
        if self._loader is not None:
            self._loader.join(timeout=5.0)
