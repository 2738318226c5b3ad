import numpy as np
import pytest

from transflower.bvh import forward_kinematics
from transflower.floor import FloorClamp
from transflower.rotations import quat_from_expmap
from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton


def _skeleton():
    rng = np.random.default_rng(0)
    off = np.zeros((len(JOINT_NAMES), 3))
    off[1:] = rng.normal(size=(len(JOINT_NAMES) - 1, 3)) * 4 + np.array([0, -12, 0])
    return Skeleton(JOINT_NAMES, PARENTS, off)


def test_lowest_foot_matches_full_fk_and_lift_puts_it_on_the_floor():
    sk = _skeleton()
    rng = np.random.default_rng(1)
    rots = quat_from_expmap(rng.normal(size=(50, len(JOINT_NAMES), 3)) * 0.4)
    root = np.stack([rng.normal(size=50), rng.uniform(0, 80, 50), rng.normal(size=50)], axis=1)
    clamp = FloorClamp(sk)
    pos, _ = forward_kinematics(sk, root, rots)
    feet = [JOINT_NAMES.index(n) for n in ("RightToe", "RightHeel", "LeftToe", "LeftHeel")]
    np.testing.assert_allclose(clamp.lowest_foot(root, rots), pos[:, feet, 1].min(1), atol=1e-9)
    below = pos[:, feet, 1].min(1) < 0
    assert below.any() and (~below).any()
    lifted = root.copy()
    clamp.apply(lifted, rots)
    after = forward_kinematics(sk, lifted, rots)[0][:, feet, 1].min(1)
    np.testing.assert_allclose(after[below], 0.0, atol=1e-9)           # sunk feet now touch the floor
    np.testing.assert_array_equal(lifted[~below], root[~below])         # airborne frames are untouched
    assert clamp.lifts == below.sum()


# --- Grounding: the fed-back root height kept on the floor ------------------------------------------

def _rows(n, rng, sk):
    """Unscaled motion-feature rows with random joint exp-maps, root height 90 cm, and their FK root/rotations."""
    from transflower.motion_features import MotionFeatures

    mf = MotionFeatures(sk)
    rows = np.zeros((n, mf.dim), np.float32)
    rows[:, 3] = 90.0
    rows[:, 4:] = rng.normal(size=(n, mf.dim - 4)) * 0.3
    return rows


def _lowest_by_fk(sk, rows):
    from transflower.motion_features import MotionFeatures

    root, rots = MotionFeatures(sk).decode(rows.astype(np.float64))
    pos, _ = forward_kinematics(sk, root, rots)
    feet = [JOINT_NAMES.index(n) for n in ("RightToe", "RightHeel", "LeftToe", "LeftHeel")]
    return pos[:, feet, 1].min(1)


def test_grounding_measures_the_lowest_foot_of_a_feature_row_as_full_fk_does():
    from transflower.floor import Grounding

    sk = _skeleton()
    rows = _rows(40, np.random.default_rng(2), sk)
    rows[:, 0:3] = np.random.default_rng(3).normal(size=(40, 3))  # travel and turns: they move no point up or down
    np.testing.assert_allclose(Grounding(sk).lowest(rows), _lowest_by_fk(sk, rows), atol=1e-4)


