"""A music track the project synthesises itself (no third-party audio), for demos and tests.

4/4 at ``bpm`` (120 by default): kick / snare / hi-hat drum pattern, a bassline on the chord roots and
saw-wave chord pads through a low-pass, arranged in 8-bar sections (intro, groove, full, breakdown) so
a dancer hears changes. Deterministic from ``seed`` (progression, bass pattern, fills, noise), rendered
with numpy in well under a second per minute of 48 kHz audio, and seamless when looped (whole bars,
decay tails wrapped to the start). ``demo_beat_times`` gives the ground-truth beats and downbeats.
"""
from __future__ import annotations

import numpy as np

__all__ = ["synthesize_demo_track", "demo_beat_times", "demo_bars"]

# chord progressions in A minor / C major: (root midi note, intervals)
_MIN = (0, 3, 7)
_MAJ = (0, 4, 7)
_PROGRESSIONS = [
    [(57, _MIN), (53, _MAJ), (48, _MAJ), (55, _MAJ)],   # Am F C G
    [(57, _MIN), (50, _MIN), (55, _MAJ), (48, _MAJ)],   # Am Dm G C
    [(53, _MAJ), (55, _MAJ), (57, _MIN), (57, _MIN)],   # F G Am Am
    [(57, _MIN), (55, _MAJ), (53, _MAJ), (52, _MAJ)],   # Am G F E
]
_BASS_PATTERNS = [  # per 8th note: octave offset (0 root, 12 octave, 7 fifth), None = rest
    [0, None, 0, 12, 0, None, 7, 12],
    [0, 0, 12, 0, 7, 0, 12, 7],
    [0, None, 12, None, 0, 7, None, 12],
]


def _hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def demo_bars(duration_s: float, bpm: float = 120.0) -> int:
    """Whole bars that make up a track of (about) ``duration_s``."""
    return max(1, int(round(duration_s / (4 * 60.0 / bpm))))


