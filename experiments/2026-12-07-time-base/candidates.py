import numpy as np


def acf_tracker(onset, fps, window_s=8.0, lo=40.0, hi=240.0, prior=None, harmonics=(1,), hop=2):
    """Causal: per frame, the autocorrelation of the last window_s of onset envelope; bpm of the best lag
    (parabolic interpolation), optionally summed over harmonics and weighted by a log-normal prior."""
    n = int(window_s * fps)
    out = np.full(len(onset), np.nan)
    lags = np.arange(int(60 * fps / hi), int(60 * fps / lo) + 2)
    last = np.nan
    for t in range(n, len(onset), hop):
        e = onset[t - n: t] - onset[t - n: t].mean()
        full = np.correlate(e, e, "full")[n - 1:] / (n - np.arange(n))
        sc = np.zeros(len(lags))
        for h in harmonics:
            idx = np.clip(lags * h, 0, n - 1)
            sc += full[idx] / h ** 0.0
        sc = np.maximum(sc, 0)
        if prior is not None:
            bpm = 60 * fps / lags
            sc = sc * np.exp(-0.5 * (np.log2(bpm / prior[0]) / prior[1]) ** 2)
        i = int(np.argmax(sc))
        if 0 < i < len(sc) - 1 and sc[i] > 0:
            a, b, c = sc[i - 1], sc[i], sc[i + 1]
            d = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
            lag = lags[i] + np.clip(d, -0.5, 0.5)
        else:
            lag = lags[i]
        last = 60 * fps / lag
        out[t: t + hop] = last
    return out


CANDIDATES = {
    "prior120": lambda o, f: acf_tracker(o, f, 6.0, 50, 200, prior=(120, 1.0)),
    "flat": lambda o, f: acf_tracker(o, f, 8.0, 50, 200),
    "h123": lambda o, f: acf_tracker(o, f, 8.0, 50, 200, harmonics=(1, 2, 3)),
    "h12p": lambda o, f: acf_tracker(o, f, 8.0, 50, 200, prior=(110, 1.5), harmonics=(1, 2)),
    "h124": lambda o, f: acf_tracker(o, f, 10.0, 40, 200, harmonics=(1, 2, 4)),
}
