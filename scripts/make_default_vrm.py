"""Write the preview's default avatar, bridge/preview/default_avatar.vrm: a box-limbed VRM 1.0 humanoid.

    python scripts/make_default_vrm.py [OUT.vrm]

A glTF 2.0 binary (GLB) with the VRMC_vrm extension: 22 humanoid bone nodes in a T-pose facing +Z (the VRM 1.0
rest: no node rotations), proportioned like the synthetic dancer of transflower.bridge.retarget, and one rigid box mesh per
bone (no skinning), coloured left (blue) / right (orange) / centre (grey) like the skeleton view. Deterministic:
the same bytes every run, so the committed file only changes when this script does.
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
COLORS = {"left": (0.21, 0.77, 0.94), "right": (1.0, 0.55, 0.10), "centre": (0.78, 0.78, 0.80)}
# box half-sizes across the bone (m), and boxes for bones whose extent is not the way to a child
THICK = {"Hips": 0.11, "Spine": 0.10, "Chest": 0.12, "UpperChest": 0.12, "Neck": 0.04, "Head": 0.09,
         "Shoulder": 0.04, "UpperArm": 0.045, "LowerArm": 0.04, "Hand": 0.035, "UpperLeg": 0.065,
         "LowerLeg": 0.05, "Foot": 0.045, "Toes": 0.04}


def thickness(name: str) -> float:
    for k, v in THICK.items():
        if name.endswith(k):
            return v
    return 0.05


def box(lo, hi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (24, 3), normals (24, 3), indices (36,) of an axis-aligned box (outward faces, CCW)."""
    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    pos, nrm, idx = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            n = np.zeros(3, np.float32)
            n[axis] = sign
            u, v = (axis + 1) % 3, (axis + 2) % 3
            corners = []
            for a, b in ((0, 0), (1, 0), (1, 1), (0, 1)):
                p = np.where(n > 0, hi, np.where(n < 0, lo, 0)).astype(np.float32)
                p[u] = (lo, hi)[a][u]
                p[v] = (lo, hi)[b][v]
                corners.append(p)
            if sign < 0:
                corners = corners[::-1]
            base = len(pos)
            pos += corners
            nrm += [n] * 4
            idx += [base, base + 1, base + 2, base, base + 2, base + 3]
    return np.array(pos, np.float32), np.array(nrm, np.float32), np.array(idx, np.uint16)