def test_grounding_pulls_a_rising_dancer_back_to_its_seed_floor_and_leaves_a_jump_alone():
    from transflower.floor import Grounding

    sk = _skeleton()
    rng = np.random.default_rng(4)
    seed = _rows(60, rng, sk)
    g = Grounding(sk, window=20, rate=0.2)
    g.start(seed)
    floor = float(np.percentile(_lowest_by_fk(sk, seed), 2))
    assert g.floor[0] == np.float64(floor)
    # a model whose root height drifts up 0.5 cm a frame from the height it is fed (150 cm in 300 frames):
    # grounded, each pose is corrected before it is fed back, and the dancer stays near its floor
    out, y = [], 90.0
    for t in range(300):
        row = _rows(1, rng, sk)
        row[0, 3] = y + 0.5
        g.apply(row)
        y = float(row[0, 3])
        out.append(row[0].copy())
    low = _lowest_by_fk(sk, np.array(out))
    seed_low = _lowest_by_fk(sk, seed)
    assert abs(np.median(low[-100:]) - np.median(seed_low)) < 15.0  # ungrounded: 100-150 cm up by then
    assert np.abs(g.shift).max() < 1.0 and abs(y - 90.0) < 40  # steady state: each frame takes back the drift
    # a jump (root 25 cm up for 8 frames, shorter than the window) by a dancer standing on its floor: untouched
    base = _rows(1, rng, sk)
    g2 = Grounding(sk, window=20, rate=0.2)
    g2.start(np.repeat(base, 30, axis=0))
    heights = []
    for t in range(30):
        row = base.copy()
        if 10 <= t < 18:
            row[0, 3] += 25.0
        g2.apply(row)
        heights.append(row[0, 3] - base[0, 3])
    np.testing.assert_allclose(heights, [25.0 if 10 <= t < 18 else 0.0 for t in range(30)], atol=1e-4)


def test_grounding_lifts_a_sinking_dancer_and_keeps_dancers_apart():
    from transflower.floor import Grounding

    sk = _skeleton()
    rng = np.random.default_rng(5)
    seed = _rows(60, rng, sk)
    g = Grounding(sk, dancers=2, window=10, rate=0.2, sink=5.0)
    g.start(seed)
    pose = _rows(1, rng, sk)[0]
    heights, y = [], np.array([pose[3], pose[3]], np.float32)
    for t in range(120):
        rows = np.stack([pose, pose]).copy()
        rows[:, 3] = y
        rows[1, 3] -= 1.0 if t < 40 else 0.0  # dancer 1's model sinks 1 cm a frame for 40 frames; dancer 0 stands still
        g.apply(rows)
        y = rows[:, 3].copy()
        heights.append(y)
    heights = np.array(heights)
    stand = g.lowest(pose[None])[0] + heights[-1, 1] - pose[3]  # dancer 1's lowest foot, at its final height
    assert stand > g.floor[1] - 5.0 - 1.0                       # back up to within `sink` of its floor (sunk: 40 cm)
    alone = Grounding(sk, dancers=1, window=10, rate=0.2, sink=5.0)  # dancer 0 on its own: the same heights
    alone.start(seed)
    y0 = np.float32(pose[3])
    for t in range(120):
        row = pose[None].copy()
        row[0, 3] = y0
        alone.apply(row)
        y0 = row[0, 3]
        assert abs(y0 - heights[t, 0]) < 1e-4
    assert g.moved_cm > 30.0


# --- Traction: a planted foot does not skate with the body ------------------------------------------

def _world_feet(sk, rows):
    """(T, 4, 3) world positions of the foot points of unscaled feature rows (full decode + FK)."""
    from transflower.motion_features import MotionFeatures

    root, rots = MotionFeatures(sk).decode(rows.astype(np.float64))
    pos, _ = forward_kinematics(sk, root, rots)
    return pos[:, [JOINT_NAMES.index(n) for n in ("RightToe", "RightHeel", "LeftToe", "LeftHeel")]]


def _gliding(sk, rng, n, dx=0.5, dz=3.0, dyaw=0.05, lift=0.0):
    """A dancer frozen in one pose on its floor whose root glides (dx, dz cm and dyaw rad a frame), the whole
    body `lift` cm up; and its seed clip (the pose standing still)."""
    pose = _rows(1, rng, sk)[0]
    seed = np.repeat(pose[None], 30, 0)
    rows = np.repeat(pose[None], n, 0)
    rows[:, 0], rows[:, 1], rows[:, 2] = dx, dz, dyaw
    rows[:, 3] += lift
    return seed, rows


def _run(g, rows):
    out = rows.copy()
    for t in range(len(out)):
        r = out[t:t + 1].copy()
        g.apply(r)
        out[t] = r[0]
    return out


def _start(g, seed):
    g.start(seed)
    return g


