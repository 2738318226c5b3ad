"""`transflower import bvh`: folders of your own <id>.bvh + audio -> normalised <id>.bvh + <id>.wav pairs.

Small synthetic dances written by hand-rolled BVH writers (any channel order), in the forms other tools
export: Mixamo names (`mixamorig:` prefix) in metres with Z up at 60 fps, CMU names in centimetres at
120 fps with ZYX channels. The same dance in different units / axes / rates must import to the same
motion; bad files are skipped with one line each naming them (exit 1); the result feeds `features`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from transflower.cli import main
from transflower.rotations import euler_from_quat, quat_apply, quat_from_euler, quat_inv, quat_mul

# (name, parent, offset in cm, Y up, T-pose facing +Z); leaves get an End Site
MIXAMO = [
    ("Hips", None, (0, 0, 0)),
    ("Spine", "Hips", (0, 10, 0)), ("Spine1", "Spine", (0, 15, 0)), ("Neck", "Spine1", (0, 20, 0)), ("Head", "Neck", (0, 10, 0)),
    ("LeftUpLeg", "Hips", (10, -5, 0)), ("LeftLeg", "LeftUpLeg", (0, -45, 0)), ("LeftFoot", "LeftLeg", (0, -45, 0)),
    ("LeftToeBase", "LeftFoot", (0, -5, 12)),
    ("RightUpLeg", "Hips", (-10, -5, 0)), ("RightLeg", "RightUpLeg", (0, -45, 0)), ("RightFoot", "RightLeg", (0, -45, 0)),
    ("RightToeBase", "RightFoot", (0, -5, 12)),
    ("LeftShoulder", "Spine1", (5, 18, 0)), ("LeftArm", "LeftShoulder", (12, 0, 0)), ("LeftForeArm", "LeftArm", (25, 0, 0)),
    ("LeftHand", "LeftForeArm", (25, 0, 0)),
    ("RightShoulder", "Spine1", (-5, 18, 0)), ("RightArm", "RightShoulder", (-12, 0, 0)), ("RightForeArm", "RightArm", (-25, 0, 0)),
    ("RightHand", "RightForeArm", (-25, 0, 0)),
]
END_SITES = {"Head": (0, 15, 0), "LeftToeBase": (0, 0, 5), "RightToeBase": (0, 0, 5), "LeftHand": (8, 0, 0), "RightHand": (-8, 0, 0)}
CMU_NAMES = {"Spine": "LowerBack", "Spine1": "Spine", "Neck": "Neck1", "LeftToeBase": "LeftToeBase", "LeftShoulder": "LeftShoulder"}
HIP_HEIGHT = 100.0  # cm: feet on the floor in the rest pose (100 - 5 - 45 - 45 - 5 = 0)


def dance(seconds: float, fps: float, seed: int = 0):
    """A smooth synthetic dance (root (T, 3) cm, local rotations (T, J, 4)), continuous in time."""
    t = np.arange(int(round(seconds * fps)) + 1) / fps
    J = len(MIXAMO)
    rng = np.random.default_rng(seed)
    amp, freq, phase = rng.uniform(0.05, 0.4, (J, 3)), rng.uniform(0.3, 1.5, (J, 3)), rng.uniform(0, 6, (J, 3))
    angles = amp[None] * np.sin(2 * np.pi * freq[None] * t[:, None, None] + phase[None])
    local = quat_from_euler(angles, "ZXY")
    root = np.stack([20 * np.sin(0.5 * t), HIP_HEIGHT + 3 * np.sin(4 * t), 15 * t], axis=1)
    return root, local


def write_bvh_text(path: Path, root, local, fps, *, names=None, scale=1.0, z_up=False, order="ZXY", root_order=None,
                   drop_frames=0, extra_joint=False):
    """A BVH as another tool would write it: chosen names, unit scale, up axis and channel order."""
    names = names or [j[0] for j in MIXAMO]
    offsets = np.array([j[2] for j in MIXAMO], float)
    ends = {k: np.array(v, float) for k, v in END_SITES.items()}
    root, local = np.asarray(root, float), np.asarray(local, float)
    if z_up:  # the same motion seen with Z up: rotate everything +90 deg about X, (x, y, z) -> (x, -z, y)
        r = np.array([np.sqrt(0.5), 0, 0, np.sqrt(0.5)])
        rot = lambda v: quat_apply(np.broadcast_to(r, v.shape[:-1] + (4,)), v)  # noqa: E731
        offsets, root = rot(offsets), rot(root)
        ends = {k: rot(v) for k, v in ends.items()}
        rb = np.broadcast_to(r, local.shape)
        local = quat_mul(quat_mul(rb, local), quat_inv(rb))
    offsets, root = offsets * scale, root * scale
    ends = {k: v * scale for k, v in ends.items()}
    children = {j[0]: [c[0] for c in MIXAMO if c[1] == j[0]] for j in MIXAMO}
    index = {j[0]: i for i, j in enumerate(MIXAMO)}
    axis = {"X": "Xrotation", "Y": "Yrotation", "Z": "Zrotation"}
    lines = ["HIERARCHY"]
    columns = []

    def emit(name, depth):
        i = index[name]
        ind = "\t" * depth
        o = offsets[i]
        lines.append(f"{ind}{'ROOT' if depth == 0 else 'JOINT'} {names[i]}")
        lines.append(ind + "{")
        lines.append(f"{ind}\tOFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        ro = (root_order or order) if depth == 0 else order
        pos = "Xposition Yposition Zposition " if depth == 0 else ""
        lines.append(f"{ind}\tCHANNELS {6 if depth == 0 else 3} {pos}{' '.join(axis[a] for a in ro)}")
        columns.append((i, ro, depth == 0))
        for c in children[name]:
            emit(c, depth + 1)
        if extra_joint and name == "LeftHand":
            lines.extend([f"{ind}\tJOINT LeftHandThumb1", ind + "\t{", f"{ind}\t\tOFFSET 3 0 3", f"{ind}\t\tCHANNELS 3 Zrotation Xrotation Yrotation",
                      f"{ind}\t\tEnd Site", ind + "\t\t{", f"{ind}\t\t\tOFFSET 2 0 2", ind + "\t\t}", ind + "\t}"])
            columns.append((-1, "ZXY", False))
        if name in ends:
            e = ends[name]
            lines.extend([f"{ind}\tEnd Site", ind + "\t{", f"{ind}\t\tOFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}", ind + "\t}"])
        lines.append(ind + "}")

    emit("Hips", 0)
    T = root.shape[0]
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / fps:.8f}"]
    rows = []
    for f in range(T - drop_frames):
        vals = []
        for i, ro, is_root in columns:
            if is_root:
                vals += list(root[f])
            vals += [0.0, 0.0, 0.0] if i < 0 else list(np.degrees(euler_from_quat(local[f, i], ro)))
        rows.append(" ".join(f"{v:.6f}" for v in vals))
    path.write_text("\n".join(lines + rows) + "\n")


def write_audio(path: Path, seconds: float, sr: int = 22050):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2).astype(np.float32), sr)


def global_positions(bvh_path: Path):
    from transflower.bvh import forward_kinematics, read_bvh

    m = read_bvh(bvh_path)
    pos, _ = forward_kinematics(m.skeleton, m.root_positions, m.local_rotations)
    return m, pos


def test_same_dance_in_other_units_axes_and_rates_imports_the_same(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    root60, local60 = dance(4.0, 60)
    root120, local120 = dance(4.0, 120)
    mixamo = [f"mixamorig:{j[0]}" for j in MIXAMO]
    write_bvh_text(src / "take_m.bvh", root60, local60, 60, names=mixamo, scale=0.01, z_up=True)       # Blender/Mixamo-like
    write_bvh_text(src / "take_cm.bvh", root120, local120, 120, order="ZYX", root_order="XYZ")           # another exporter
    write_audio(src / "take_m.ogg", 4.5)
    write_audio(src / "take_cm.flac", 4.0)
    assert main(["import", "bvh", str(src), str(out), "--fps", "20"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["import_report.json", "take_cm.bvh", "take_cm.wav", "take_m.bvh", "take_m.wav"]
    report = json.loads((out / "import_report.json").read_text())
    m = report["clips"]["take_m"]
    assert m["units"] == "m" and m["up_axis"].startswith("z") and m["source_fps"] == 60 and m["renamed_joints"] == m["joints"] == len(MIXAMO) + len(END_SITES)
    c = report["clips"]["take_cm"]
    assert c["units"] == "cm" and c["up_axis"] == "y" and c["source_fps"] == 120 and c["renamed_joints"] == 0
    assert c["frames"] == m["frames"] == 81  # 4 s at 20 fps
    assert 150 <= m["height_cm"] <= 185  # 185 cm tall in the rest pose, a little less while dancing
    a, pa = global_positions(out / "take_m.bvh")
    b, pb = global_positions(out / "take_cm.bvh")
    assert a.fps == b.fps == 20 and a.skeleton.names == b.skeleton.names
    assert {j[0] for j in MIXAMO} <= set(a.skeleton.names)  # prefixes gone; End Sites kept as <parent>_End
    assert np.abs(pa - pb).max() < 0.05  # cm: the same dance, whatever form it came in
    # our conventions: Y up (the head above the hips), cm, floor at 0 (feet touch it, never below)
    head = a.skeleton.names.index("Head")
    assert np.all(pa[:, head, 1] > pa[:, 0, 1] + 40)
    assert abs(np.percentile(pa[..., 1].min(axis=1), 5)) < 0.5
    # and the motion matches the source: the root path in cm, resampled to 20 fps
    assert np.allclose(pa[:, 0, [0, 2]], root60[::3][:, [0, 2]], atol=0.05)
    wav, sr = sf.read(str(out / "take_m.wav"))
    assert wav.ndim == 1 and abs(len(wav) / sr - 4.5) < 0.01


def test_cmu_named_folder_then_features(tmp_path):
    """A CMU-named skeleton keeps its names; the result is what `transflower features` reads."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    names = [CMU_NAMES.get(j[0], j[0]) for j in MIXAMO]
    for k in range(3):
        root, local = dance(3.0, 120, seed=k)
        write_bvh_text(src / f"cmu_{k:02d}.bvh", root, local, 120, names=names, order="ZYX")
        write_audio(src / f"cmu_{k:02d}.wav", 3.2)
    assert main(["import", "bvh", str(src), str(out)]) == 0
    assert "LowerBack" in global_positions(out / "cmu_00.bvh")[0].skeleton.names
    assert main(["features", str(out), "--fps", "20"]) == 0
    meta = json.loads((out / "features.json").read_text())
    assert set(names) <= set(meta["skeleton"]["names"]) and len(meta["train_ids"]) >= 2
    assert np.load(out / "cmu_00.motion.npy").shape[0] == 61


