"""A song as a DJ's pitch ride (one stream whose tempo ramps), for ramp_rates.py."""
import numpy as np

from transflower.benchmarks.music import stretch


def tempo_ramp(y: np.ndarray, sr: int, start: float = 0.8, end: float = 1.25, at_s: float = 15.0,
               over_s: float = 8.0, seconds: float = 40.0, pieces: int = 8) -> np.ndarray:
    """The song as a DJ's pitch ride: x`start` until `at_s`, then in `pieces` steps over `over_s` seconds
    to x`end`, which it keeps: one stream, the song's position continuous across the pieces (each
    stretched on its own, joined with 30-ms crossfades)."""
    plan = [(start, at_s)] + [(start * (end / start) ** ((k + 0.5) / pieces), over_s / pieces) for k in range(pieces)]
    plan.append((end, max(seconds - at_s - over_s, 1.0)))
    fade = int(0.03 * sr)
    out, pos = np.zeros(0, np.float32), 0.0
    for f, dur in plan:
        lo = int(pos * sr)
        seg = stretch(np.asarray(y[lo: lo + int((dur * f + 0.1) * sr)], np.float32), f)[: int(dur * sr) + fade]
        if len(out) >= fade and len(seg) >= fade:
            w = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            seg = seg.copy()
            seg[:fade] = seg[:fade] * w + out[-fade:] * (1.0 - w)
            out = out[:-fade]
        out = np.concatenate([out, seg])
        pos += dur * f
    return out
