"""The world's body: a 22-joint HumanML3D skeleton with natural, per-clip varied proportions,
posed by forward kinematics from joint rotations.

Conventions (HumanML3D's, github.com/EricGuo5513/HumanML3D): Y up, metres, the figure faces +Z at rest, its left is +X.
A yaw angle `a` turns the forward direction +Z into (sin a, 0, cos a), so a positive yaw change
is a turn to the left.

Forward kinematics uses *global* joint rotations G: every joint j with parent p sits at
    P[j] = P[p] + G[p] @ offset[j]
where offset[j] is the rest-pose bone from p to j. Each G is a proper rotation, so every bone
keeps its rest length exactly, whatever the pose. Limbs are aimed by two-bone IK, which only
*chooses* rotations; positions still come out of the same FK sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atom.motion.skeleton import NUM_JOINTS, PARENTS

# Rest-pose bone vectors of a 1.70 m adult (offset of each joint from its parent), standing
# upright, arms hanging, feet flat. Proportions follow the SMPL neutral body's first 22 joints,
# rounded. The toe ("foot") joint sits on the sole, so a flat foot puts it at y = 0.
_BASE_OFFSETS = np.array(
    [
        [0.0, 0.0, 0.0],  # 0 pelvis (root)
        [0.065, -0.085, -0.010],  # 1 left hip
        [-0.065, -0.085, -0.010],  # 2 right hip
        [0.0, 0.100, -0.015],  # 3 spine1
        [0.010, -0.390, 0.0],  # 4 left knee
        [-0.010, -0.390, 0.0],  # 5 right knee
        [0.0, 0.130, 0.010],  # 6 spine2
        [0.0, -0.400, -0.030],  # 7 left ankle
        [0.0, -0.400, -0.030],  # 8 right ankle
        [0.0, 0.055, 0.0],  # 9 spine3
        [0.010, -0.065, 0.130],  # 10 left foot (toe)
        [-0.010, -0.065, 0.130],  # 11 right foot (toe)
        [0.0, 0.215, -0.030],  # 12 neck
        [0.075, 0.115, -0.020],  # 13 left collar
        [-0.075, 0.115, -0.020],  # 14 right collar
        [0.0, 0.085, 0.050],  # 15 head
        [0.115, 0.025, -0.010],  # 16 left shoulder
        [-0.115, 0.025, -0.010],  # 17 right shoulder
        [0.0, -0.260, 0.0],  # 18 left elbow
        [0.0, -0.260, 0.0],  # 19 right elbow
        [0.0, -0.250, 0.0],  # 20 left wrist
        [0.0, -0.250, 0.0],  # 21 right wrist
    ],
    dtype=np.float64,
)

_LEG = (4, 5, 7, 8, 10, 11)
_ARM = (18, 19, 20, 21)
_TORSO = (3, 6, 9, 12, 15)
_SHOULDER_WIDTH = (13, 14, 16, 17)
_HIP_WIDTH = (1, 2)

# The standing knee is not locked: hip-to-ankle distance is this fraction of the leg length.
STAND_EXTENSION = 0.985
# Planted legs are never stretched past this fraction (keeps IK away from its singularity).
MAX_EXTENSION = 0.995


class BodyError(ValueError):
    """Body parameters out of their valid range."""


@dataclass(frozen=True)
class Body:
    """Bone geometry of one figure. `offsets` is (22, 3), the rest bones in metres."""

    offsets: np.ndarray
    height_scale: float = 1.0

    @property
    def thigh(self) -> float:
        return float(np.linalg.norm(self.offsets[4]))

    @property
    def shin(self) -> float:
        return float(np.linalg.norm(self.offsets[7]))

    @property
    def leg(self) -> float:
        return self.thigh + self.shin

    @property
    def upper_arm(self) -> float:
        return float(np.linalg.norm(self.offsets[18]))

    @property
    def forearm(self) -> float:
        return float(np.linalg.norm(self.offsets[20]))

    @property
    def arm(self) -> float:
        return self.upper_arm + self.forearm

    @property
    def ankle_height(self) -> float:
        """Ankle height above the floor with the foot flat (toe joint on the floor)."""
        return float(-self.offsets[10, 1])

    @property
    def hip_drop(self) -> float:
        """How far the hip joints sit below the pelvis joint."""
        return float(-self.offsets[1, 1])

    @property
    def stand_height(self) -> float:
        """Pelvis height when standing with feet flat under the hips."""
        return self.ankle_height + STAND_EXTENSION * self.leg + self.hip_drop

    @property
    def bone_lengths(self) -> np.ndarray:
        """(21,) rest lengths of the bones (parent, child) for child 1..21."""
        return np.linalg.norm(self.offsets[1:], axis=1)

    def to_dict(self) -> dict:
        return {"height_scale": round(self.height_scale, 6), "offsets": np.round(self.offsets, 6).tolist()}


def make_body(
    height_scale: float = 1.0,
    leg_ratio: float = 1.0,
    arm_ratio: float = 1.0,
    torso_ratio: float = 1.0,
    shoulder_ratio: float = 1.0,
    hip_ratio: float = 1.0,
) -> Body:
    """A body scaled from the 1.70 m base; ratios stretch one part relative to the rest."""
    values = dict(
        height_scale=height_scale,
        leg_ratio=leg_ratio,
        arm_ratio=arm_ratio,
        torso_ratio=torso_ratio,
        shoulder_ratio=shoulder_ratio,
        hip_ratio=hip_ratio,
    )
    for name, v in values.items():
        lo, hi = (0.8, 1.2) if name == "height_scale" else (0.85, 1.15)
        if not (lo <= v <= hi):
            raise BodyError(f"{name}={v} is outside [{lo}, {hi}]; use a value in that range")
    off = _BASE_OFFSETS.copy()
    off[list(_LEG)] *= leg_ratio
    off[list(_ARM)] *= arm_ratio
    off[list(_TORSO)] *= torso_ratio
    off[list(_SHOULDER_WIDTH), 0] *= shoulder_ratio
    off[list(_HIP_WIDTH), 0] *= hip_ratio
    return Body(offsets=off * height_scale, height_scale=float(height_scale))


def random_body(rng: np.random.Generator) -> Body:
    """A body with height scale in [0.85, 1.15] and limb ratios varied by a few percent."""
    return make_body(
        height_scale=float(rng.uniform(0.85, 1.15)),
        leg_ratio=float(rng.uniform(0.95, 1.05)),
        arm_ratio=float(rng.uniform(0.95, 1.05)),
        torso_ratio=float(rng.uniform(0.96, 1.04)),
        shoulder_ratio=float(rng.uniform(0.92, 1.08)),
        hip_ratio=float(rng.uniform(0.92, 1.08)),
    )


# ---------------------------------------------------------------------------------------------
# Rotation maths, vectorised over any leading shape.


def rot_x(a: np.ndarray | float) -> np.ndarray:
    """Rotation about +X (left axis); a positive angle tips +Y towards +Z (a forward bow)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    r[..., 0, 0] = 1.0
    r[..., 1, 1] = c
    r[..., 1, 2] = -s
    r[..., 2, 1] = s
    r[..., 2, 2] = c
    return r


