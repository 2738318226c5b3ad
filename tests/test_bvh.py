import numpy as np
import pytest
from scipy.spatial.transform import Rotation as R

from transflower.bvh import BvhMotion, forward_kinematics, read_bvh, write_bvh
from transflower.errors import DataError
from transflower.skeleton import JOINT_NAMES, PARENTS, ROTATING_JOINTS, Skeleton


def make_motion(T=30, seed=0):
    rng = np.random.default_rng(seed)
    J = len(JOINT_NAMES)
    offsets = rng.normal(scale=10, size=(J, 3))
    offsets[0] = 0
    sk = Skeleton(JOINT_NAMES, PARENTS, offsets)
    rots = R.random(T * J, random_state=seed).as_quat().reshape(T, J, 4)
    rots[:, [j for j in range(J) if j not in ROTATING_JOINTS]] = [0, 0, 0, 1]
    rots[0, 1] = R.from_euler("ZXY", [10, 90, -30], degrees=True).as_quat()  # gimbal lock survives
    root = rng.normal(scale=50, size=(T, 3))
    return BvhMotion(sk, 20.0, root, rots)


def test_roundtrip_fk(tmp_path):
    m = make_motion()
    p = tmp_path / "a.bvh"
    write_bvh(p, m)
    m2 = read_bvh(p)
    assert m2.skeleton.names == JOINT_NAMES
    np.testing.assert_array_equal(m2.skeleton.parents, PARENTS)
    np.testing.assert_array_equal(m2.skeleton.rotating, ROTATING_JOINTS)
    np.testing.assert_allclose(m2.skeleton.offsets, m.skeleton.offsets, atol=1e-6)
    assert m2.fps == pytest.approx(20.0)
    g1, r1 = forward_kinematics(m.skeleton, m.root_positions, m.local_rotations)
    g2, r2 = forward_kinematics(m2.skeleton, m2.root_positions, m2.local_rotations)
    assert np.abs(g1 - g2).max() < 1e-4
    assert np.all(np.abs(np.abs(np.sum(r1 * r2, -1)) - 1) < 1e-9)
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_fk_simple_chain():
    sk = Skeleton(["a", "b", "c"], [-1, 0, 1], [[0, 0, 0], [0, 10, 0], [0, 5, 0]], np.array([0, 1]))
    local = np.tile([0, 0, 0, 1.0], (1, 3, 1))
    local[0, 1] = R.from_euler("z", 90, degrees=True).as_quat()
    g, _ = forward_kinematics(sk, np.array([[1.0, 2, 3]]), local)
    np.testing.assert_allclose(g[0], [[1, 2, 3], [1, 12, 3], [-4, 12, 3]], atol=1e-12)


GENERIC = """HIERARCHY
ROOT root
{
  OFFSET 1 2 3
  CHANNELS 6 Zposition Xposition Yposition Xrotation Yrotation Zrotation
  JOINT mid
  {
    OFFSET 0 10 0
    CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
    End Site
    {
      OFFSET 0 0 7
    }
  }
  JOINT other
  {
    OFFSET 5 0 0
    CHANNELS 3 Xrotation Zrotation Yrotation
    End Site
    {
      OFFSET 0 0 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
30 10 20 90 0 0 0 10 0 0 0 0 0 0 0
0 0 0 0 0 0 0 10 0 0 90 0 0 0 0
"""


def test_read_generic_hierarchy(tmp_path):
    p = tmp_path / "g.bvh"
    p.write_text(GENERIC)
    m = read_bvh(p)
    assert m.skeleton.names == ["root", "mid", "mid_End", "other"]  # non-zero End Site kept, zero one dropped
    np.testing.assert_array_equal(m.skeleton.parents, [-1, 0, 1, 0])
    assert m.fps == pytest.approx(25)
    np.testing.assert_allclose(m.root_positions[0], [10, 20, 30])  # channel order honoured
    g, _ = forward_kinematics(m.skeleton, m.root_positions, m.local_rotations)
    # frame 0: root rotated 90 deg about X: +Y -> +Z, +Z -> -Y
    np.testing.assert_allclose(g[0, 1], [10, 20, 40], atol=1e-9)
    np.testing.assert_allclose(g[0, 2], [10, 13, 40], atol=1e-9)
    # frame 1: mid rotated 90 deg about X
    np.testing.assert_allclose(g[1, 2], [0, 10, 0] + np.array([0, -7, 0]), atol=1e-9)


def _corrupt(tmp_path, text, name="bad.bvh"):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(DataError) as e:
        read_bvh(p)
    assert str(p) in str(e.value)
    return str(e.value)


def test_corrupt_files(tmp_path):
    m = make_motion(T=5)
    good = tmp_path / "good.bvh"
    write_bvh(good, m)
    text = good.read_text()
    lines = text.splitlines()
    # truncated in the motion data
    msg = _corrupt(tmp_path, "\n".join(lines[:-2]) + "\n")
    assert "expected 5 frames" in msg
    # truncated in the hierarchy
    _corrupt(tmp_path, "\n".join(lines[:40]) + "\n")
    # wrong number of channel values on a frame line
    bad = lines.copy()
    bad[-1] = bad[-1] + " 1.0"
    msg = _corrupt(tmp_path, "\n".join(bad))
    assert f"line {len(lines)}" in msg and "channel values" in msg
    # non-numeric value
    bad = lines.copy()
    bad[-3] = bad[-3].replace(bad[-3].split()[4], "abc", 1)
    assert "non-numeric" in _corrupt(tmp_path, "\n".join(bad))
    # wrong CHANNELS count / bad channel names / bad offset / bad frame count
    assert "channels" in _corrupt(tmp_path, text.replace("CHANNELS 3 Zrotation", "CHANNELS 4 Zrotation", 1))
    _corrupt(tmp_path, text.replace("Xrotation Yrotation\n", "Xrotation Wrotation\n", 1))
    _corrupt(tmp_path, text.replace("OFFSET", "OFFSET x", 1))
    _corrupt(tmp_path, text.replace("Frames: 5", "Frames: five"))
    _corrupt(tmp_path, text.replace("Frame Time:", "Frame Tim:"))
    _corrupt(tmp_path, "")
    _corrupt(tmp_path, text.split("MOTION")[0])
    with pytest.raises(DataError):
        read_bvh(tmp_path / "missing.bvh")
