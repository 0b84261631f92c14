"""Joint rotations from joint positions (analytic inverse kinematics), the one solver behind the
BVH export, the SMPL-parameter export and the renderer's SMPL mesh.

Given a rest pose (each joint's offset from its parent) and target positions, walk the kinematic
tree from the root and give every joint a world rotation:

- a joint with one child takes the smallest rotation that turns the bone to that child, as its
  parent's rotation already carries it, onto the target bone. Twist about a bone cannot be seen in
  positions, so it is inherited from the parent instead of drifting (HumanML3D's own inverse
  kinematics makes the same choice);
- a joint with several children (the pelvis, the upper spine) takes the rotation that best fits
  all its child bones at once: the least-squares rotation of their unit directions (Kabsch). Unit
  directions, because the rest pose may come from another body (SMPL) whose bones are not the
  motion's lengths;
- a joint with no child that has a target (a leaf, or SMPL's wrists whose hands are not in the
  motion) keeps its parent's rotation: a local rotation of identity, the rest pose.

Played back with the same rest directions this reproduces every bone's direction exactly, and the
positions too where the bone lengths agree (tests/motion/test_ik.py).

Rotations are (..., 3, 3) matrices acting on column vectors; `parents` lists each joint's parent
(-1 for the root), every parent before its children.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def offsets_from_positions(rest: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """(J, 3) offset of each rest joint from its parent (zero for the root)."""
    rest = np.asarray(rest, np.float64)
    offsets = np.zeros_like(rest)
    for c, p in enumerate(parents):
        if p >= 0:
            offsets[c] = rest[c] - rest[p]
    return offsets


def _unit(v: np.ndarray) -> np.ndarray:
    # A zero-length bone (two joints at one place) stays a zero vector, which both solvers below
    # turn into "no rotation" rather than NaN.
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3) smallest rotations taking unit vectors a onto unit vectors b (both (T, 3))."""
    v = np.cross(a, b)
    c = np.einsum("ti,ti->t", a, b)
    vx = np.zeros(a.shape[:1] + (3, 3))
    vx[:, 0, 1], vx[:, 0, 2], vx[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    vx[:, 1, 0], vx[:, 2, 0], vx[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    opposite = c < -1 + 1e-6
    # Rodrigues' formula in the form R = I + [v]x + [v]x^2 / (1 + cos): exact for unit vectors.
    rot = np.eye(3) + vx + (vx @ vx) / np.where(opposite, 1.0, 1.0 + c)[:, None, None]
    if opposite.any():
        # Opposite vectors: the smallest rotation is a half turn, about any axis perpendicular to a.
        helper = np.where(np.abs(a[opposite, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        axis = _unit(np.cross(a[opposite], helper))
        rot[opposite] = 2 * axis[:, :, None] * axis[:, None, :] - np.eye(3)
    return rot


def _kabsch(rest: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations R minimising sum_c |R rest_c - target_c|^2; rest (C, 3), target (T, C, 3)."""
    h = np.einsum("ci,tcj->tij", rest, target)
    u, _, vt = np.linalg.svd(h)
    v, ut = np.transpose(vt, (0, 2, 1)), np.transpose(u, (0, 2, 1))
    fix = np.broadcast_to(np.eye(3), h.shape).copy()
    fix[:, 2, 2] = np.sign(np.linalg.det(v @ ut))  # a rotation, never a reflection
    return v @ fix @ ut


def solve_rotations(joints: np.ndarray, offsets: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """(T, J, 3, 3) world rotation of each joint's frame, fitted to target positions.

    joints: (T, K, 3) targets for the first K joints of the tree; offsets: (J, 3) rest offsets
    (J >= K; joints K..J-1 have no target and are left at rest relative to their parents)."""
    joints = np.asarray(joints, np.float64)
    offsets = np.asarray(offsets, np.float64)
    T, K = joints.shape[:2]
    J = len(parents)
    children = [[c for c in range(K) if parents[c] == j] for j in range(J)]
    world = np.zeros((T, J, 3, 3))
    for j in range(J):
        parent = world[:, parents[j]] if parents[j] >= 0 else np.broadcast_to(np.eye(3), (T, 3, 3))
        kids = children[j]
        if len(kids) > 1:
            world[:, j] = _kabsch(_unit(offsets[kids]), _unit(joints[:, kids] - joints[:, j : j + 1]))
        elif kids:
            c = kids[0]
            carried = parent @ _unit(offsets[c])
            world[:, j] = _align(_unit(carried), _unit(joints[:, c] - joints[:, j])) @ parent
        else:
            world[:, j] = parent
    return world


def local_rotations(world: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """Each joint's rotation relative to its parent's frame (the root's is its world rotation)."""
    local = world.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            local[:, j] = np.swapaxes(world[:, p], -1, -2) @ world[:, j]
    return local


def world_rotations(local: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """The inverse of local_rotations: compose each joint's rotation with its ancestors'."""
    world = local.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            world[:, j] = world[:, p] @ local[:, j]
    return world


def forward_kinematics(root: np.ndarray, offsets: np.ndarray, world: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """(T, J, 3) joint positions from the root path (T, 3), rest offsets (J, 3) and world rotations."""
    pos = np.zeros(world.shape[:2] + (3,))
    pos[:, 0] = root
    for c, p in enumerate(parents):
        if p >= 0:
            pos[:, c] = pos[:, p] + world[:, p] @ offsets[c]
    return pos