def rot_y(a: np.ndarray | float) -> np.ndarray:
    """Rotation about +Y (yaw); a positive angle turns +Z towards +X (a turn to the left)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    r[..., 0, 0] = c
    r[..., 0, 2] = s
    r[..., 1, 1] = 1.0
    r[..., 2, 0] = -s
    r[..., 2, 2] = c
    return r


def rot_z(a: np.ndarray | float) -> np.ndarray:
    """Rotation about +Z (forward axis); a positive angle tips +Y towards -X (the right side)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    r[..., 0, 0] = c
    r[..., 0, 1] = -s
    r[..., 1, 0] = s
    r[..., 1, 1] = c
    r[..., 2, 2] = 1.0
    return r


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _frame(d: np.ndarray, pole: np.ndarray) -> np.ndarray:
    """Orthonormal frame (columns) whose first axis is d and whose second leans towards pole."""
    e1 = _unit(d)
    p = pole - np.sum(pole * e1, axis=-1, keepdims=True) * e1
    # A pole parallel to the bone has no usable direction: fall back to any perpendicular.
    bad = np.linalg.norm(p, axis=-1) < 1e-6
    if np.any(bad):
        alt = np.where(np.abs(e1[..., :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
        alt = alt - np.sum(alt * e1, axis=-1, keepdims=True) * e1
        p = np.where(bad[..., None], alt, p)
    e2 = _unit(p)
    e3 = np.cross(e1, e2)
    return np.stack([e1, e2, e3], axis=-1)


def align(rest_dir: np.ndarray, rest_pole: np.ndarray, new_dir: np.ndarray, new_pole: np.ndarray) -> np.ndarray:
    """The rotation taking rest_dir to new_dir, with rest_pole's side turned towards new_pole."""
    f_new = _frame(new_dir, new_pole)
    f_rest = _frame(np.broadcast_to(rest_dir, new_dir.shape), np.broadcast_to(rest_pole, new_dir.shape))
    return f_new @ np.swapaxes(f_rest, -1, -2)


def two_bone_ik(start: np.ndarray, target: np.ndarray, l1: float, l2: float, pole: np.ndarray, max_extension: float = 0.9999) -> np.ndarray:
    """Middle joint (knee, elbow) of a two-bone chain from `start` reaching for `target`.

    The chain bends towards `pole`. A target out of reach leaves the chain straight along the
    line to it (the end then falls short of the target).
    """
    d_vec = target - start
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    u = d_vec / np.maximum(d, 1e-9)
    d = np.clip(d, abs(l1 - l2) + 1e-6, (l1 + l2) * max_extension)
    a = (l1 * l1 - l2 * l2 + d * d) / (2.0 * d)
    b = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    p = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    p = _unit(p)
    return start + a * u + b * p


def forward_kinematics(offsets: np.ndarray, root: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3) from root positions (T, 3) and global rotations (T, 22, 3, 3)."""
    t = root.shape[0]
    pos = np.empty((t, NUM_JOINTS, 3))
    pos[:, 0] = root
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        pos[:, j] = pos[:, p] + rotations[:, p] @ offsets[j]
    return pos
