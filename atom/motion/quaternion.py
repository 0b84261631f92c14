"""Quaternion helpers in pure numpy, (w, x, y, z) order, broadcasting over leading axes.

Only what the HumanML3D representation needs: products, inverses, rotating vectors, the
shortest-arc rotation between two directions, and conversions to and from rotation matrices and
the continuous 6-D representation (the first two matrix columns, concatenated).
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def qnormalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / np.maximum(norm, _EPS)


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (its conjugate)."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4): v + 2 (w (u x v) + u x (u x v))."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    uv = np.cross(u, v)
    return v + 2.0 * (w * uv + np.cross(u, uv))


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternion rotating direction v0 onto direction v1.

    Zero-length inputs give the identity. Opposite directions have no unique shortest arc; a
    half turn about an axis perpendicular to v0 is returned, so the result is always finite.
    """
    v0 = np.asarray(v0, dtype=np.float64)
    v1 = np.asarray(v1, dtype=np.float64)
    v0, v1 = np.broadcast_arrays(v0, v1)
    n0 = np.linalg.norm(v0, axis=-1, keepdims=True)
    n1 = np.linalg.norm(v1, axis=-1, keepdims=True)
    a = v0 / np.maximum(n0, _EPS)
    b = v1 / np.maximum(n1, _EPS)
    w = 1.0 + np.sum(a * b, axis=-1, keepdims=True)
    q = np.concatenate([w, np.cross(a, b)], axis=-1)

    opposite = (w[..., 0] < 1e-9) & (n0[..., 0] > _EPS) & (n1[..., 0] > _EPS)
    if np.any(opposite):
        # Perpendicular axis: cross with whichever basis vector is least aligned with v0.
        a_opp = a[opposite]
        basis = np.eye(3)[np.argmin(np.abs(a_opp), axis=-1)]
        axis = np.cross(a_opp, basis)
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        q[opposite] = np.concatenate([np.zeros((len(axis), 1)), axis], axis=-1)

    degenerate = (n0[..., 0] <= _EPS) | (n1[..., 0] <= _EPS)
    if np.any(degenerate):
        q[degenerate] = np.array([1.0, 0.0, 0.0, 0.0])
    return qnormalize(q)


def qyaw(angle: np.ndarray) -> np.ndarray:
    """Rotation by `angle` radians about +Y (right-handed)."""
    half = 0.5 * np.asarray(angle, dtype=np.float64)
    zeros = np.zeros_like(half)
    return np.stack([np.cos(half), zeros, np.sin(half), zeros], axis=-1)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    q = qnormalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to unit quaternions with w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four candidate solutions; pick per element the one with the largest (best conditioned) pivot.
    cands = np.stack(
        [
            np.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], axis=-1),
            np.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], axis=-1),
            np.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], axis=-1),
            np.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], axis=-1),
        ],
        axis=-2,
    )
    pivots = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = np.argmax(pivots, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = qnormalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def matrix_to_cont6d(m: np.ndarray) -> np.ndarray:
    """First two columns of each rotation matrix, concatenated: (..., 3, 3) -> (..., 6)."""
    m = np.asarray(m, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    return matrix_to_cont6d(quat_to_matrix(q))


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """Gram-Schmidt on the two stored columns; the third is their cross product."""
    d6 = np.asarray(d6, dtype=np.float64)
    a, b = d6[..., :3], d6[..., 3:]
    c0 = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), _EPS)
    b = b - np.sum(c0 * b, axis=-1, keepdims=True) * c0
    c1 = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), _EPS)
    c2 = np.cross(c0, c1)
    return np.stack([c0, c1, c2], axis=-1)


def cont6d_to_quat(d6: np.ndarray) -> np.ndarray:
    return matrix_to_quat(cont6d_to_matrix(d6))
