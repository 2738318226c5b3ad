"""The beat-matched time base: the dancer's clock runs at the music's tempo over the tempo it learned.

The model dances each style at the pace it learned for it and does not speed up when a DJ does. With a
time base the engine runs the model on its own clock: model time advances `rate` model frames per output
frame, so the model hears the music at the tempo it knows, and its frames are played back at the music's
tempo (the output frame at model time m lies between model frames floor(m) and ceil(m); the root's
per-frame motion is scaled by the rate).

    rate = tempo now / reference tempo, folded to within half an octave of 1

- The tempo is read causally from the audio feature rows (`TempoReading`: the `onset` column plus the
  lowest mel bands' rise, autocorrelated over the last `window_s` seconds, each lag scored with its
  octaves, refined below one frame).
- Folding makes the metrical level irrelevant: a song read at its beat or at half or double it gives the
  same rate. (Every causal reading tried here picks the level of one song at two tempi inconsistently
  about half the time; a factor of two is almost always what it gets wrong:
  experiments/2026-12-07-time-base/.) The smoothing is done on the folded tempo too: a level flip of the
  raw reading moves nothing.
- The reference is the asked style's own tempo (its training songs' readings averaged on the octave
  circle: `style_tempos` in features.json and the model's metadata, `reference_tempo`), so a waltz at its
  usual tempo is danced at rate ~1 and the same waltz 25 % faster at ~1.25. Under "auto" (the music decides
  the style), or for a style whose songs share no tempo, the reference is the tempo the music had once the
  reading settled: the rate starts at 1 and follows smooth changes from there (a pitch fader). A jump of
  the reading (a cut, a flip to another metrical level: one reading cannot tell them apart) leaves the
  rate where it was.

The count-in: with `count_in_s` (the default) and a style with a tempo, the dancer first listens, swaying
calmly (a dance the model runs on its own clock, shown at the energy gate's break size), until the reading
has settled and `count_in_s / rate` seconds of music have played: the same number of the music's beats at
any tempo. Then the dance proper starts from the warm start with the noise it had at the start, so a song
played faster is met at the same point in the music with the same dance, played faster (without it the first
seconds, danced at rate 1 while the reading settles, make the two dances part ways); the engine grows it
out of the sway over 2 s of model time. It costs the first 5-10 s of each song. Without a style tempo (auto,
rumba) the rate starts at 1 at any tempo, so there is no count-in.

What it costs: no latency (the model frame at model time m is computed when m passes it; the model hears
each output frame's audio row), up to `max_due` model steps in one output frame (rate > 1: more compute),
and the kinetics scale with the rate (a dance at rate 1.2 is 1.2x as fast, its jerk 1.7x). A tempo beyond
half an octave from the reference folds over (a waltz at 1.5x its tempo is danced at 0.75x, as dancers
dance half-time): followed within x0.71 .. x1.41 only.

Numpy only (the live path); the buffers are allocated once; the reading's work (an autocorrelation over
~80 lags) runs every `update_every` frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transflower.errors import UserError


@dataclass(frozen=True)
class TimeBaseConfig:
    window_s: float = 8.0        # seconds of onset envelope per reading
    min_bpm: float = 55.0
    max_bpm: float = 220.0
    prior_bpm: float = 110.0     # a log-normal preference among the lags (it only picks a level: folded away)
    prior_octaves: float = 1.0
    update_every: int = 4        # frames between readings (5 a second at 20 fps)
    settle_s: float = 4.0        # seconds of music before the first reading counts
    smooth_s: float = 2.0        # time constant of the folded tempo
    hysteresis: float = 0.03     # octaves past the fold's edge before the rate jumps to the other side
    min_agreement: float = 0.5   # the smoothed readings' agreement (0..1) before the tempo moves the rate
    settled_agreement: float = 0.9  # ... and before the tempo it reads becomes auto's reference (a level
                                    # read wrong at first would otherwise be the reference for the song)
    unsettled_agreement: float = 0.8  # auto lets its reference go below this (the readings jumped)
    max_due: int = 2             # model steps in one output frame at most (rate <= 2)
    count_in_s: float = 7.0      # the dancer listens to this much music at the reference tempo (count_in_s / rate
                                 # seconds of it) before it starts; 0: it dances at once on the model's own clock
    max_count_in_s: float = 14.0  # ... and starts after this much music whatever the reading says (rate as read)
    music_db: float = -60.0      # rows at or below this level (rms_db) are not music: they do not count in


def in_order(ring: np.ndarray, written: int, out: np.ndarray) -> np.ndarray:
    """A ring buffer that has taken `written` values -> `out` (the newest len(out) of them), oldest first."""
    n = len(out)
    if written > len(ring):
        start = written % len(ring)
        out[: n - start] = ring[start:]
        out[n - start:] = ring[:start]
    else:
        out[:] = ring[:n]
    return out


def fold(octaves: float) -> float:
    """An interval in octaves -> the same interval up to whole octaves, in [-0.5, 0.5)."""
    return float(octaves - np.floor(octaves + 0.5))


class TempoReading:
    """update(onset, low) once per frame -> a reading in BPM every `update_every` frames once `settle_s` of
    music is in, else None (also in silence). The envelope is the `onset` column plus the low bands' rise
    (`low`: the kick and the bass), each scaled to unit deviation over the window: at 20 rows a second a busy
    hi-hat smears the onset column's periodicity (the demo track at 140 BPM reads at 2/3 of it alone).
    A lag's score is its autocorrelation plus half that at twice and half the lag and a quarter at four
    times: the periodicity the octaves of a beat support, not one peak. The level is whatever scores
    best under the preference: callers fold it."""

    def __init__(self, fps: float, config: TimeBaseConfig):
        self.config, self.fps = config, float(fps)
        self.n = int(round(config.window_s * self.fps))
        lo = max(2, int(np.floor(60.0 * self.fps / config.max_bpm)))
        hi = min(self.n // 2, int(np.ceil(60.0 * self.fps / config.min_bpm)))
        if hi <= lo + 2:
            raise UserError(f"time base: {config.min_bpm}-{config.max_bpm} BPM at {fps} fps over {config.window_s} s "
                            "leaves no beat periods to compare; widen the window or the BPM range")
        self.lags = np.arange(lo, hi + 1)
        self.prior = np.exp(-0.5 * (np.log2(60.0 * self.fps / self.lags / config.prior_bpm) / config.prior_octaves) ** 2)
        self.ring = np.zeros(self.n, np.float64)
        self.low_ring = np.zeros(self.n, np.float64)
        self.env = np.zeros(self.n, np.float64)
        self.low_env = np.zeros(self.n, np.float64)
        self.acf = np.zeros(self.n // 2, np.float64)  # acf[k - 1]: lag k
        self.scores = np.zeros(len(self.lags), np.float64)
        self.settle = max(int(round(config.settle_s * self.fps)), int(hi) * 2)
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.ring[:] = 0.0
        self.low_ring[:] = 0.0

    def update(self, onset: float, low: float = 0.0) -> float | None:
        x, y = float(onset), float(low)
        self.ring[self.frames % self.n] = x if np.isfinite(x) else 0.0
        self.low_ring[self.frames % self.n] = y if np.isfinite(y) else 0.0
        self.frames += 1
        if self.frames < self.settle or self.frames % self.config.update_every:
            return None
        return self._read()

    def _read(self) -> float | None:
        n = min(self.frames, self.n)
        env = in_order(self.ring, self.frames, self.env[:n])
        low = in_order(self.low_ring, self.frames, self.low_env[:n])
        env -= env.mean()
        low -= low.mean()
        sd_env, sd_low = float(env.std()), float(low.std())
        if sd_env == 0.0 and sd_low == 0.0:
            return None  # silence: nothing to read
        if sd_env > 0.0:
            env /= sd_env
        if sd_low > 0.0:
            low /= sd_low
            env += low
        m = n // 2 - 1  # lags 1 .. m
        acf = self.acf[:m]
        for k in range(1, m + 1):
            acf[k - 1] = np.dot(env[k:], env[:-k]) / (n - k)
        np.maximum(acf, 0.0, out=acf)
        at = lambda lag: acf[lag - 1] if 1 <= lag <= m else 0.0  # noqa: E731
        for i, lag in enumerate(self.lags):
            lag = int(lag)
            self.scores[i] = (at(lag) + 0.5 * (at(2 * lag) + (at(int(round(lag / 2))) if lag >= 4 else 0.0))
                              + 0.25 * at(4 * lag))
        self.scores *= self.prior
        i = int(np.argmax(self.scores))
        if self.scores[i] <= 0.0:
            return None
        return 60.0 * self.fps / self._refine(env, int(self.lags[i]))

    def _acf(self, env: np.ndarray, lag: int) -> float:
        return float(np.dot(env[lag:], env[:-lag]) / (len(env) - lag))

    def _refine(self, env: np.ndarray, lag: int) -> float:
        """The beat period in frames, finer than one frame: the autocorrelation's peak near k x lag for the
        largest k (up to 4) the window holds, found within a frame each way and placed by a parabola, over k
        (at 20 fps one frame is 5-15 % of a beat period; at 4 periods it is a quarter of that)."""
        n = len(env)
        for k in range(min(4, max(1, (n // 2) // lag)), 0, -1):
            c = k * lag
            if c + 2 >= n - 8:
                continue
            # climb to the local peak within one frame of k x lag
            if self._acf(env, c + 1) > self._acf(env, c) and self._acf(env, c + 1) >= self._acf(env, c - 1):
                c += 1
            elif self._acf(env, c - 1) > self._acf(env, c):
                c -= 1
            a0, a1, a2 = self._acf(env, c - 1), self._acf(env, c), self._acf(env, c + 1)
            den = a0 - 2.0 * a1 + a2
            off = min(max(0.5 * (a0 - a2) / den, -0.5), 0.5) if den < 0.0 else 0.0
            return (c + off) / k
        return float(lag)


class ModelClock:
    """Model time for B dancers of D features: `due(rate)` -> how many model frames to compute now;
    `push(frame)` after each; `output(out)` writes the pose at the current model time."""

    def __init__(self, dancers: int, dims: int, velocity_dims: int = 3, max_due: int = 2):
        self.velocity_dims, self.max_due = int(velocity_dims), int(max_due)
        self.before = np.zeros((dancers, dims), np.float32)
        self.last = np.zeros((dancers, dims), np.float32)
        self.reset()

    def reset(self) -> None:
        self.m = -1.0  # model time of the last output frame; the first output frame is model frame 0
        self.computed = 0  # model frames computed (frames 0 .. computed - 1)
        self.rate = 1.0

    def due(self, rate: float) -> int:
        self.rate = float(rate)
        self.m = 0.0 if self.computed == 0 else self.m + self.rate
        need = int(np.ceil(self.m - 1e-6)) + 1 - self.computed
        if need > self.max_due:  # never more than max_due steps in one output frame: model time waits
            self.m -= need - self.max_due
            need = self.max_due
        return max(need, 0)

    def push(self, frame: np.ndarray) -> None:
        self.before[:] = self.last
        self.last[:] = frame
        self.computed += 1

    def output(self, out: np.ndarray) -> np.ndarray:
        """The pose at model time m, between the two newest model frames; per-frame motion x the rate."""
        frac = 1.0 - ((self.computed - 1) - self.m)  # 1 at the newest frame
        if frac >= 1.0 - 1e-6 or self.computed < 2:
            out[:] = self.last
        else:
            np.subtract(self.last, self.before, out=out)
            out *= max(frac, 0.0)
            out += self.before
        out[:, : self.velocity_dims] *= self.rate
        return out


class TimeBase:
    """What the engine needs per output frame: `due(audio_row)` -> the model steps to run now (each hears
    `row`: this frame's audio row, its `tempo` column moved to the model's clock), then `clock.push` after
    each and `clock.output` for the frame shown.

    `set_reference(bpm)`: the asked style's tempo (None: relative, the reading the music settles on)."""

    def __init__(self, fps: float, audio_config: dict, dancers: int, dims: int, config: TimeBaseConfig | None = None):
        self.config = c = config or TimeBaseConfig()
        names = _feature_names(audio_config)
        self.onset_index, self.tempo_index = names.index("onset"), names.index("tempo")
        self.level_index = names.index("rms_db")
        self.low_bands = slice(0, min(8, sum(n.startswith("mel_") for n in names)))  # the lowest mel bands (dB)
        self._last_low = np.zeros(self.low_bands.stop, np.float64)
        self._low_rise = np.zeros(self.low_bands.stop, np.float64)
        self.reading = TempoReading(fps, c)
        self.clock = ModelClock(dancers, dims, max_due=c.max_due)
        self._alpha = 1.0 - float(np.exp(-c.update_every / (c.smooth_s * float(fps))))
        self.row = np.zeros(len(names), np.float32)
        self.style_bpm: float | None = None
        self.reset()

    def reset(self) -> None:
        """A new piece of music: forget the reading (a style's reference stays)."""
        self.reading.reset()
        self.clock.reset()
        self._phasor = 0j  # the smoothed tempo as a point on the octave circle: exp(2 pi i log2 bpm)
        self._started: float | None = None  # auto's reference: log2 of the tempo the reading settled on, less the rate
        self._offset = 0.0  # octaves of the rate, kept continuous across the fold's edge
        self.rate = 1.0
        self.counting_in = self.config.count_in_s > 0.0  # listening before the dance proper starts
        self.started_now = False  # True on the output frame the count-in ended (the engine starts the dance)
        self.music_frames = 0  # output frames of music heard (above music_db) since the reset
        self.listened_frames = 0  # output frames of the count-in (all of it, once it is over)

    def set_reference(self, bpm: float | None) -> None:
        if bpm is not None and not (np.isfinite(bpm) and 20.0 <= bpm <= 400.0):
            raise UserError(f"time base: reference tempo {bpm!r}: expected a tempo in BPM, 20..400")
        self.style_bpm = None if bpm is None else float(bpm)
        if bpm is None:  # back to auto: the music as it is now is the reference, once the reading is settled
            settled = self.tempo is not None and self.agreement >= self.config.settled_agreement
            self._started = float(np.log2(self.tempo)) if settled else None
            self._offset, self.rate = 0.0, 1.0
        self._rate_from_tempo()

    @property
    def agreement(self) -> float:
        """0..1: how well the recent readings agree (up to octaves); the rate moves only above min_agreement."""
        return float(abs(self._phasor))

    @property
    def tempo(self) -> float | None:
        """The smoothed tempo, BPM on the octave [60, 120) (its level is not known, only its class); None
        until the readings agree (min_agreement)."""
        if abs(self._phasor) < self.config.min_agreement:
            return None
        return float(2.0 ** (6.0 + (np.angle(self._phasor) / (2 * np.pi)) % 1.0))

    def due(self, audio_row: np.ndarray) -> int:
        """This output frame's model steps. While `counting_in`: 1, the listening dance on the model's own
        clock (`row` is the row as heard); on the frame the count ends `started_now` is set and the clock starts."""
        self.listen(audio_row)
        self.row[:] = audio_row
        self.started_now = False
        if self.counting_in and self.style_bpm is None and not self.listened_frames:
            self.counting_in = False  # no style tempo (auto, rumba): the rate starts at 1 whatever the tempo, so
            # there is nothing to meet at the same point of the music: the dance starts at once
        if self.counting_in:
            self.listened_frames += 1
            if audio_row[self.level_index] > self.config.music_db:
                self.music_frames += 1
            if not self._count_in_over():
                return 1
            self.counting_in, self.started_now = False, True
            self.clock.reset()
        self.row[self.tempo_index] -= np.log2(self.rate)  # `tempo` is log2(bpm / 120): the tempo on the model's clock
        return self.clock.due(self.rate)

    def _count_in_over(self) -> bool:
        """count_in_s of music at the style's tempo (count_in_s / rate seconds) heard once the rate is read (the
        readings agree), or max_count_in_s of music in any case; at once if the style has no tempo (set to auto
        or a rumba during the count-in)."""
        heard = self.music_frames / self.reading.fps
        if heard >= self.config.max_count_in_s or self.style_bpm is None:
            return True
        return self.tempo is not None and heard >= self.config.count_in_s / self.rate

    def listen(self, audio_row: np.ndarray) -> float | None:
        """One audio row into the reading (and the rate) -> the new raw reading in BPM, if one was made."""
        rise = self._low_rise
        np.subtract(audio_row[self.low_bands], self._last_low, out=rise)
        self._last_low[:] = audio_row[self.low_bands]
        np.maximum(rise, 0.0, out=rise)
        bpm = self.reading.update(audio_row[self.onset_index], float(rise.sum()) if self.reading.frames else 0.0)
        if bpm is not None and bpm > 0.0:
            self._phasor += self._alpha * (np.exp(2j * np.pi * np.log2(bpm)) - self._phasor)
            if self.style_bpm is None:
                self._follow_reference()
            self._rate_from_tempo()
        return bpm

    def _follow_reference(self) -> None:
        """Auto's reference: taken once the readings agree (settled_agreement), and let go when they stop
        agreeing (below unsettled_agreement: the readings jumped, a level flip such as 2/3 or a cut to other music),
        then taken again so that the rate goes on where it was. A tempo that moves smoothly (a pitch fader) is
        followed; a jump is not, since a reading cannot tell a new tempo from a new metrical level."""
        c = self.config
        if self._started is not None and self.agreement < c.unsettled_agreement:
            self._started = None  # the rate holds until the readings agree again
        elif self._started is None and self.agreement >= c.settled_agreement:
            self._started = float(np.log2(self.tempo)) - self._offset

    def _rate_from_tempo(self) -> None:
        if self.tempo is None:
            return
        ref = np.log2(self.style_bpm) if self.style_bpm is not None else self._started
        if ref is None:
            return  # auto, before the reading has settled: the model's own clock
        d = fold(np.log2(self.tempo) - ref)
        # keep the side of the fold the rate was on until it is `hysteresis` past the edge
        cand = (d - 1.0, d, d + 1.0)
        near = min(cand, key=lambda x: abs(x - self._offset))
        self._offset = near if abs(near) <= 0.5 + self.config.hysteresis else d
        self.rate = float(2.0 ** self._offset)


