"""An approximate SMPL rest skeleton for the motion tests, so every test motion is known exactly.

Bone vectors (child - parent, metres) of a T-pose facing +Z, left = +X; row 0 is the pelvis's
height above the floor."""

import numpy as np

from atom.motion.skeleton import PARENTS

REST_BONES = np.array(
    [
        (0, 0.93, 0),
        (0.06, -0.09, 0),
        (-0.06, -0.09, 0),
        (0, 0.11, -0.02),
        (0, -0.38, 0),
        (0, -0.38, 0),
        (0, 0.14, 0.02),
        (0, -0.42, -0.03),
        (0, -0.42, -0.03),
        (0, 0.06, 0),
        (0, -0.06, 0.12),
        (0, -0.06, 0.12),
        (0, 0.21, -0.03),
        (0.07, 0.12, -0.02),
        (-0.07, 0.12, -0.02),
        (0, 0.09, 0.05),
        (0.12, 0.04, -0.01),
        (-0.12, 0.04, -0.01),
        (0.25, 0, 0),
        (-0.25, 0, 0),
        (0.25, 0, 0),
        (-0.25, 0, 0),
    ],
    dtype=np.float64,
)


def rest_joints(bones: np.ndarray = REST_BONES) -> np.ndarray:
    """Joint positions (22, 3) of `bones` chained from the pelvis."""
    joints = np.zeros((len(bones), 3))
    for j in range(len(bones)):
        joints[j] = bones[j] + (joints[PARENTS[j]] if PARENTS[j] >= 0 else 0)
    return joints