def build(leg: float = 1.0, arm: float = 1.0, torso: float = 1.0) -> bytes:
    """The GLB bytes; ``leg``, ``arm``, ``torso`` scale those bones (tests build avatars of other proportions)."""
    r = HumanoidRetarget(synthetic_tpose_skeleton())
    local = from_unity_position(r.bone_positions) / 100.0  # glTF = our frame (right-handed, +Z forward), metres
    B = len(UNITY_BONES)
    for b, name in enumerate(UNITY_BONES):
        is_leg = any(name.endswith(k) for k in ("UpperLeg", "LowerLeg", "Foot", "Toes"))
        is_arm = any(name.endswith(k) for k in ("LowerArm", "Hand", "UpperArm"))
        local[b] *= leg if is_leg else arm if is_arm else torso
    # the Hips stand at the height that puts the toes joint on the floor
    y, b = 0.0, UNITY_BONES.index("LeftToes")
    while b > 0:
        y += local[b][1]
        b = UNITY_PARENTS[b]
    local[0] = (0.0, -y, 0.0)
    local = local + 0.0
    world = np.zeros((B, 3))
    for b in range(B):
        world[b] = local[b] + (world[UNITY_PARENTS[b]] if UNITY_PARENTS[b] >= 0 else 0.0)
    children = {b: [c for c in range(B) if UNITY_PARENTS[c] == b] for b in range(B)}

    blob = bytearray()
    views, accessors, meshes = [], [], []

    def add(data: np.ndarray, target: int, ctype: int, atype: str, minmax: bool = False) -> int:
        while len(blob) % 4:
            blob.append(0)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": data.nbytes, "target": target})
        blob.extend(data.tobytes())
        acc = {"bufferView": len(views) - 1, "componentType": ctype, "count": int(len(data)), "type": atype}
        if minmax:
            acc["min"] = data.min(axis=0).astype(float).round(6).tolist()
            acc["max"] = data.max(axis=0).astype(float).round(6).tolist()
        accessors.append(acc)
        return len(accessors) - 1

    materials = []
    mat_index = {}
    for side, rgb in COLORS.items():
        mat_index[side] = len(materials)
        materials.append({"name": side, "pbrMetallicRoughness": {"baseColorFactor": [*rgb, 1.0], "metallicFactor": 0.0,
                                                                 "roughnessFactor": 0.8}})
    nodes = []
    for b, name in enumerate(UNITY_BONES):
        t = thickness(name)
        kids = children[b]
        if name == "Head":
            lo, hi = (-t, 0.0, -t), (t, 0.24, t)
        elif name.endswith("Hand"):
            s = 1.0 if name.startswith("Left") else -1.0
            x0, x1 = sorted([0.0, 0.16 * s])
            lo, hi = (x0, -0.02, -0.045), (x1, 0.02, 0.045)
        elif name.endswith("Toes"):
            lo, hi = (-t, 0.0, -0.01), (t, 0.03, 0.06)
        elif name.endswith("Foot"):  # ankle down to the sole, heel to the toes joint
            lo, hi = (-t, -0.06, -0.06), (t, 0.03, 0.14)
        elif name == "Hips":
            lo, hi = (-t * 1.1, -0.08, -0.09), (t * 1.1, 0.08, 0.09)
        else:
            end = local[kids[0]] if len(kids) == 1 else np.mean([local[c] for c in kids], axis=0) if kids else np.zeros(3)
            if name in ("Spine", "Chest", "UpperChest"):
                lo, hi = (-0.13, 0.0, -0.09), (0.13, max(float(end[1]), 0.06), 0.09)
            else:
                lo = np.minimum(0.0, end) - t
                hi = np.maximum(0.0, end) + t
                lo[end != 0] = np.minimum(0.0, end)[end != 0]
                hi[end != 0] = np.maximum(0.0, end)[end != 0]
        pos, nrm, idx = box(lo, hi)
        side = "left" if name.startswith("Left") else "right" if name.startswith("Right") else "centre"
        prim = {"attributes": {"POSITION": add(pos, 34962, 5126, "VEC3", True), "NORMAL": add(nrm, 34962, 5126, "VEC3")},
                "indices": add(idx, 34963, 5123, "SCALAR"), "material": mat_index[side]}
        meshes.append({"name": name, "primitives": [prim]})
        nodes.append({"name": name, "translation": local[b].round(6).tolist(), "children": [], "mesh": b})
    # meshes sit on the bone nodes themselves (rigid parts that follow their bone); bone b is node b + 1
    all_nodes = [{"name": "Root", "children": [1]}] + nodes
    for b in range(B):
        if children[b]:
            all_nodes[b + 1]["children"] = [c + 1 for c in children[b]]
        else:
            del all_nodes[b + 1]["children"]
    human_bones = {name[0].lower() + name[1:]: {"node": b + 1} for b, name in enumerate(UNITY_BONES)}
    gltf = {
        "asset": {"version": "2.0", "generator": "transflower-live scripts/make_default_vrm.py"},
        "extensionsUsed": ["VRMC_vrm"],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": all_nodes,
        "meshes": meshes,
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
        "extensions": {"VRMC_vrm": {
            "specVersion": "1.0",
            "meta": {"name": "transflower box dancer", "version": "1", "authors": ["transflower-live"],
                     "licenseUrl": "https://vrm.dev/licenses/1.0/", "avatarPermission": "everyone",
                     "commercialUsage": "corporation", "allowRedistribution": True, "modification": "allowModificationRedistribution",
                     "creditNotation": "unnecessary"},
            "humanoid": {"humanBones": human_bones},
        }},
    }
    js = json.dumps(gltf, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    while len(blob) % 4:
        blob.append(0)
    out = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(js) + 8 + len(blob))
    out += struct.pack("<I4s", len(js), b"JSON") + js
    out += struct.pack("<I4s", len(blob), b"BIN\x00") + bytes(blob)
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    data = build()
    write_bytes_atomic(out, data)
    print(f"wrote {out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
