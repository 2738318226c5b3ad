"""Write the preview's default avatar, bridge/preview/default_avatar.vrm: a plain VRM 1.0 dancer.

    python scripts/make_default_vrm.py [OUT.vrm]

A glTF 2.0 binary (GLB) with the VRMC_vrm extension: 22 humanoid bone nodes in a T-pose facing +Z (the VRM 1.0
rest: no node rotations), proportioned like the synthetic dancer of transflower.bridge.retarget. Each bone carries rigid
parts (no skinning) that read as a person: tapered capsule limbs whose rounded ends make the joints, a torso
that narrows at the waist, a neck, a head with eyes, nose, mouth, ears and hair, hands with a thumb, shoes;
plain materials (skin, shirt, trousers, hair) and shoes coloured by side like the skeleton view (left blue,
right orange), so left and right stay readable. Deterministic: the same bytes every run (vertices rounded to
0.01 mm), so the committed file only changes when this script does.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from transflower.bridge.retarget import UNITY_BONES, UNITY_PARENTS, HumanoidRetarget, from_unity_position, synthetic_tpose_skeleton  # noqa: E402
from transflower.atomic import write_bytes_atomic  # noqa: E402

OUT = REPO / "bridge" / "preview" / "default_avatar.vrm"
# plain materials: base colour (linear RGB) and roughness
MATERIALS = {"skin": ((0.80, 0.52, 0.38), 0.7), "shirt": ((0.86, 0.86, 0.84), 0.9),
             "trousers": ((0.16, 0.18, 0.24), 0.9), "hair": ((0.10, 0.06, 0.04), 0.6),
             "eyes": ((0.03, 0.03, 0.04), 0.3), "lips": ((0.55, 0.22, 0.20), 0.6),
             "shoe_left": ((0.21, 0.77, 0.94), 0.6), "shoe_right": ((1.0, 0.55, 0.10), 0.6)}
AROUND = 16  # vertices around every ring
X, Y, Z = np.eye(3)


# ------------------------------------------------------------------------------------------ geometry
def lathe(origin, axis, rings, around: int = AROUND) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A surface of revolution: positions (n, 3), unit normals (n, 3), triangle indices (m,), outward and CCW.

    ``rings``: (t, ru, rv) or (t, ru, rv, cu, cv) along ``axis`` from ``origin``, t non-decreasing: an ellipse of
    half-axes ru, rv (centre shifted by cu, cv) across the axis. The cross axes: u = the avatar's width or height
    direction, v = its depth (+Z) or, for an axis along Z, its height (+Y). A ring of radius 0 closes an end;
    a ring given twice makes a sharp edge there (a hem, the rim of a flat end), else the shading is smooth."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    ref = Y if abs(a @ Z) > 0.9 else Z
    u = np.cross(ref, a)
    u /= np.linalg.norm(u)
    v = np.cross(a, u)
    th = 2 * np.pi * np.arange(around) / around
    pos = []
    for ring in rings:
        t, ru, rv, cu, cv = (*ring, 0.0, 0.0)[:5]
        c = np.asarray(origin, float) + t * a + cu * u + cv * v
        pos.append(c + np.outer(ru * np.cos(th), u) + np.outer(rv * np.sin(th), v))
    grid = np.array(pos)  # (rings, around, 3)
    idx = []
    for i in range(len(rings) - 1):
        for j in range(around):
            p, q = i * around + j, i * around + (j + 1) % around
            idx += [p, q, p + around, q, q + around, p + around]
    return grid.reshape(-1, 3), _grid_normals(grid, a), np.array(idx, np.int64)


def _grid_normals(grid: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Normals of a lathe's (rings, around, 3) grid by central differences: one-sided at the ends and beside a
    repeated ring (its twin is at the same place), so a ring given twice keeps two normals, a sharp edge; a
    closed end (radius 0): along the axis."""
    around_t = np.roll(grid, -1, axis=1) - np.roll(grid, 1, axis=1)
    nxt = np.concatenate([grid[1:], grid[-1:]])
    prv = np.concatenate([grid[:1], grid[:-1]])
    n = np.cross(around_t, nxt - prv)
    length = np.linalg.norm(n, axis=2, keepdims=True)
    pole = (length < 1e-12)[..., 0]
    n = n / np.where(length > 1e-12, length, 1.0)
    end = np.where(np.arange(len(grid)) < len(grid) / 2, -1.0, 1.0)[:, None, None] * axis  # a closed end faces out
    return np.where(pole[..., None], end, n).reshape(-1, 3)


