"""The HumanML3D 263-dim motion features: joints -> features, features -> joints, normalisation.

Layout (HumanML3D's motion representation, github.com/EricGuo5513/HumanML3D), one row per pair of
consecutive frames (T joint frames -> T-1 rows):

    0        root yaw rate, half angle: arcsin of the y part of r_{t+1} r_t^-1
    1:3      root XZ velocity, rotated into the facing frame of frame t+1
    3        root height
    4:67     joints 1..21: XZ relative to the root, absolute Y, rotated to face +Z
    67:193   6-D rotations of joints 1..21 (IK on the RAW_OFFSETS rest directions)
    193:259  velocities of all 22 joints, in the facing frame of frame t
    259:263  foot contacts: L ankle, L foot, R ankle, R foot

Two deliberate differences from the HumanML3D scripts, both so that recovery is exact:
- The facing rotation is re-anchored so frame 0 is exactly the identity (r_t <- s_t s_0^-1 for the
  smoothed facing rotations s_t). HumanML3D instead overwrites frame 0 with the identity, which
  leaves a small jump between frames 0 and 1; yaw rates are unchanged by the anchoring.
- The facing direction sums (right - left) across both hips and shoulders. HumanML3D's IK unpacks
  the face joints in a different order, so its hip term points the other way; its canonicalisation
  uses the sum as here.
No skeleton retargeting (HumanML3D's uniform_skeleton) is done: bone lengths are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from atom.motion import quaternion as Q
from atom.motion.record import MotionFormatError, validate_joints
from atom.motion.skeleton import (
    FACE_JOINTS,
    FEATURE_DIM,
    FOOT_CONTACT_THRESHOLD,
    KINEMATIC_CHAINS,
    LEFT_FOOT_JOINTS,
    NUM_JOINTS,
    RAW_OFFSETS,
    RIGHT_FOOT_JOINTS,
)

# HumanML3D smooths the facing direction with a Gaussian of sigma 20 frames (1 s at 20 fps).
HUMANML3D_FACING_SIGMA = 20.0

# Feature groups, in layout order. The released Std.npy holds one pooled value per group.
FEATURE_GROUPS: tuple[tuple[str, slice], ...] = (
    ("root_rot_vel", slice(0, 1)),
    ("root_lin_vel", slice(1, 3)),
    ("root_y", slice(3, 4)),
    ("ric", slice(4, 67)),
    ("rot6d", slice(67, 193)),
    ("local_vel", slice(193, 259)),
    ("foot_contact", slice(259, 263)),
)
# Groups whose pooled std is divided by the feature bias (5) in the released statistics, which
# weights them up after normalisation.
BIASED_GROUPS = ("root_rot_vel", "root_lin_vel", "root_y", "foot_contact")

_UP = np.array([0.0, 1.0, 0.0])
_FORWARD = np.array([0.0, 0.0, 1.0])


# --------------------------------------------------------------------------------------------
# joints -> features


def _as_joints64(joints: np.ndarray) -> np.ndarray:
    return validate_joints(joints).astype(np.float64)


def facing_directions(joints: np.ndarray) -> np.ndarray:
    """Unit horizontal facing direction per frame, (T, 22, 3) -> (T, 3).

    Facing is perpendicular (in the floor plane) to the summed right-to-left vectors across the
    hips and the shoulders. Frames where that vector is vertical or zero borrow the nearest
    well-defined frame's facing (+Z if there is none).
    """
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    joints = np.asarray(joints, dtype=np.float64)
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, r_sdr] - joints[:, l_sdr])
    forward = np.cross(_UP, across)
    forward[:, 1] = 0.0
    return _normalize_or_fill(forward)


def _normalize_or_fill(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1)
    ok = norm > 1e-8
    if not np.any(ok):
        return np.tile(_FORWARD, (len(vectors), 1))
    out = np.zeros_like(vectors)
    out[ok] = vectors[ok] / norm[ok, None]
    if not np.all(ok):
        good = np.flatnonzero(ok)
        # Nearest good frame for each bad one.
        pos = np.clip(np.searchsorted(good, np.arange(len(vectors))), 0, len(good) - 1)
        prev = np.clip(pos - 1, 0, len(good) - 1)
        idx = np.arange(len(vectors))
        nearest = np.where(np.abs(good[prev] - idx) <= np.abs(good[pos] - idx), good[prev], good[pos])
        out[~ok] = out[nearest[~ok]]
    return out


def canonicalize(joints: np.ndarray) -> np.ndarray:
    """Put a motion in the HumanML3D frame: lowest joint of the clip on y = 0, first-frame root XZ
    at the origin, first frame facing +Z. (T, 22, 3) -> (T, 22, 3) float32.

    The floor is the lowest joint over the whole clip, as HumanML3D does; for standing motions
    that is a foot.
    """
    pos = _as_joints64(joints)
    return _canonicalize64(pos).astype(np.float32)


def _canonicalize64(pos: np.ndarray) -> np.ndarray:
    pos = pos.copy()
    pos[..., 1] -= pos[..., 1].min()
    pos[..., 0] -= pos[0, 0, 0]
    pos[..., 2] -= pos[0, 0, 2]
    return Q.qrot(_turn_to_plus_z(facing_directions(pos[:1]))[0], pos)


def _turn_to_plus_z(forward: np.ndarray) -> np.ndarray:
    """Yaw quaternions turning horizontal directions (T, 3) onto +Z. Written as a yaw rather
    than a shortest arc so a direction facing exactly -Z still gives a rotation about Y."""
    return Q.qyaw(-np.arctan2(forward[:, 0], forward[:, 2]))


def root_rotations(pos: np.ndarray, facing_sigma: float = HUMANML3D_FACING_SIGMA) -> np.ndarray:
    """Per-frame yaw quaternions r_t that turn the world so frame t faces +Z, with r_0 = identity.

    `pos` must already be canonical. The facing is smoothed over time with a Gaussian of
    `facing_sigma` frames (0 = no smoothing) and then re-anchored on frame 0.
    """
    forward = facing_directions(pos)
    if facing_sigma > 0 and len(forward) > 1:
        from scipy.ndimage import gaussian_filter1d

        forward = gaussian_filter1d(forward, float(facing_sigma), axis=0, mode="nearest")
        forward[:, 1] = 0.0
        forward = _normalize_or_fill(forward)
    rot = _turn_to_plus_z(forward)
    return Q.qmul(rot, Q.qinv(rot[:1]))


def inverse_kinematics(pos: np.ndarray, root_rot: np.ndarray) -> np.ndarray:
    """HumanML3D-style IK: per-joint local quaternions (T, 22, 4) from positions.

    Each bone's global rotation is the shortest arc taking its RAW_OFFSETS rest direction onto its
    current direction; the quaternion stored at a joint is that rotation relative to the previous
    bone of the same chain (the root rotation for the first bone of each chain). Twist about a
    bone is not observable from positions and is zero.
    """
    offsets = np.asarray(RAW_OFFSETS, dtype=np.float64)
    quats = np.zeros(pos.shape[:-1] + (4,))
    quats[:, 0] = root_rot
    for chain in KINEMATIC_CHAINS:
        parent_rot = root_rot
        for parent, child in zip(chain[:-1], chain[1:]):
            bone_rot = Q.qbetween(np.broadcast_to(offsets[child], pos[:, child].shape), pos[:, child] - pos[:, parent])
            quats[:, child] = Q.qmul(Q.qinv(parent_rot), bone_rot)
            parent_rot = bone_rot
    return quats


def foot_contacts(pos: np.ndarray, threshold: float = FOOT_CONTACT_THRESHOLD) -> np.ndarray:
    """(T, 22, 3) -> (T-1, 4) contacts for L ankle, L foot, R ankle, R foot: 1 where the squared
    per-frame displacement is below `threshold`."""
    feet = list(LEFT_FOOT_JOINTS) + list(RIGHT_FOOT_JOINTS)
    disp2 = np.sum((pos[1:, feet] - pos[:-1, feet]) ** 2, axis=-1)
    return (disp2 < threshold).astype(np.float64)


def joints_to_features(joints: np.ndarray, facing_sigma: float = HUMANML3D_FACING_SIGMA) -> np.ndarray:
    """Joint positions (T, 22, 3), any placement, metres, Y up -> HumanML3D features (T-1, 263)
    float32. The motion is canonicalised first."""
    pos = _canonicalize64(_as_joints64(joints))
    t = len(pos)
    rot = root_rotations(pos, facing_sigma)

    rel = Q.qmul(rot[1:], Q.qinv(rot[:-1]))
    # q and -q are the same rotation; w >= 0 keeps the half angle within +-90 deg so arcsin of
    # the y part is the exact increment that the recovery integrates.
    rel = np.where(rel[:, :1] < 0, -rel, rel)
    yaw_rate = np.arcsin(np.clip(rel[:, 2], -1.0, 1.0))

    root_vel = Q.qrot(rot[1:], pos[1:, 0] - pos[:-1, 0])[:, [0, 2]]
    root_y = pos[:-1, 0, 1]

    local = pos.copy()
    local[..., 0] -= pos[:, :1, 0]
    local[..., 2] -= pos[:, :1, 2]
    ric = Q.qrot(rot[:, None], local)[:-1, 1:].reshape(t - 1, -1)

    rot6d = Q.quat_to_cont6d(inverse_kinematics(pos, rot)[:-1, 1:]).reshape(t - 1, -1)
    local_vel = Q.qrot(rot[:-1, None], pos[1:] - pos[:-1]).reshape(t - 1, -1)
    contacts = foot_contacts(pos)

    feats = np.concatenate([yaw_rate[:, None], root_vel, root_y[:, None], ric, rot6d, local_vel, contacts], axis=-1)
    assert feats.shape == (t - 1, FEATURE_DIM)
    return feats.astype(np.float32)


# --------------------------------------------------------------------------------------------
# features -> joints


def _check_features(features, what: str = "features") -> None:
    shape = tuple(features.shape)
    if len(shape) < 2 or shape[-1] != FEATURE_DIM:
        raise MotionFormatError(
            f"{what} must have shape (..., N, {FEATURE_DIM}), got {shape}; pass un-normalised "
            f"HumanML3D feature rows (denormalize model outputs first)"
        )
    if shape[-2] < 1:
        raise MotionFormatError(f"{what} hold no frames (shape {shape})")


def features_to_joints(features: np.ndarray) -> np.ndarray:
    """Recover joint positions from (un-normalised) features: (..., N, 263) -> (..., N, 22, 3)
    float32. Uses dims 0..66 only (root and joint positions)."""
    f = np.asarray(features)
    _check_features(f)
    if not np.all(np.isfinite(f)):
        raise MotionFormatError("features contain NaN or infinite values")
    f = f.astype(np.float64)

    theta = np.zeros(f.shape[:-1])
    theta[..., 1:] = np.cumsum(f[..., :-1, 0], axis=-1)
    inv_rot = Q.qinv(Q.qyaw(2.0 * theta))  # qyaw takes the full angle; theta is the half angle

    vel = np.zeros(f.shape[:-1] + (3,))
    vel[..., 1:, 0] = f[..., :-1, 1]
    vel[..., 1:, 2] = f[..., :-1, 2]
    root = np.cumsum(Q.qrot(inv_rot, vel), axis=-2)
    root[..., 1] = f[..., 3]

    local = f[..., 4:67].reshape(f.shape[:-1] + (NUM_JOINTS - 1, 3))
    local = Q.qrot(inv_rot[..., None, :], local)
    local[..., 0] += root[..., None, 0]
    local[..., 2] += root[..., None, 2]
    return np.concatenate([root[..., None, :], local], axis=-2).astype(np.float32)


def features_to_joints_torch(features):
    """Batched torch version of features_to_joints: (..., N, 263) -> (..., N, 22, 3), same dtype
    and device as the input, differentiable."""
    import torch

    _check_features(features)
    f = features
    zeros = torch.zeros_like(f[..., :1, 0])
    theta = torch.cat([zeros, torch.cumsum(f[..., :-1, 0], dim=-1)], dim=-1)
    # Inverse of (cos t, 0, sin t, 0) is (cos t, 0, -sin t, 0).
    w = torch.cos(theta)
    uy = -torch.sin(theta)

    def rotate(v, w, uy):
        # v + 2 (w (u x v) + u x (u x v)) with u = (0, uy, 0), written out per component.
        vx, vy, vz = v.unbind(-1)
        cx, cz = uy * vz, -uy * vx  # u x v
        ccx, ccz = uy * cz, -uy * cx  # u x (u x v)
        return torch.stack([vx + 2 * (w * cx + ccx), vy, vz + 2 * (w * cz + ccz)], dim=-1)

    vx = torch.cat([zeros, f[..., :-1, 1]], dim=-1)
    vz = torch.cat([zeros, f[..., :-1, 2]], dim=-1)
    vel = rotate(torch.stack([vx, torch.zeros_like(vx), vz], dim=-1), w, uy)
    root = torch.cumsum(vel, dim=-2)
    root = torch.stack([root[..., 0], f[..., 3], root[..., 2]], dim=-1)

    local = f[..., 4:67].reshape(f.shape[:-1] + (NUM_JOINTS - 1, 3))
    local = rotate(local, w[..., None], uy[..., None])
    offset = torch.stack([root[..., 0], torch.zeros_like(root[..., 0]), root[..., 2]], dim=-1)
    local = local + offset[..., None, :]
    return torch.cat([root[..., None, :], local], dim=-2)


def round_trip_error(joints: np.ndarray, facing_sigma: float = HUMANML3D_FACING_SIGMA) -> float:
    """Largest per-joint distance (metres) between features_to_joints(joints_to_features(j)) and
    canonicalize(j)[:-1]. Use it to check that any motion source survives the representation."""
    recovered = features_to_joints(joints_to_features(joints, facing_sigma)).astype(np.float64)
    expected = canonicalize(joints)[:-1].astype(np.float64)
    return float(np.max(np.linalg.norm(recovered - expected, axis=-1)))


# --------------------------------------------------------------------------------------------
# normalisation


@dataclass
class MeanStd:
    """Per-dimension normalisation statistics (HumanML3D Mean.npy / Std.npy)."""

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float32).copy()
        self.std = np.asarray(self.std, dtype=np.float32).copy()
        for name, arr in (("mean", self.mean), ("std", self.std)):
            if arr.shape != (FEATURE_DIM,):
                raise MotionFormatError(f"{name} must have shape ({FEATURE_DIM},), got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise MotionFormatError(f"{name} contains NaN or infinite values")
        if np.any(self.std <= 0):
            bad = np.flatnonzero(self.std <= 0)[:5].tolist()
            raise MotionFormatError(
                f"std must be positive everywhere, got {self.std[bad].tolist()} at dims {bad}; "
                f"recompute it with compute_mean_std (which guards constant features)"
            )


def compute_mean_std(feature_arrays: Iterable[np.ndarray], feature_bias: float = 5.0, min_std: float = 1e-8) -> MeanStd:
    """Mean per dim and std pooled per feature group, like the released HumanML3D statistics.

    The per-dim population std is averaged within each group; the root groups and the foot
    contacts are then divided by `feature_bias`. A group that does not vary at all (pooled std
    below `min_std`) gets std 1 so normalising it cannot divide by zero. Arrays are streamed
    (Chan's pairwise update), so the whole data set need not fit in memory at once.
    """
    count = 0
    mean = np.zeros(FEATURE_DIM)
    m2 = np.zeros(FEATURE_DIM)
    for i, arr in enumerate(feature_arrays):
        a = np.asarray(arr)
        if a.ndim != 2 or a.shape[1] != FEATURE_DIM:
            raise MotionFormatError(f"feature array {i} must have shape (N, {FEATURE_DIM}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise MotionFormatError(f"feature array {i} contains NaN or infinite values")
        n = len(a)
        if n == 0:
            continue
        a = a.astype(np.float64)
        a_mean = a.mean(axis=0)
        a_m2 = ((a - a_mean) ** 2).sum(axis=0)
        delta = a_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + a_m2 + delta**2 * (count * n / total)
        count = total
    if count == 0:
        raise MotionFormatError("compute_mean_std needs at least one feature row; got none")

    per_dim = np.sqrt(m2 / count)
    std = np.empty(FEATURE_DIM)
    for name, sl in FEATURE_GROUPS:
        pooled = per_dim[sl].mean()
        if name in BIASED_GROUPS:
            pooled /= feature_bias
        std[sl] = pooled if pooled >= min_std else 1.0
    return MeanStd(mean=mean, std=std)


def _stats_like(features, ms: MeanStd):
    if hasattr(features, "detach"):  # a torch tensor: match its dtype and device
        import torch

        kw = dict(dtype=features.dtype, device=features.device)
        return torch.as_tensor(ms.mean, **kw), torch.as_tensor(ms.std, **kw)
    return ms.mean, ms.std


def normalize(features, ms: MeanStd):
    """(features - mean) / std, for numpy arrays or torch tensors of shape (..., 263)."""
    if features.shape[-1] != FEATURE_DIM:
        raise MotionFormatError(f"features must end in {FEATURE_DIM} dims, got shape {tuple(features.shape)}")
    mean, std = _stats_like(features, ms)
    return (features - mean) / std


def denormalize(features, ms: MeanStd):
    """features * std + mean, for numpy arrays or torch tensors of shape (..., 263)."""
    if features.shape[-1] != FEATURE_DIM:
        raise MotionFormatError(f"features must end in {FEATURE_DIM} dims, got shape {tuple(features.shape)}")
    mean, std = _stats_like(features, ms)
    return features * std + mean
