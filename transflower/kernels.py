"""Compiled per-frame loops (numba) for the live path and whole clips: forward kinematics of the leg
chains (floor clamp; grounding a floating dancer and the traction of a sliding foot, from its features),
the motion-feature integrator for a crowd, slerp, polyphase FIR resampling, and the audio feature row of a
hop (after its FFT).

Each kernel writes into arrays its caller preallocated, so a frame allocates nothing. The rotation
maths is `transflower.rotations`' scalar forms, compiled here. Compiled code is cached on disk
(numba's cache: next to this file, else the user cache folder; `NUMBA_CACHE_DIR` overrides), and
`warm_up()` loads or compiles every kernel at start-up, so nothing compiles inside the live loop.
"""
from __future__ import annotations

import numba
import numpy as np

from transflower import rotations as R

_jit = numba.njit(cache=True, nogil=True)
_qmul = _jit(R.quat_mul_scalar)
_qapply = _jit(R.quat_apply_scalar)
_qexp = _jit(R.quat_from_expmap_scalar)
_wrap = _jit(R.wrap_angle_scalar)
_slerp = _jit(R.quat_slerp_scalar)


@_jit
def _link(grot, gpos, offsets, p, j, x, y, z, w):
    """Joint j's global rotation and position from its parent p's and its local rotation (x, y, z, w)."""
    gx, gy, gz, gw = _qmul(grot[p, 0], grot[p, 1], grot[p, 2], grot[p, 3], x, y, z, w)
    grot[j, 0], grot[j, 1], grot[j, 2], grot[j, 3] = gx, gy, gz, gw
    ox, oy, oz = _qapply(grot[p, 0], grot[p, 1], grot[p, 2], grot[p, 3], offsets[j, 0], offsets[j, 1], offsets[j, 2])
    gpos[j, 0], gpos[j, 1], gpos[j, 2] = gpos[p, 0] + ox, gpos[p, 1] + oy, gpos[p, 2] + oz


@_jit
def lowest_foot(root, rots, chain, parents, offsets, feet, grot, gpos, out):
    """out[n] = height of the lowest foot joint of frame n. root (N, 3), rots (N, J, 4) local rotations;
    chain: the joints from the root to the feet, parent first; grot (J, 4) / gpos (J, 3): scratch."""
    for n in range(root.shape[0]):
        for c in range(chain.shape[0]):
            j = chain[c]
            p = parents[j]
            if p < 0:
                for a in range(4):
                    grot[j, a] = rots[n, j, a]
                for a in range(3):
                    gpos[j, a] = root[n, a]
            else:
                _link(grot, gpos, offsets, p, j, rots[n, j, 0], rots[n, j, 1], rots[n, j, 2], rots[n, j, 3])
        low = np.inf
        for f in range(feet.shape[0]):
            low = min(low, gpos[feet[f], 1])
        out[n] = low


@_jit
def lift_feet(root, rots, chain, parents, offsets, feet, grot, gpos, low, floor_y):
    """Lift root[n, 1] wherever frame n's lowest foot is below floor_y (lowest_foot, then in place);
    returns how many frames were lifted."""
    lowest_foot(root, rots, chain, parents, offsets, feet, grot, gpos, low)
    lifted = 0
    for n in range(root.shape[0]):
        if low[n] < floor_y:
            root[n, 1] += floor_y - low[n]
            lifted += 1
    return lifted


@_jit
def _fk_row(features, b, slot, chain, parents, offsets, grot, gpos):
    """Leg-chain FK of motion-feature row b (unscaled; root_y in column 3, exp-maps from column 4, slot[j] =
    joint j's place among them or -1) with the root at (0, root_y, 0) and the heading left out: the body
    frame of that row (a turn about +Y moves no point up or down)."""
    for c in range(chain.shape[0]):
        j = chain[c]
        s = slot[j]
        x, y, z, w = 0.0, 0.0, 0.0, 1.0
        if s >= 0:
            k = 4 + 3 * s
            x, y, z, w = _qexp(np.float64(features[b, k]), np.float64(features[b, k + 1]), np.float64(features[b, k + 2]))
        p = parents[j]
        if p < 0:
            grot[j, 0], grot[j, 1], grot[j, 2], grot[j, 3] = x, y, z, w
            gpos[j, 0], gpos[j, 1], gpos[j, 2] = 0.0, np.float64(features[b, 3]), 0.0
        else:
            _link(grot, gpos, offsets, p, j, x, y, z, w)