def capsule(p0, p1, r0: float, r1: float, squash: float = 1.0, caps: int = 4):
    """A tapered capsule from p0 (radius r0) to p1 (radius r1), rounded ends centred on them (the joints);
    ``squash`` scales the depth (v) half-axis."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    length = float(np.linalg.norm(p1 - p0))
    rings = []
    for k in range(caps + 1):  # from the far side of p0's ball to its equator
        a = 0.5 * np.pi * k / caps
        rings.append((-r0 * np.cos(a), r0 * np.sin(a), squash * r0 * np.sin(a)))
    for k in range(caps + 1):  # from p1's equator to the far side of its ball
        a = 0.5 * np.pi * k / caps
        rings.append((length + r1 * np.sin(a), r1 * np.cos(a), squash * r1 * np.cos(a)))
    return lathe(p0, p1 - p0, rings)


def ellipsoid(centre, ru: float, rv: float, ra: float, axis=Y, rings: int = 6):
    """An ellipsoid of half-axes ru, rv across ``axis`` and ra along it."""
    a = np.asarray(axis, float)
    profile = [(ra * -np.cos(np.pi * k / rings), ru * np.sin(np.pi * k / rings), rv * np.sin(np.pi * k / rings))
               for k in range(rings + 1)]
    return lathe(centre, a, profile)


# ------------------------------------------------------------------------------------------- the body
def torso_parts(name: str, end: np.ndarray) -> list:
    """The pelvis (trousers), the waist and the ribcage (shirt), along +Y from the bone; ``end``: its child's
    offset. Rings (height, half width, half depth, 0, forward shift)."""
    if name == "Hips":  # from below the crotch up to the waistband, over the Spine joint
        return [("trousers", lathe((0, 0, 0), Y, [(-0.13, 0.0, 0.0), (-0.12, 0.07, 0.05), (-0.08, 0.14, 0.095),
                                                  (-0.02, 0.16, 0.108), (0.05, 0.148, 0.098), (0.12, 0.135, 0.092),
                                                  (0.14, 0.1, 0.07), (0.15, 0.0, 0.0)]))]
    if name == "Spine":  # the shirt from its hem (over the trousers) up the waist, narrowest above the navel
        h = float(end[1])
        hem = (-0.06, 0.152, 0.106)
        return [("shirt", lathe((0, 0, 0), Y, [(-0.06, 0.0, 0.0), hem, hem, (0.3 * h, 0.128, 0.09), (0.65 * h, 0.138, 0.096),
                                               (h + 0.03, 0.158, 0.105), (h + 0.05, 0.1, 0.07), (h + 0.055, 0.0, 0.0)]))]
    if name == "UpperChest":  # the ribcage up to the shoulders and a collar round the neck's base
        h = float(end[1])  # up to the Neck joint
        return [("shirt", lathe((0, 0, 0), Y, [(-0.03, 0.0, 0.0), (-0.02, 0.14, 0.095), (0.35 * h, 0.165, 0.108, 0, 0.005),
                                               (0.8 * h, 0.168, 0.102), (1.2 * h, 0.14, 0.085),
                                               (1.45 * h, 0.085, 0.065), (1.52 * h, 0.0, 0.0)]))]
    return []  # the Chest: its child starts where it does; the UpperChest draws that part


def head_parts(length: float) -> list:
    """The head over the Head joint (the base of the skull): skull and jaw, hair, eyes, nose, mouth, ears.
    ``length``: a scale (the neck's length) so an avatar of other proportions keeps a fitting head."""
    s = length / 0.14
    skull = lathe((0, 0, 0), Y, [(-0.01 * s, 0.0, 0.0), (0.0, 0.04 * s, 0.05 * s, 0, 0.02 * s),
                                 (0.035 * s, 0.066 * s, 0.082 * s, 0, 0.016 * s), (0.08 * s, 0.077 * s, 0.096 * s, 0, 0.008 * s),
                                 (0.13 * s, 0.082 * s, 0.1 * s), (0.18 * s, 0.08 * s, 0.098 * s, 0, -0.006 * s),
                                 (0.215 * s, 0.066 * s, 0.082 * s, 0, -0.01 * s), (0.24 * s, 0.036 * s, 0.046 * s, 0, -0.01 * s),
                                 (0.25 * s, 0.0, 0.0, 0, -0.01 * s)])
    hair = lathe((0, 0, 0), Y, [(0.135 * s, 0.0, 0.0, 0, -0.02 * s), (0.135 * s, 0.088 * s, 0.104 * s, 0, -0.012 * s),
                                (0.18 * s, 0.087 * s, 0.106 * s, 0, -0.012 * s), (0.222 * s, 0.073 * s, 0.09 * s, 0, -0.014 * s),
                                (0.25 * s, 0.042 * s, 0.054 * s, 0, -0.014 * s), (0.263 * s, 0.0, 0.0, 0, -0.014 * s)])
    back = ellipsoid((0, 0.12 * s, -0.045 * s), 0.078 * s, 0.06 * s, 0.07 * s)  # hair down the back of the head
    parts = [("skin", skull), ("hair", hair), ("hair", back),
             ("skin", capsule((0, 0.11 * s, 0.092 * s), (0, 0.08 * s, 0.108 * s), 0.011 * s, 0.014 * s)),  # nose
             ("lips", capsule((-0.022 * s, 0.05 * s, 0.096 * s), (0.022 * s, 0.05 * s, 0.096 * s), 0.008 * s, 0.008 * s,
                              squash=0.8))]
    for side in (-1.0, 1.0):
        parts.append(("eyes", ellipsoid((0.032 * s * side, 0.118 * s, 0.086 * s), 0.012 * s, 0.012 * s, 0.014 * s)))
        parts.append(("skin", ellipsoid((0.08 * s * side, 0.11 * s, -0.005 * s), 0.032 * s, 0.02 * s, 0.012 * s, axis=X)))
    down = np.array([0.0, -0.015 * s, 0.0])  # the chin a little below the joint, over the neck
    return [(m, (p + down, n, i)) for m, (p, n, i) in parts]


def hand_parts(side: float, length: float) -> list:
    """A hand along ±X from the wrist (palm down in the T-pose, thumb forward): palm, fingers, thumb.
    ``length``: the forearm's, for scale."""
    s = length / 0.25
    palm = lathe((0, 0, 0), (side, 0, 0), [(-0.01 * s, 0.0, 0.0), (-0.005 * s, 0.016 * s, 0.03 * s),
                                           (0.03 * s, 0.02 * s, 0.043 * s), (0.085 * s, 0.017 * s, 0.045 * s),
                                           (0.09 * s, 0.0, 0.0)])
    fingers = lathe((0, 0, 0), (side, 0, 0), [(0.08 * s, 0.0, 0.0), (0.08 * s, 0.014 * s, 0.041 * s),
                                              (0.13 * s, 0.012 * s, 0.038 * s), (0.165 * s, 0.01 * s, 0.03 * s),
                                              (0.18 * s, 0.0, 0.0)])
    thumb = capsule((0.02 * s * side, -0.004 * s, 0.03 * s), (0.07 * s * side, -0.012 * s, 0.066 * s), 0.013 * s, 0.01 * s)
    return [("skin", palm), ("skin", fingers), ("skin", thumb)]


def shoe_parts(name: str, end: np.ndarray) -> list:
    """The shoe: from the heel under the ankle (the Foot bone) to the ball of the foot (the Toes joint, on the
    floor), sole on the floor; the toe cap on the Toes bone. Rings (along +Z, half width, half height, 0, up)."""
    side = "shoe_left" if name.startswith("Left") else "shoe_right"
    if name.endswith("Toes"):
        return [(side, lathe((0, 0, 0), Z, [(-0.02, 0.0, 0.0, 0, 0.027), (-0.02, 0.045, 0.027, 0, 0.027),
                                            (0.035, 0.043, 0.023, 0, 0.023), (0.065, 0.032, 0.017, 0, 0.017),
                                            (0.078, 0.0, 0.0, 0, 0.012)]))]
    floor, toe = float(end[1]), float(end[2])  # the Toes joint: on the floor, forward of the ankle
    return [(side, lathe((0, 0, 0), Z, [(-0.075, 0.0, 0.0, 0, floor + 0.035), (-0.07, 0.03, 0.027, 0, floor + 0.03),
                                        (-0.05, 0.042, 0.04, 0, floor + 0.04), (0.0, 0.046, 0.055, 0, floor + 0.055),
                                        (0.5 * toe, 0.048, 0.04, 0, floor + 0.04), (toe, 0.046, 0.028, 0, floor + 0.028),
                                        (toe, 0.0, 0.0, 0, floor + 0.028)]))]


def limb_parts(name: str, end: np.ndarray) -> list:
    """Arms, legs, the neck and the shoulders: tapered capsules from the joint to the child's joint."""
    o = np.zeros(3)
    if name.endswith("UpperArm"):  # bare arm under a short sleeve
        sleeve_end = 0.45 * end
        hem = (float(np.linalg.norm(sleeve_end)), 0.049, 0.049)
        return [("skin", capsule(o, end, 0.044, 0.037)),
                ("shirt", lathe(o, end, [(-0.05, 0.0, 0.0), (-0.045, 0.035, 0.035), (-0.02, 0.052, 0.052), hem, hem,
                                         (hem[0], 0.0, 0.0)]))]
    radii = {"Shoulder": ("shirt", 0.055, 0.05), "LowerArm": ("skin", 0.037, 0.027), "Neck": ("skin", 0.055, 0.05),
             "UpperLeg": ("trousers", 0.078, 0.054), "LowerLeg": ("trousers", 0.054, 0.04)}
    for k, (mat, r0, r1) in radii.items():
        if name.endswith(k):
            return [(mat, capsule(o, end, r0, r1))]
    return []


def bone_parts(name: str, end: np.ndarray, local: dict) -> list:
    """[(material, (positions, normals, indices)), ...] for one bone, in its node's frame. ``end``: the offset to its child
    (the mean of its children's), ``local``: every bone's offset by name (for the head's and hands' scale)."""
    if name in ("Hips", "Spine", "Chest", "UpperChest"):
        return torso_parts(name, end)
    if name == "Head":
        return head_parts(float(np.linalg.norm(local["Neck"])))
    if name.endswith("Hand"):
        side = 1.0 if name.startswith("Left") else -1.0  # the left hand reaches +X
        return hand_parts(side, float(np.linalg.norm(local[name])))
    if name.endswith(("Foot", "Toes")):
        return shoe_parts(name, end)
    return limb_parts(name, end)


# ------------------------------------------------------------------------------------------- the file
def skeleton_offsets(leg: float, arm: float, torso: float) -> np.ndarray:
    """Each bone's offset from its parent (glTF frame, metres), the Hips at the height that puts the toes joint on
    the floor; ``leg``, ``arm``, ``torso`` scale those bones."""
    r = HumanoidRetarget(synthetic_tpose_skeleton())
    local = from_unity_position(r.bone_positions) / 100.0  # glTF = our frame (right-handed, +Z forward), metres
    for b, name in enumerate(UNITY_BONES):
        is_leg = name.endswith(("UpperLeg", "LowerLeg", "Foot", "Toes"))
        is_arm = name.endswith(("LowerArm", "Hand", "UpperArm"))
        local[b] *= leg if is_leg else arm if is_arm else torso
    y, b = 0.0, UNITY_BONES.index("LeftToes")
    while b > 0:
        y += local[b][1]
        b = UNITY_PARENTS[b]
    local[0] = (0.0, -y, 0.0)
    return local + 0.0


class _Glb:
    """The binary buffer, buffer views and accessors of a GLB being written."""

    def __init__(self):
        self.blob, self.views, self.accessors = bytearray(), [], []

    def add(self, data: np.ndarray, target: int, ctype: int, atype: str, minmax: bool = False) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        self.views.append({"buffer": 0, "byteOffset": len(self.blob), "byteLength": data.nbytes, "target": target})
        self.blob.extend(data.tobytes())
        acc = {"bufferView": len(self.views) - 1, "componentType": ctype, "count": int(len(data)), "type": atype}
        if minmax:
            acc["min"] = data.min(axis=0).astype(float).round(6).tolist()
            acc["max"] = data.max(axis=0).astype(float).round(6).tolist()
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def primitive(self, material: int, parts: list) -> dict:
        """One indexed triangle list from several (positions, normals, indices) parts."""
        pos, nrm, idx, base = [], [], [], 0
        for p, n, i in parts:
            pos.append(p.round(5))
            nrm.append(n)
            idx.append(i + base)
            base += len(p)
        pos, nrm, idx = np.concatenate(pos).astype(np.float32), np.concatenate(nrm).astype(np.float32), np.concatenate(idx)
        return {"attributes": {"POSITION": self.add(pos, 34962, 5126, "VEC3", True),
                               "NORMAL": self.add(nrm.round(4), 34962, 5126, "VEC3")},
                "indices": self.add(idx.astype(np.uint16), 34963, 5123, "SCALAR"), "material": material}


def build(leg: float = 1.0, arm: float = 1.0, torso: float = 1.0) -> bytes:
    """The GLB bytes; ``leg``, ``arm``, ``torso`` scale those bones (tests build avatars of other proportions)."""
    local = skeleton_offsets(leg, arm, torso)
    B = len(UNITY_BONES)
    children = {b: [c for c in range(B) if UNITY_PARENTS[c] == b] for b in range(B)}
    by_name = dict(zip(UNITY_BONES, local))
    glb = _Glb()
    names = list(MATERIALS)
    materials = [{"name": m, "pbrMetallicRoughness": {"baseColorFactor": [*rgb, 1.0], "metallicFactor": 0.0,
                                                      "roughnessFactor": rough}} for m, (rgb, rough) in MATERIALS.items()]
    meshes, nodes = [], [{"name": "Root", "children": [1]}]
    for b, name in enumerate(UNITY_BONES):
        kids = children[b]
        end = np.mean([local[c] for c in kids], axis=0) if kids else np.zeros(3)
        if name == "UpperChest":  # the way up the body, not the mean of the neck and the shoulders
            end = local[UNITY_BONES.index("Neck")]
        grouped: dict[str, list] = {}
        for mat, part in bone_parts(name, end, by_name):
            grouped.setdefault(mat, []).append(part)
        node = {"name": name, "translation": local[b].round(6).tolist()}
        if kids:
            node["children"] = [c + 1 for c in kids]  # bone b is node b + 1
        if grouped:  # rigid parts on the bone node itself: they follow their bone
            node["mesh"] = len(meshes)
            meshes.append({"name": name, "primitives": [glb.primitive(names.index(m), grouped[m]) for m in names if m in grouped]})
        nodes.append(node)
    human_bones = {name[0].lower() + name[1:]: {"node": b + 1} for b, name in enumerate(UNITY_BONES)}
    gltf = {
        "asset": {"version": "2.0", "generator": "transflower-live scripts/make_default_vrm.py"},
        "extensionsUsed": ["VRMC_vrm"], "scene": 0, "scenes": [{"nodes": [0]}], "nodes": nodes, "meshes": meshes,
        "materials": materials, "accessors": glb.accessors, "bufferViews": glb.views,
        "buffers": [{"byteLength": len(glb.blob)}],
        "extensions": {"VRMC_vrm": {
            "specVersion": "1.0",
            "meta": {"name": "transflower dancer", "version": "2", "authors": ["transflower-live"],
                     "licenseUrl": "https://vrm.dev/licenses/1.0/", "avatarPermission": "everyone",
                     "commercialUsage": "corporation", "allowRedistribution": True, "modification": "allowModificationRedistribution",
                     "creditNotation": "unnecessary"},
            "humanoid": {"humanBones": human_bones},
        }},
    }
    return _glb_bytes(gltf, glb.blob)


def _glb_bytes(gltf: dict, blob: bytearray) -> bytes:
    js = json.dumps(gltf, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    blob = bytes(blob) + b"\0" * (-len(blob) % 4)
    out = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(js) + 8 + len(blob))
    out += struct.pack("<I4s", len(js), b"JSON") + js
    return out + struct.pack("<I4s", len(blob), b"BIN\x00") + blob


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    data = build()
    write_bytes_atomic(out, data)
    print(f"wrote {out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