def demo_beat_times(duration_s: float, bpm: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """(beat times, downbeat times) in seconds of the track synthesize_demo_track renders."""
    n_beats = demo_bars(duration_s, bpm) * 4
    beats = np.arange(n_beats) * (60.0 / bpm)
    return beats, beats[::4].copy()


def synthesize_demo_track(duration_s: float = 64.0, samplerate: int = 48000, bpm: float = 120.0,
                          seed: int = 0, loopable: bool = True) -> np.ndarray:
    """Render the demo track: mono float32, peak 0.8. Its length is a whole number of bars
    (``demo_bars(duration_s, bpm)``), so it loops seamlessly when ``loopable``."""
    sr = int(samplerate)
    rng = np.random.default_rng(seed)  # one stream, drawn in a fixed order: choices, samples, then bar by bar
    beat = 60.0 / bpm
    n_bars = demo_bars(duration_s, bpm)
    n = int(round(n_bars * 4 * beat * sr))
    tail = int(2.5 * sr)  # decay tails past the last bar (wrapped to the start when loopable)
    drums, bass, pads = (np.zeros(n + tail, dtype=np.float64) for _ in range(3))

    prog = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    bass_pat = _BASS_PATTERNS[rng.integers(len(_BASS_PATTERNS))]
    kit = _drum_kit(rng, sr)
    for bar in range(n_bars):
        sec = _SECTIONS[(bar // 8) % len(_SECTIONS)] if n_bars >= 8 else "full"
        t_bar = bar * 4 * beat
        root, chord = prog[bar % len(prog)]
        _drum_bar(drums, kit, rng, sec, t_bar, beat, fill=(bar % 8 == 7), sr=sr)
        if sec != "intro":
            _bass_bar(bass, root, bass_pat, t_bar, beat, sr)
        _pad_bar(pads, root, chord, rng, sec, t_bar, beat, sr)
    return _mixdown(drums, bass, pads, n, tail, sr, loopable)


_SECTIONS = ["intro", "groove", "full", "breakdown"]  # the arrangement: 8 bars each, in turn


def _put(buf, sample, at, gain, sr):
    """Add ``gain * sample`` into ``buf`` from time ``at`` (seconds), cut at the buffer's end."""
    i = int(round(at * sr))
    buf[i:i + sample.size] += gain * sample[: buf.size - i]


def _drum_kit(rng, sr) -> dict:
    """One-shot drum samples: kick (pitch sweep), snare (noise + tone), closed and open hi-hat (noise)."""
    t = np.arange(int(0.4 * sr)) / sr
    f = 45.0 + 110.0 * np.exp(-t * 30.0)
    kick = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t * 9.0)
    kick[: int(0.002 * sr)] *= np.linspace(0, 1, int(0.002 * sr))
    t = np.arange(int(0.22 * sr)) / sr
    noise = rng.standard_normal(t.size)
    snare = (0.7 * np.diff(noise, prepend=0.0) * np.exp(-t * 22.0)
             + 0.5 * np.sin(2 * np.pi * 185.0 * t) * np.exp(-t * 30.0))
    t = np.arange(int(0.06 * sr)) / sr
    hat = np.diff(rng.standard_normal(t.size + 2), n=2) * np.exp(-t * 70.0) * 0.25
    t = np.arange(int(0.3 * sr)) / sr
    ohat = np.diff(rng.standard_normal(t.size + 2), n=2) * np.exp(-t * 12.0) * 0.18
    return {"kick": kick, "snare": snare, "hat": hat, "ohat": ohat}


def _drum_bar(drums, kit, rng, sec, t_bar, beat, fill, sr) -> None:
    """One bar of 16th notes: kick and snare (not in intro or breakdown; a fill on the 8th bar), hi-hats."""
    step = beat / 4  # 16th note
    kick, snare, hat, ohat = kit["kick"], kit["snare"], kit["hat"], kit["ohat"]
    for s in range(16):
        ts = t_bar + s * step
        if sec != "breakdown" and sec != "intro":
            if s in (0, 8) or (s == 10 and rng.random() < 0.35) or (fill and s in (12, 14)):
                _put(drums, kick, ts, 1.0, sr)
            if s in (4, 12) or (fill and s in (13, 15)):
                _put(drums, snare, ts, 0.8 if s in (4, 12) else 0.45, sr)
        if s % 2 == 0 and sec != "breakdown":
            _put(drums, hat, ts, 0.6 + 0.4 * (s % 4 == 2) * rng.uniform(0.7, 1.0), sr)
        if s % 4 == 2 and sec == "full":
            _put(drums, ohat, ts, 0.8, sr)
        if sec == "breakdown" and s == 0:
            _put(drums, kick, ts, 0.6, sr)


def _bass_bar(bass, root, bass_pat, t_bar, beat, sr) -> None:
    """Bass: 8th notes on the chord root, two octaves down, following the pattern's offsets."""
    step = beat / 4
    for e, off in enumerate(bass_pat):
        if off is None:
            continue
        f0 = float(_hz(root - 24 + off))
        dur = 0.9 * 2 * step
        tt = np.arange(int(dur * sr)) / sr
        env = np.minimum(1.0, tt / 0.005) * np.exp(-tt * 6.0)
        ph = 2 * np.pi * f0 * tt
        note = (np.sin(ph) + 0.35 * np.sin(2 * ph) + 0.15 * np.sin(3 * ph)) * env
        _put(bass, note, t_bar + e * 2 * step, 0.55, sr)


def _pad_bar(pads, root, chord, rng, sec, t_bar, beat, sr) -> None:
    """Pads: one chord per bar, two detuned saws per tone (random start phases), louder in the breakdown."""
    from transflower.kernels import add_saws

    dur = 4 * beat
    tt = np.arange(int((dur + 0.5) * sr)) / sr
    env = np.minimum(1.0, tt / 0.08) * np.where(tt < dur, 1.0, np.exp(-(tt - dur) * 8.0))
    chord_sig = np.zeros(tt.size)
    freqs, phases = [], []
    for iv in chord:
        f0 = float(_hz(root + iv))
        for det in (0.997, 1.003):
            freqs.append(f0 * det)
            phases.append(rng.random())
    add_saws(chord_sig, float(sr), np.array(freqs), np.array(phases))
    _put(pads, chord_sig * env, t_bar, 0.09 if sec != "breakdown" else 0.14, sr)


def _mixdown(drums, bass, pads, n, tail, sr, loopable) -> np.ndarray:
    """Low-pass pads (one-pole, ~1.5 kHz) and bass (~900 Hz), sum, wrap the tail, normalise to peak 0.8."""
    from transflower.kernels import one_pole_lowpass

    one_pole_lowpass(pads, float(np.exp(-2 * np.pi * 1500.0 / sr)))
    one_pole_lowpass(bass, float(np.exp(-2 * np.pi * 900.0 / sr)))
    out = drums + bass + pads
    if loopable:
        out[:tail] += out[n:n + tail]
    out = out[:n]
    peak = np.max(np.abs(out))
    if peak > 0:
        out *= 0.8 / peak
    return out.astype(np.float32)