@_jit
def feet_low_rows(features, slot, chain, parents, offsets, feet, grot, gpos, out):
    """out[b] = height of the lowest foot joint of motion-feature row b (leg-chain FK: _fk_row)."""
    for b in range(features.shape[0]):
        _fk_row(features, b, slot, chain, parents, offsets, grot, gpos)
        low = np.inf
        for f in range(feet.shape[0]):
            low = min(low, gpos[feet[f], 1])
        out[b] = low


@_jit
def traction_rows(features, slot, chain, parents, offsets, feet, grot, gpos, prev, has_prev, floor, strength, slip,
                  near, fade, swing, swing_fade):
    """One Traction step for B rows in place (see transflower.floor.Grounding): where row b's lowest foot
    point is within `near` cm of floor[b] (its weight fading to 0 over the next `fade` cm), its horizontal
    slide since the last frame, in the last frame's heading, is d + Rot(dyaw) f_t - f_{t-1} (d = the root's
    displacement, columns 0 and 1; f = the point in the body frame). The part of (weight x slide) beyond
    `slip` cm, times strength[b], is taken out of d. A point moving about the root faster than `swing` cm a
    frame is a swing skimming the floor, not a stance: its weight fades to 0 over the next `swing_fade` cm
    (swing 0: off).
    prev (B, F, 3): each foot point in the last row's body frame; has_prev (B,): whether that is set.
    Returns the corrections' length, summed (cm)."""
    total = 0.0
    for b in range(features.shape[0]):
        _fk_row(features, b, slot, chain, parents, offsets, grot, gpos)
        k, low = 0, np.inf
        for f in range(feet.shape[0]):
            if gpos[feet[f], 1] < low:
                k, low = f, gpos[feet[f], 1]
        w = min(1.0, max(0.0, (near + fade - (low - floor[b])) / fade))
        if has_prev[b] and w > 0.0 and strength[b] > 0.0:
            c, s = np.cos(np.float64(features[b, 2])), np.sin(np.float64(features[b, 2]))
            x, z = gpos[feet[k], 0], gpos[feet[k], 2]
            dx, dz = np.float64(features[b, 0]), np.float64(features[b, 1])
            rx, rz = c * x + s * z - prev[b, k, 0], -s * x + c * z - prev[b, k, 2]  # the point about the root
            if swing > 0.0:  # a swing skimming the floor: held, it would throw the body against the swing
                # and the other foot past the real dances' fastest frames (the cha-cha's spikes)
                w *= min(1.0, max(0.0, (swing + swing_fade - (rx * rx + rz * rz) ** 0.5) / swing_fade))
            sx, sz = w * (dx + rx), w * (dz + rz)
            mag = (sx * sx + sz * sz) ** 0.5
            if mag > slip:
                g = strength[b] * (mag - slip) / mag
                features[b, 0] -= g * sx
                features[b, 1] -= g * sz
                total += g * mag
        for f in range(feet.shape[0]):
            for a in range(3):
                prev[b, f, a] = gpos[feet[f], a]
        has_prev[b] = True
    return total


@_jit
def ground_rows(features, slot, chain, parents, offsets, feet, grot, gpos, low, history, head, floor, rate, sink, shift):
    """One Grounding step for B rows in place (see transflower.floor.Grounding): history (B, W) holds each
    dancer's lowest-foot heights of the last W frames (slot `head` is this frame's); their minimum is where
    the dancer stands. Above floor[b]: root_y moves down by rate x the gap; more than `sink` below: up.
    shift[b] = the change made (cm); the history moves with it. Returns the changes' absolute sum."""
    feet_low_rows(features, slot, chain, parents, offsets, feet, grot, gpos, low)
    W = history.shape[1]
    total = 0.0
    for b in range(features.shape[0]):
        history[b, head] = low[b]
        m = np.inf
        for i in range(W):
            m = min(m, history[b, i])
        d = 0.0
        if m > floor[b]:
            d = -rate * (m - floor[b])
        elif m < floor[b] - sink:
            d = rate * (floor[b] - sink - m)
        features[b, 3] += d
        for i in range(W):
            history[b, i] += d
        shift[b] = d
        total += abs(d)
    return total


