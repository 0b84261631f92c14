"""BVH export of a motion: the 22-joint HumanML3D skeleton with its bone offsets, the root
trajectory and a rotation per joint, for Blender, MotionBuilder or any BVH reader.

The file is in metres with Y up and 20 frames per second (HumanML3D's frame rate), so Blender's
BVH importer with its defaults (scale 1, up Y, forward -Z) shows the motion at the right size and
speed. Rotation channels are Zrotation Xrotation Yrotation in degrees: a joint turns its children
by Rz·Rx·Ry, the common order of mocap BVH files.

How rotations come from positions (atom.motion.ik, shared with the SMPL export and the renderer).
The rest pose puts each bone along the direction HumanML3D's skeleton gives it (legs down, spine
up, arms down), with the bone's mean length over the motion; the children of the pelvis and the
upper spine keep the layout they have in the motion. Each joint's rotation is then solved from
the positions frame by frame. Playing the BVH back (forward kinematics) reproduces the joints up
to the small changes of bone length within the motion; the tests hold the error to a stated bound.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from atom.motion.ik import local_rotations, solve_rotations
from atom.motion.record import validate_joints
from atom.motion.skeleton import FPS, JOINT_NAMES, NUM_JOINTS, PARENTS, RAW_OFFSETS

CHILDREN = tuple(tuple(c for c, p in enumerate(PARENTS) if p == j) for j in range(NUM_JOINTS))


def _depth_first(j: int = 0) -> list[int]:
    return [j] + [k for c in CHILDREN[j] for k in _depth_first(c)]


# The order joints appear in the HIERARCHY, which is the order of their channels in each frame.
FILE_ORDER = tuple(_depth_first())
END_SITE_M = 0.05  # length of the end-site stub drawn past each leaf joint


def rest_offsets(joints: np.ndarray, rounds: int = 3) -> np.ndarray:
    """(22, 3) offset of each joint from its parent in the rest pose (the root's is zero).

    A bone that is its parent's only child points the way HumanML3D's skeleton points it (legs
    down, spine up, arms down), with its mean length over the motion. The children of a joint with
    several (hips and lower spine at the pelvis; neck and collars at the upper spine) keep the
    layout they have in the motion: their mean offsets in the parent's own fitted frame, refined
    over a few rounds of fitting, since that frame is itself fitted to them."""
    directions = np.asarray(RAW_OFFSETS, dtype=np.float64)
    offsets = np.zeros((NUM_JOINTS, 3))
    for c, p in enumerate(PARENTS):
        if p >= 0:
            length = np.linalg.norm(joints[:, c] - joints[:, p], axis=-1).mean()
            offsets[c] = directions[c] / np.linalg.norm(directions[c]) * length
    branching = [j for j in range(NUM_JOINTS) if len(CHILDREN[j]) > 1]
    for j in branching:  # start from the first frame's layout
        kids = list(CHILDREN[j])
        offsets[kids] = joints[0, kids] - joints[0, j]
    for _ in range(rounds):
        world = solve_rotations(joints, offsets, PARENTS)
        for j in branching:
            kids = list(CHILDREN[j])
            # Each frame's child offsets taken back into the parent's rest frame (R^T v), averaged.
            now = joints[:, kids] - joints[:, j : j + 1]
            offsets[kids] = np.einsum("tji,tcj->tci", world[:, j], now).mean(axis=0)
    return offsets


def _hierarchy(offsets: np.ndarray) -> list[str]:
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        kind = "ROOT" if PARENTS[j] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {offsets[j, 0]:.6f} {offsets[j, 1]:.6f} {offsets[j, 2]:.6f}")
        channels = "Xposition Yposition Zposition " if PARENTS[j] < 0 else ""
        lines.append(f"{pad}  CHANNELS {6 if PARENTS[j] < 0 else 3} {channels}Zrotation Xrotation Yrotation")
        for c in CHILDREN[j]:
            joint(c, depth + 1)
        if not CHILDREN[j]:
            stub = np.asarray(RAW_OFFSETS[j], dtype=np.float64)
            stub = stub / (np.linalg.norm(stub) or 1.0) * END_SITE_M
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {stub[0]:.6f} {stub[1]:.6f} {stub[2]:.6f}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    joint(0, 0)
    return lines


def joints_to_bvh(joints: np.ndarray, fps: int = FPS) -> str:
    """The BVH text of a motion given as joint positions (T, 22, 3), metres, Y up."""
    joints = validate_joints(joints).astype(np.float64)
    offsets = rest_offsets(joints)
    local = local_rotations(solve_rotations(joints, offsets, PARENTS), PARENTS)
    # Intrinsic Z, X, Y in that order: R = Rz Rx Ry, matching the channel order written above.
    euler = np.degrees(Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler("ZXY")).reshape(len(joints), NUM_JOINTS, 3)
    lines = _hierarchy(offsets)
    lines += ["MOTION", f"Frames: {len(joints)}", f"Frame Time: {1.0 / fps:.6f}"]
    for t in range(len(joints)):
        values = [*joints[t, 0]] + [v for j in FILE_ORDER for v in euler[t, j]]
        lines.append(" ".join(f"{v:.6f}" for v in values))
    return "\n".join(lines) + "\n"