def time_base_option(on: bool, count_in_s: float | None = None) -> "TimeBaseConfig | bool":
    """The CLI's `--time-base [--count-in S]` -> what DanceEngine(time_base=...) takes (False: off)."""
    if not on:
        if count_in_s is not None:
            raise UserError("--count-in: only with --time-base (the count-in is the time base's)")
        return False
    if count_in_s is None:
        return TimeBaseConfig()
    if not (np.isfinite(count_in_s) and 0.0 <= count_in_s <= 60.0):
        raise UserError(f"--count-in {count_in_s!r}: expected seconds of music, 0..60 (0: dance at once)")
    return TimeBaseConfig(count_in_s=float(count_in_s),
                          max_count_in_s=max(TimeBaseConfig.max_count_in_s, 2.0 * count_in_s))


TIME_BASE_HELP = ("run the dancer's clock at the music's tempo over the style's own: a waltz played 25 %% faster is "
                  "danced 25 %% faster, the same dance (followed within x0.71..x1.41 of the style's tempo; with no "
                  "--style, or a rumba, changes from the tempo the music settled on are followed). In a style with a "
                  "tempo the dancer first listens for a few seconds (--count-in). Off by default: a style asked for "
                  "on music far from its tempo is played up to 1.41x fast, and under auto it follows only changes "
                  "within a stream (benchmarks/README.md, `bench music`); it costs up to 2 model steps a frame")
