"""The foot-contact term's geometry (transflower.models.feet) against the numpy kinematics the benchmarks use,
and the term itself: zero for the data's own step, positive for a foot that skates, with a gradient."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from transflower.bvh import forward_kinematics  # noqa: E402
from transflower.features import StandardScaler  # noqa: E402
from transflower.motion_features import MotionFeatures  # noqa: E402
from transflower.skeleton import JOINT_NAMES, PARENTS, Skeleton  # noqa: E402

FEET = ("RightToe", "RightHeel", "LeftToe", "LeftHeel")


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    off = np.zeros((len(JOINT_NAMES), 3))
    off[1:] = rng.normal(size=(len(JOINT_NAMES) - 1, 3)) * 4 + np.array([0, -12, 0])
    sk = Skeleton(JOINT_NAMES, PARENTS, off)
    mf = MotionFeatures(sk)
    sc = StandardScaler(rng.normal(size=mf.dim).astype(np.float32), rng.uniform(0.5, 2, mf.dim).astype(np.float32))
    from transflower.models.feet import FootGeometry

    geo = FootGeometry({"names": sk.names, "parents": sk.parents.tolist(), "offsets": sk.offsets.tolist()}, sk.rotating,
                       sc.mean, sc.std, fps=20.0)
    return rng, sk, mf, sc, geo


def test_foot_points_and_their_world_speed_match_the_numpy_kinematics():
    rng, sk, mf, sc, geo = _setup()
    rows = np.zeros((2, mf.dim), np.float32)
    rows[:, 3] = 90.0
    rows[:, 4:] = rng.normal(size=(2, mf.dim - 4)) * 0.4
    rows[1, :3] = [3.0, -5.0, 0.3]  # the second frame travels and turns
    root, rots = mf.decode(rows.astype(np.float64))
    pos, _ = forward_kinematics(sk, root, rots)
    feet = pos[:, [JOINT_NAMES.index(n) for n in FEET]]  # (2, 4, 3) world, cm
    x = torch.from_numpy(sc.transform(rows))
    p0 = geo.points(x[0]).double().numpy()
    np.testing.assert_allclose(p0, feet[0] - root[0] * [1, 0, 1], atol=1e-3)  # frame 0: heading 0, at the origin
    p1, speed = geo.step(x[0], x[1])
    world = np.linalg.norm((feet[1] - feet[0])[:, [0, 2]], axis=-1) * 20.0 / 100.0
    np.testing.assert_allclose(speed.double().numpy(), world, atol=1e-4)
    np.testing.assert_allclose(p1[:, 1].double().numpy(), feet[1][:, 1], atol=1e-3)  # heights need no heading


def test_contact_term_is_zero_for_the_data_and_punishes_a_skating_foot():
    from transflower.models.transflower import TransflowerConfig, TransflowerLive

    rng, sk, mf, sc, geo = _setup(1)
    cfg = TransflowerConfig(motion_dim=mf.dim, audio_dim=4, d_model=16, n_heads=2, motion_layers=1, audio_layers=1,
                            cross_layers=1, context=8, flow_steps=2, flow_hidden=16, contact=1.0, contact_margin=0.1)
    model = TransflowerLive(cfg)
    model.set_foot_geometry(geo)
    T = 6
    rows = np.zeros((1, T, mf.dim), np.float32)
    rows[..., 3] = 90.0
    rows[..., 4:] = rng.normal(size=(1, 1, mf.dim - 4)) * 0.2  # one pose held: the feet stand still
    data = torch.from_numpy(sc.transform(rows))
    h = torch.zeros(1, T, cfg.d_model)
    # the flow's sample replaced by exactly the data's next pose: no excess over the data, no loss
    model.flow.inverse = lambda z, c: (data - model.residual_mask * data).reshape(-1, mf.dim)
    assert float(model.contact_loss(data, data, h, data)) == 0.0
    # a sample that slides every foot 10 cm a frame (2 m/s) along the floor while the data's feet stand
    moved = rows.copy()
    moved[..., 0] = 10.0
    slide = torch.from_numpy(sc.transform(moved)).requires_grad_(True)
    model.flow.inverse = lambda z, c: (slide - model.residual_mask * data).reshape(-1, mf.dim)
    loss = model.contact_loss(data, data, h, data)
    assert float(loss) == pytest.approx((2.0 - 0.1) ** 2, rel=0.05)  # every foot on the floor (one pose, its own floor)
    loss.backward()
    assert slide.grad is not None and float(slide.grad.abs().sum()) > 0


def test_contact_term_punishes_a_foot_held_up_where_the_data_stands():
    """Lifting the feet off the floor must not be a way out of the sliding term."""
    from transflower.models.transflower import TransflowerConfig, TransflowerLive

    rng, sk, mf, sc, geo = _setup(2)
    cfg = TransflowerConfig(motion_dim=mf.dim, audio_dim=4, d_model=16, n_heads=2, motion_layers=1, audio_layers=1,
                            cross_layers=1, context=8, flow_steps=2, flow_hidden=16, contact=1.0)
    model = TransflowerLive(cfg)
    model.set_foot_geometry(geo)
    rows = np.zeros((1, 6, mf.dim), np.float32)
    rows[..., 3] = 90.0
    rows[..., 4:] = rng.normal(size=(1, 1, mf.dim - 4)) * 0.2
    data = torch.from_numpy(sc.transform(rows))
    lifted = rows.copy()
    lifted[..., 3] += 15.0  # the whole body 15 cm up, feet still: no sliding, but hovering 10 cm past the allowance
    up = torch.from_numpy(sc.transform(lifted))
    model.flow.inverse = lambda z, c: (up - model.residual_mask * data).reshape(-1, mf.dim)
    loss = float(model.contact_loss(data, data, torch.zeros(1, 6, cfg.d_model), data))
    assert loss == pytest.approx((0.10 * 3.0) ** 2, rel=0.05)


def test_contact_planted_counts_only_frames_where_the_data_foot_stands():
    """With contact_planted, a sample sliding where the data's foot glides too is not punished."""
    from transflower.models.transflower import TransflowerConfig, TransflowerLive

    rng, sk, mf, sc, geo = _setup(4)
    rows = np.zeros((1, 6, mf.dim), np.float32)
    rows[..., 3] = 90.0
    rows[..., 4:] = rng.normal(size=(1, 1, mf.dim - 4)) * 0.2
    data = torch.from_numpy(sc.transform(rows))
    glide = rows.copy()
    glide[..., 0] = 5.0  # the data's next pose glides 1 m/s along the floor
    target = torch.from_numpy(sc.transform(glide))
    faster = rows.copy()
    faster[..., 0] = 10.0  # the sample glides 2 m/s
    sample = torch.from_numpy(sc.transform(faster))
    out = {}
    for planted in (0.0, 0.15):
        cfg = TransflowerConfig(motion_dim=mf.dim, audio_dim=4, d_model=16, n_heads=2, motion_layers=1, audio_layers=1,
                                cross_layers=1, context=8, flow_steps=2, flow_hidden=16, contact=1.0, contact_planted=planted)
        model = TransflowerLive(cfg)
        model.set_foot_geometry(geo)
        model.flow.inverse = lambda z, c, m=model: (sample - m.residual_mask * data).reshape(-1, mf.dim)
        out[planted] = float(model.contact_loss(data, data, torch.zeros(1, 6, cfg.d_model), target))
    assert out[0.0] == pytest.approx((2.0 - 1.0 - 0.1) ** 2, rel=0.05)  # beyond the data's glide: punished
    assert out[0.15] < 1e-6                                             # the data's foot was not planted: free