def test_traction_keeps_a_planted_foot_in_place_while_the_body_turns_and_glides():
    from transflower.floor import Grounding

    sk = _skeleton()
    seed, rows = _gliding(sk, np.random.default_rng(7), 40)
    free = _world_feet(sk, _run(_start(Grounding(sk, traction=0.0), seed), rows))
    k = int(free[0, :, 1].argmin())  # the frozen pose's lowest point, on the floor every frame
    skate = np.linalg.norm(np.diff(free[:, k][:, [0, 2]], axis=0), axis=-1)
    assert skate[1:].min() > 2.5  # without traction it skates ~3 cm a frame
    for strength in (1.0, 0.5):
        g = _start(Grounding(sk, traction=strength, slip=0.0), seed)
        held = _world_feet(sk, _run(g, rows))
        step = np.linalg.norm(np.diff(held[:, k][:, [0, 2]], axis=0), axis=-1)
        # frame 0 has no last frame to compare with; from frame 1 on the slide is (1 - strength) of what it was
        np.testing.assert_allclose(step[1:], (1.0 - strength) * skate[1:], atol=1e-3)
        assert g.held_cm > 0.0
    # the body still turns: traction moves the root, never the heading
    np.testing.assert_array_equal(_run(_start(Grounding(sk, traction=1.0, slip=0.0), seed), rows)[:, 2], rows[:, 2])


def test_traction_leaves_a_slide_under_slip_and_a_foot_in_the_air_alone():
    from transflower.floor import Grounding

    sk = _skeleton()
    rng = np.random.default_rng(8)
    seed, rows = _gliding(sk, rng, 30, dx=0.0, dz=1.0, dyaw=0.0)
    g = _start(Grounding(sk, traction=1.0, slip=1.5), seed)
    np.testing.assert_array_equal(_run(g, rows), _run(_start(Grounding(sk, traction=0.0), seed), rows))  # 1 cm < slip
    assert g.held_cm == 0.0
    seed, rows = _gliding(sk, rng, 30, dx=0.0, dz=4.0, dyaw=0.0)
    held = _world_feet(sk, _run(_start(Grounding(sk, traction=1.0, slip=1.5), seed), rows))
    k = int(held[0, :, 1].argmin())
    np.testing.assert_allclose(np.diff(held[:, k, 2])[1:], 1.5, atol=1e-3)  # a 4 cm slide cut to the 1.5 allowed
    # the whole dancer 30 cm up (a jump held by a model; rate tiny so grounding does not bring it down):
    # its feet are far above near + fade, and its travel is left as sampled
    seed, rows = _gliding(sk, rng, 30, lift=30.0)
    g = _start(Grounding(sk, traction=1.0, slip=0.0, rate=1e-6), seed)
    out = _run(g, rows)
    np.testing.assert_array_equal(out[:, :2], rows[:, :2])
    assert g.held_cm == 0.0


def test_traction_holds_a_stance_foot_and_leaves_a_swing_skimming_the_floor_alone():
    """A dancer turning on the spot on a low foot point: turning slowly, the point is a stance foot and
    traction carries the body round it (held in place at traction 1); swept fast about the root (past twice
    `swing` cm a frame), it is a swing skimming the floor and the root is left where the model put it (held,
    it threw the body, and the other foot, past the real dances' fastest frames: the cha-cha's spikes)."""
    from transflower.floor import Grounding

    sk = _skeleton()
    rng = np.random.default_rng(10)
    seed, rows = _gliding(sk, rng, 30, dx=0.0, dz=0.0, dyaw=0.3)  # a fast turn on the spot
    free = _world_feet(sk, rows)
    k = int(free[0, :, 1].argmin())
    sweep = np.linalg.norm(np.diff(free[:, k][:, [0, 2]], axis=0), axis=-1)
    assert sweep.min() > 2.0  # cm a frame
    g = _start(Grounding(sk, traction=1.0, slip=0.0, swing=0.9, swing_fade=0.9), seed)  # weight 0 past 1.8 cm
    np.testing.assert_array_equal(_run(g, rows)[:, :2], rows[:, :2])
    assert g.held_cm == 0.0
    g = _start(Grounding(sk, traction=1.0, slip=0.0, swing=0.0), seed)  # no swing gate: held, body pushed
    held = _world_feet(sk, _run(g, rows))
    assert np.linalg.norm(np.diff(held[:, k][:, [0, 2]], axis=0), axis=-1)[1:].max() < 1e-3 and g.held_cm > 0
    # slowly, under the default gate (6 cm a frame), the same turn pivots on the planted point
    seed, rows = _gliding(sk, rng, 30, dx=0.0, dz=0.0, dyaw=0.02)
    held = _world_feet(sk, _run(_start(Grounding(sk, traction=1.0, slip=0.0), seed), rows))
    k = int(held[0, :, 1].argmin())
    assert np.linalg.norm(np.diff(held[:, k][:, [0, 2]], axis=0), axis=-1)[1:].max() < 1e-3