COUNT_IN_HELP = ("with --time-base and a style with a tempo (cha-cha, waltz): listen to this many seconds of music "
                 "at the style's tempo (fewer when the music is faster, more when slower: the same beats) swaying "
                 "calmly before the dance starts, so a song played faster is danced the same way, faster (default "
                 "%g; 0: dance at once, the first seconds on the model's own clock)" % TimeBaseConfig.count_in_s)


def _feature_names(audio_config: dict) -> list[str]:
    from transflower.audio_features import AudioFeatureConfig

    return AudioFeatureConfig.from_dict(audio_config).names


def reference_tempo(songs, fps: float, audio_config: dict, config: TimeBaseConfig | None = None,
                    min_agreement: float = 0.7) -> tuple[float | None, float]:
    """A style's tempo from its songs' audio feature rows (T, A each, unscaled), read as the time base reads
    them: each song's readings averaged on the octave circle, then the songs' -> (BPM on [60, 120) or None
    when the songs disagree, agreement 0..1: the mean resultant's length). A style whose songs spread over
    the octave (the data's rumbas: agreement 0.3) has no tempo a reference could stand for."""
    per_song = []
    for rows in songs:
        tb, z = TimeBase(fps, audio_config, 1, 1, config), 0j
        for row in np.asarray(rows, np.float32):
            bpm = tb.listen(row)
            if bpm is not None:
                z += np.exp(2j * np.pi * np.log2(bpm))
        if abs(z) > 0:
            per_song.append(z / abs(z))
    if not per_song:
        return None, 0.0
    mean = complex(np.mean(per_song))
    agreement = float(abs(mean))
    bpm = float(2.0 ** (6.0 + (np.angle(mean) / (2 * np.pi)) % 1.0))
    return (bpm if agreement >= min_agreement else None), agreement