def test_contact_pace_pulls_a_sample_that_stops_back_to_the_datas_travel_and_leg_motion():
    """The counterweight: the data travels 5 cm a frame (1 m/s at 20 fps) on a held pose; a sample that
    nearly stops (1 cm a frame) slides its feet less than the data, so the slide term is 0, but the pace
    term is (0.2 - 1)^2 for the travel (the legs hold still in both). The data itself costs nothing."""
    from transflower.models.transflower import TransflowerConfig, TransflowerLive

    rng, sk, mf, sc, geo = _setup(3)
    cfg = TransflowerConfig(motion_dim=mf.dim, audio_dim=4, d_model=16, n_heads=2, motion_layers=1, audio_layers=1,
                            cross_layers=1, context=8, flow_steps=2, flow_hidden=16, contact=1.0, contact_pace=0.5)
    model = TransflowerLive(cfg)
    model.set_foot_geometry(geo)
    T = 6
    rows = np.zeros((1, T, mf.dim), np.float32)
    rows[..., 3] = 90.0
    rows[..., 4:] = rng.normal(size=(1, 1, mf.dim - 4)) * 0.2
    rows[..., 0] = 5.0  # the data travels
    data = torch.from_numpy(sc.transform(rows))
    h = torch.zeros(1, T, cfg.d_model)
    model.flow.inverse = lambda z, c: (data - model.residual_mask * data).reshape(-1, mf.dim)
    assert float(model.contact_loss(data, data, h, data)) == pytest.approx(0.0, abs=1e-6)
    still = rows.copy()
    still[..., 0] = 1.0
    stop = torch.from_numpy(sc.transform(still)).requires_grad_(True)
    model.flow.inverse = lambda z, c: (stop - model.residual_mask * data).reshape(-1, mf.dim)
    loss = model.contact_loss(data, data, h, data)
    assert float(loss) == pytest.approx(0.5 * 0.64, rel=0.02)
    assert float(model.loss_terms["contact_pace"]) == pytest.approx(0.64, rel=0.02)
    loss.backward()
    assert float(stop.grad[..., 0].sum()) < 0  # it pulls the travel up
    # the legs' motion about the root, as geo.step(about_root=True) measures it: a foot swung 10 cm a frame
    swung = rows.copy()
    swung[..., 0] = 0.0
    p0 = geo.points(torch.from_numpy(sc.transform(swung[:, :1])))
    _, world, about = geo.step(torch.from_numpy(sc.transform(swung[:, :1])), torch.from_numpy(sc.transform(swung[:, 1:2])),
                               about_root=True)
    np.testing.assert_allclose(about.numpy(), world.numpy(), atol=1e-4)  # the root does not move: the same
    assert p0.shape[-2:] == (4, 3)