def test_traction_rejects_out_of_range_settings():
    from transflower.floor import Grounding

    for kw in ({"traction": 1.5}, {"traction": -0.1}, {"slip": -1.0}, {"fade": 0.0}, {"swing": -1.0}, {"swing_fade": 0.0}):
        with pytest.raises(ValueError, match="Grounding"):
            Grounding(_skeleton(), **kw)
    g = Grounding(_skeleton(), dancers=2)  # off by default (auto); a style's preset sets it per dancer
    assert not g.traction.any() and g.slip == 1.5
    g.set_traction(0.5, dancer=1)
    assert list(g.traction) == [0.0, 0.5]
    with pytest.raises(ValueError, match="Grounding"):
        g.set_traction(2.0)


def test_traction_is_per_dancer_and_a_dancer_turned_on_mid_show_measures_from_the_last_frame():
    from transflower.floor import Grounding

    sk = _skeleton()
    seed, rows = _gliding(sk, np.random.default_rng(9), 30)
    both = _start(Grounding(sk, dancers=2, slip=0.0), seed)
    out = np.zeros((30, 2, rows.shape[1]), np.float32)
    for t in range(30):
        if t == 10:
            both.set_traction(1.0, dancer=1)  # on for dancer 1 from frame 10 (a style switch)
        r = np.stack([rows[t], rows[t]])
        both.apply(r)
        out[t] = r
    np.testing.assert_array_equal(out[:, 0], rows)  # dancer 0: off, untouched
    np.testing.assert_array_equal(out[:10, 1], rows[:10])
    feet = _world_feet(sk, out[:, 1])
    k = int(feet[0, :, 1].argmin())
    step = np.linalg.norm(np.diff(feet[:, k][:, [0, 2]], axis=0), axis=-1)
    assert step[:9].min() > 2.5 and step[9:].max() < 1e-3  # planted from its first frame on, no catch-up


def test_probe_stance_measures_a_planted_foot_about_the_root_and_leaves_a_swing_out():
    """experiments/2026-11-probes/probe_stance.py, the basis of traction's swing gate: under a body travelling 3 cm a frame, a
    foot fixed on the floor moves 3 cm a frame about the root (planted); a foot swept 10 cm a frame about
    the root counts near the floor but not as planted."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("probe_stance", Path(__file__).parents[1] / "experiments" / "2026-11-probes" / "probe_stance.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    T, J = 40, len(JOINT_NAMES)
    pos = np.full((T, J, 3), 50.0)
    pos[:, 0, 0] = 3.0 * np.arange(T)  # the root travels along x
    toe = JOINT_NAMES.index("RightToe")
    pos[:, toe] = (0.0, 0.0, 0.0)  # planted: fixed in the world, on the floor
    planted, near = probe.about_root(pos, list(JOINT_NAMES), 5.0, 1.5)
    np.testing.assert_allclose(planted, 3.0)
    assert len(planted) == T - 1
    pos[:, toe, 0] = pos[:, 0, 0] + 10.0 * np.arange(T)  # swept 10 cm a frame about the root, still low
    planted, near = probe.about_root(pos, list(JOINT_NAMES), 5.0, 1.5)
    assert len(planted) == 0
    np.testing.assert_allclose(near, 10.0)