@_jit
def integrate(features, position, yaw, rotating, radius, root_out, rots_out):
    """One MotionIntegrator step for each of B dancers (see transflower.motion_features).
    features (B, D) -> root_out (B, 3), rots_out (B, J, 4); position (B, 3) / yaw (B,) are the state.
    A dancer further than `radius` from the origin is pulled back onto that circle (the stage)."""
    for b in range(features.shape[0]):
        dx, dz, dyaw, y = np.float64(features[b, 0]), np.float64(features[b, 1]), np.float64(features[b, 2]), np.float64(features[b, 3])
        c, s = np.cos(yaw[b]), np.sin(yaw[b])
        position[b, 0] += c * dx + s * dz
        position[b, 2] += -s * dx + c * dz
        yaw[b] = _wrap(yaw[b] + dyaw)
        r = (position[b, 0] ** 2 + position[b, 2] ** 2) ** 0.5
        if r > radius:
            position[b, 0] *= radius / r
            position[b, 2] *= radius / r
        root_out[b, 0], root_out[b, 1], root_out[b, 2] = position[b, 0], y, position[b, 2]
        hy, hw = np.sin(0.5 * yaw[b]), np.cos(0.5 * yaw[b])
        for r_i in range(rotating.shape[0]):
            k = 4 + 3 * r_i
            x, yy, z, w = _qexp(np.float64(features[b, k]), np.float64(features[b, k + 1]), np.float64(features[b, k + 2]))
            if r_i == 0:  # the root: heading back on top of the tilt
                x, yy, z, w = _qmul(0.0, hy, 0.0, hw, x, yy, z, w)
            j = rotating[r_i]
            rots_out[b, j, 0], rots_out[b, j, 1], rots_out[b, j, 2], rots_out[b, j, 3] = x, yy, z, w


@_jit
def slerp_into(out, q0, q1, t):
    """out[n] = slerp(q0[n], q1[n], t) for (N, 4) unit quaternions."""
    for n in range(out.shape[0]):
        out[n, 0], out[n, 1], out[n, 2], out[n, 3] = _slerp(q0[n, 0], q0[n, 1], q0[n, 2], q0[n, 3],
                                                            q1[n, 0], q1[n, 1], q1[n, 2], q1[n, 3], t)


@_jit
def fir_polyphase(bank, buf, n_old, n_out, n_end, up, down, drop, out):
    """Outputs n_out..n_end-1 of a polyphase FIR (see transflower.realtime.resampler.StreamResampler), the first
    `drop` of them discarded; buf[0] is input sample n_old - (taps - 1). Returns how many were written."""
    taps = bank.shape[1]
    w = 0
    for n in range(n_out, n_end):
        if drop > 0:
            drop -= 1
            continue
        j = n * down
        p = j % up
        s = j // up - n_old
        acc = 0.0
        for t in range(taps):
            acc += bank[p, t] * buf[s + t]
        out[w] = acc
        w += 1
    return w


@_jit
def add_saws(out, samplerate, freqs, phases):
    """out[n] += sum_k saw(freqs[k] * n / samplerate + phases[k]), saw(x) = 2 (x mod 1) - 1 (demo track pads)."""
    for n in range(out.shape[0]):
        t = n / samplerate
        for k in range(freqs.shape[0]):
            out[n] += 2.0 * ((freqs[k] * t + phases[k]) % 1.0) - 1.0


@_jit
def one_pole_lowpass(x, a):
    """y[n] = (1 - a) x[n] + a y[n-1], in place (scipy.signal.lfilter([1 - a], [1, -a], x))."""
    y = 0.0
    for n in range(x.shape[0]):
        y = (1.0 - a) * x[n] + a * y
        x[n] = y