def test_contact_pace_cap_pulls_a_sample_that_travels_too_far_back_down_and_leaves_one_within_the_cap_alone():
    """One-sided, the pull only ever raises the travel (2026-11-28: the rumba drifted to 1.6-1.8x its
    travel). With contact_pace_cap 1.1 a sample travelling 2 m/s where the data travels 1 m/s costs
    (2 - 1.1)^2 more, with a gradient that lowers the travel; one at 1.05 m/s costs nothing; without the
    cap the far traveller costs nothing either. A cap below 1 is refused."""
    from transflower.errors import UserError
    from transflower.models.transflower import TransflowerConfig, TransflowerLive

    rng, sk, mf, sc, geo = _setup(4)
    base = dict(motion_dim=mf.dim, audio_dim=4, d_model=16, n_heads=2, motion_layers=1, audio_layers=1,
                cross_layers=1, context=8, flow_steps=2, flow_hidden=16, contact=1.0, contact_pace=1.0)
    T = 6
    rows = np.zeros((1, T, mf.dim), np.float32)
    rows[..., 3] = 90.0
    rows[..., 4:] = rng.normal(size=(1, 1, mf.dim - 4)) * 0.2
    rows[..., 0] = 5.0  # the data travels 5 cm a frame: 1 m/s
    data = torch.from_numpy(sc.transform(rows))
    h = torch.zeros(1, T, 16)

    def pace_of(cap, cm_per_frame):
        model = TransflowerLive(TransflowerConfig(**base, contact_pace_cap=cap))
        model.set_foot_geometry(geo)
        moved = rows.copy()
        moved[..., 0] = cm_per_frame
        sample = torch.from_numpy(sc.transform(moved)).requires_grad_(True)
        model.flow.inverse = lambda z, c: (sample - model.residual_mask * data).reshape(-1, mf.dim)
        model.contact_loss(data, data, h, data)
        pace = model.loss_terms["contact_pace"]
        return float(pace), sample

    far, sample = pace_of(1.1, 10.0)
    assert far == pytest.approx((2.0 - 1.1) ** 2, rel=0.03)
    model = TransflowerLive(TransflowerConfig(**base, contact_pace_cap=1.1))
    model.set_foot_geometry(geo)
    model.flow.inverse = lambda z, c: (sample - model.residual_mask * data).reshape(-1, mf.dim)
    model.contact_loss(data, data, h, data).backward()
    assert float(sample.grad[..., 0].sum()) > 0  # descending it lowers the travel
    assert pace_of(1.1, 5.25)[0] == pytest.approx(0.0, abs=1e-6)
    assert pace_of(0.0, 10.0)[0] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(UserError, match="contact_pace_cap"):
        TransflowerConfig(**base, contact_pace_cap=0.5)