def test_bad_files_are_skipped_and_named(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    root, local = dance(3.0, 30)
    for i in ("good_a", "good_b"):
        write_bvh_text(src / f"{i}.bvh", root, local, 30)
        write_audio(src / f"{i}.wav", 3.0)
    write_bvh_text(src / "truncated.bvh", root, local, 30, drop_frames=10)
    write_audio(src / "truncated.wav", 3.0)
    write_bvh_text(src / "no_audio.bvh", root, local, 30)
    write_bvh_text(src / "short_audio.bvh", root, local, 30)
    write_audio(src / "short_audio.wav", 1.0)
    write_bvh_text(src / "inches.bvh", root, local, 30, scale=1 / 2.54)  # 67 units tall: cm? m? ask
    write_audio(src / "inches.wav", 3.0)
    write_bvh_text(src / "thumb.bvh", root, local, 30, extra_joint=True)
    write_audio(src / "thumb.wav", 3.0)
    (src / "not_audio.mp3").write_text("this is not an mp3")
    write_bvh_text(src / "not_audio.bvh", root, local, 30)
    write_audio(src / "orphan.wav", 1.0)

    assert main(["import", "bvh", str(src), str(out)]) == 1
    err = capsys.readouterr().err
    expect = {
        "truncated.bvh": "file truncated",
        "no_audio.bvh": "no matching audio",
        "short_audio.wav": "lasts 1.00 s but the motion",
        "inches.bvh": "pass --units",
        "thumb.bvh": "joints ['LeftHandThumb1', 'LeftHandThumb1_End'] not in the folder's common skeleton",
        "not_audio.mp3": "cannot be read as audio",
        "orphan.wav": "no matching orphan.bvh",
    }
    for name, words in expect.items():
        line = next((ln for ln in err.splitlines() if name in ln and words in ln), None)
        assert line is not None, (name, words, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: 6 clip(s) skipped:") and "inches.bvh" in last and "good_a" not in last
    assert sorted(p.name for p in out.glob("*.bvh")) == ["good_a.bvh", "good_b.bvh"]
    report = json.loads((out / "import_report.json").read_text())
    assert report["clips"]["good_a"]["status"] == "ok" and report["clips"]["inches"]["status"] == "skipped"
    # told the unit, the inch file imports
    out2 = tmp_path / "out2"
    assert main(["import", "bvh", str(src), str(out2), "--units", "inch", "--clips", "inches"]) == 0
    _, pos = global_positions(out2 / "inches.bvh")
    _, ref = global_positions(out / "good_a.bvh")
    assert np.abs(pos - ref).max() < 0.05


def test_folder_errors_are_one_line(tmp_path, capsys):
    assert main(["import", "bvh", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2
    assert "source folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["import", "bvh", str(tmp_path / "empty"), str(tmp_path / "o")]) == 2
    assert "no <id>.bvh files" in capsys.readouterr().err


def test_name_normalisation():
    from transflower.import_bvh import normalise_name

    assert normalise_name("mixamorig:LeftArm") == "LeftArm"
    assert normalise_name("mixamorig1:Hips") == "Hips"
    assert normalise_name("Armature|Spine") == "Spine"
    assert normalise_name("Left Fore Arm") == "Left_Fore_Arm"
    assert normalise_name("Hips") == "Hips"