@_jit
def audio_hop(spec, power_ref, mel_lo, mel_off, mel_w, amin, history, prev_mel_db, onset_hist, frames, fps, lags,
              lag_prior, env, out):
    """The feature row of one hop from its window's spectrum (transflower.audio_features.AudioFeatureExtractor).

    spec (n_fft//2+1,) complex rfft of the windowed history; mel filter m is mel_w[mel_off[m]:mel_off[m+1]]
    on the bins from mel_lo[m] (the filterbank's nonzero band: 2k multiplies instead of 66k, and 16 KB to
    read instead of 0.5 MB). Updates prev_mel_db and the onset ring (slot frames % len); env is scratch.
    out: mel_db[n_mels], rms_db, onset, tempo, pulse."""
    n_mels = mel_lo.shape[0]
    onset = 0.0
    for m in range(n_mels):
        acc = 0.0
        k = mel_lo[m]
        for i in range(mel_off[m], mel_off[m + 1]):
            z = spec[k]
            acc += mel_w[i] * (z.real * z.real + z.imag * z.imag)
            k += 1
        db = 10.0 * np.log10(max(acc / power_ref, amin))
        if frames > 0 and db > prev_mel_db[m]:
            onset += db - prev_mel_db[m]
        prev_mel_db[m] = db
        out[m] = db
    onset /= n_mels
    ms = 0.0
    for i in range(history.shape[0]):
        ms += history[i] * history[i]
    out[n_mels] = 10.0 * np.log10(max(ms / history.shape[0] * 2.0, amin))  # x2: a full-scale sine is 0 dB
    out[n_mels + 1] = onset

    # tempo: autocorrelation of the onset envelope (oldest first, mean removed) at the candidate lags
    n = onset_hist.shape[0]
    onset_hist[frames % n] = onset
    start = (frames + 1) % n
    mean = 0.0
    for i in range(n):
        env[i] = onset_hist[(start + i) % n]
        mean += env[i]
    mean /= n
    for i in range(n):
        env[i] -= mean
    best, best_lag = 0.0, 0
    for li in range(lags.shape[0]):
        lag = lags[li]
        ac = 0.0
        for i in range(n - lag):
            ac += env[i + lag] * env[i]
        score = max(ac, 0.0) * lag_prior[li]
        if score > best:  # strictly: the first of equal maxima, as np.argmax
            best, best_lag = score, lag
    tempo, pulse = 0.0, 0.0
    if best_lag > 0:
        tempo = np.log2(60.0 * fps / best_lag / 120.0)
        # the onset envelope one, two, three periods ago (clipped to the window): a beat expected now
        count = 0
        for k in range(1, 4):
            if k * best_lag <= min(frames, n - 1):
                pulse += onset_hist[(frames - k * best_lag) % n]
                count += 1
        if count:
            pulse /= count
    out[n_mels + 2] = tempo
    out[n_mels + 3] = pulse
    return best_lag


def warm_up() -> None:
    """Load (or, the first time on a machine, compile) every kernel with the live path's argument types."""
    J = 3
    parents = np.array([-1, 0, 1], np.int64)
    rots = np.zeros((1, J, 4))
    rots[..., 3] = 1.0
    lift_feet(np.zeros((1, 3)), rots, np.arange(J, dtype=np.int64), parents, np.ones((J, 3)),
              np.array([2], np.int64), np.zeros((J, 4)), np.zeros((J, 3)), np.zeros(1), 0.0)
    ground_rows(np.zeros((1, 7), np.float32), np.array([0, -1, -1], np.int64), np.arange(J, dtype=np.int64), parents,
                np.ones((J, 3)), np.array([2], np.int64), np.zeros((J, 4)), np.zeros((J, 3)), np.zeros(1), np.zeros((1, 4)), 0,
                np.zeros(1), 0.2, 5.0, np.zeros(1))
    traction_rows(np.zeros((1, 7), np.float32), np.array([0, -1, -1], np.int64), np.arange(J, dtype=np.int64), parents,
                  np.ones((J, 3)), np.array([2], np.int64), np.zeros((J, 4)), np.zeros((J, 3)), np.zeros((1, 1, 3)),
                  np.zeros(1, np.bool_), np.zeros(1), np.full(1, 0.5), 0.0, 5.0, 3.0, 6.0, 6.0)
    integrate(np.zeros((1, 7), np.float32), np.zeros((1, 3)), np.zeros(1), np.array([0], np.int64), 150.0,
              np.zeros((1, 3)), rots)
    slerp_into(np.zeros((J, 4)), rots[0], rots[0], 0.5)
    fir_polyphase(np.ones((1, 3)), np.zeros(8), 0, 0, 2, 1, 2, 0, np.zeros(4))
    audio_hop(np.zeros(3, np.complex128), 1.0, np.zeros(1, np.int64), np.array([0, 2], np.int64), np.ones(2), 1e-10,
              np.zeros(4), np.zeros(1), np.zeros(5), 0, 20.0, np.array([2], np.int64), np.ones(1), np.zeros(5),
              np.zeros(5, np.float32))