def test_contact_styles_keeps_the_term_to_the_windows_it_names():
    """Two windows: the first a sample that stops where its data travels (a pace shortfall), the second
    the data itself. With the first window masked out (windows = [False, True]) the term sees only the
    second and costs nothing; with the first in, it costs the first window's shortfall, weighted over the
    windows that count; with none in, nothing, and no gradient. A style name not in the data is refused."""
    from transflower.errors import UserError
    from transflower.models.transflower import TransflowerConfig, TransflowerLive

    rng, sk, mf, sc, geo = _setup(5)
    base = dict(motion_dim=mf.dim, audio_dim=4, d_model=16, n_heads=2, motion_layers=1, audio_layers=1,
                cross_layers=1, context=8, flow_steps=2, flow_hidden=16, contact=1.0, contact_pace=1.0)
    model = TransflowerLive(TransflowerConfig(**base))
    model.set_foot_geometry(geo)
    T = 6
    rows = np.zeros((2, T, mf.dim), np.float32)
    rows[..., 3] = 90.0
    rows[..., 4:] = rng.normal(size=(1, 1, mf.dim - 4)) * 0.2
    rows[..., 0] = 5.0  # both windows' data travel 1 m/s
    data = torch.from_numpy(sc.transform(rows))
    still = rows.copy()
    still[0, :, 0] = 1.0  # the first window's sample nearly stops: 0.2 m/s
    sample = torch.from_numpy(sc.transform(still)).requires_grad_(True)
    model.flow.inverse = lambda z, c: (sample - model.residual_mask * data).reshape(-1, mf.dim)
    h = torch.zeros(2, T, 16)

    def pace(windows):
        model.contact_loss(data, data, h, data, windows=windows)
        return float(model.loss_terms["contact_pace"])

    assert pace(None) == pytest.approx(0.64 / 2, rel=0.03)        # both windows count: the mean
    assert pace(torch.tensor([True, False])) == pytest.approx(0.64, rel=0.03)
    assert pace(torch.tensor([False, True])) == pytest.approx(0.0, abs=1e-6)
    loss = model.contact_loss(data, data, h, data, windows=torch.tensor([False, False]))
    assert float(loss) == 0.0 and not loss.requires_grad
    with pytest.raises(UserError, match="contact_styles"):
        TransflowerConfig(**base, styles=4, contact_styles=[7])
