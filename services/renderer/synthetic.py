"""Small procedural skeleton motions for the renderer's tests, benchmark and example images.

These are deliberately simple (swinging limbs on a standing body, no physics): they exist so the
renderer can be exercised and looked at without any data set. The full procedural motion world
with captions and event labels lives in atom.motion.world.
"""

from __future__ import annotations

import numpy as np

from atom.motion.skeleton import FPS, JOINT, NUM_JOINTS

# A standing pose in HumanML3D axes (metres, Y up, facing +Z, the body's left is +X).
_STAND = {
    "pelvis": (0.0, 0.95, 0.0),
    "left_hip": (0.09, 0.88, 0.0),
    "right_hip": (-0.09, 0.88, 0.0),
    "spine1": (0.0, 1.06, -0.01),
    "spine2": (0.0, 1.18, 0.0),
    "spine3": (0.0, 1.25, 0.01),
    "left_knee": (0.10, 0.50, 0.01),
    "right_knee": (-0.10, 0.50, 0.01),
    "left_ankle": (0.10, 0.08, -0.03),
    "right_ankle": (-0.10, 0.08, -0.03),
    "left_foot": (0.11, 0.02, 0.10),
    "right_foot": (-0.11, 0.02, 0.10),
    "neck": (0.0, 1.46, 0.0),
    "head": (0.0, 1.62, 0.03),
    "left_collar": (0.07, 1.38, 0.0),
    "right_collar": (-0.07, 1.38, 0.0),
    "left_shoulder": (0.18, 1.40, 0.0),
    "right_shoulder": (-0.18, 1.40, 0.0),
    "left_elbow": (0.20, 1.12, 0.0),
    "right_elbow": (-0.20, 1.12, 0.0),
    "left_wrist": (0.21, 0.86, 0.03),
    "right_wrist": (-0.21, 0.86, 0.03),
}


def standing_pose() -> np.ndarray:
    """(22, 3) float64 standing pose."""
    pose = np.zeros((NUM_JOINTS, 3))
    for name, xyz in _STAND.items():
        pose[JOINT[name]] = xyz
    return pose


def _rot_axis(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of (T, ..., 3) about a fixed unit axis by angle (T,)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    c, s = np.cos(angle), np.sin(angle)
    while c.ndim < v.ndim:
        c, s = c[..., None], s[..., None]
    return v * c + np.cross(axis, v) * s + axis * (v @ axis)[..., None] * (1 - c)


def _swing_limb(pose: np.ndarray, chain: list[str], angles: list[np.ndarray], axis) -> np.ndarray:
    """Rotate a limb chain joint by joint: angles[i] bends everything below chain[i]."""
    idx = [JOINT[n] for n in chain]
    for i, angle in enumerate(angles):
        pivot = pose[:, idx[i]][:, None]
        below = idx[i + 1 :]
        pose[:, below] = pivot + _rot_axis(pose[:, below] - pivot, axis, angle)
    return pose


def _place(local: np.ndarray, heading: np.ndarray, root_xz: np.ndarray) -> np.ndarray:
    """Yaw each frame's body by heading (T,) about its pelvis and move the pelvis to root_xz."""
    pelvis = local[:, :1].copy()
    pelvis[..., 1] = 0.0
    body = _rot_axis(local - pelvis, np.array([0.0, 1.0, 0.0]), heading)
    out = body.copy()
    out[..., 0] += root_xz[:, None, 0]
    out[..., 2] += root_xz[:, None, 1]
    return out


def walk(num_frames: int = 100, speed: float = 1.2, turn_rate: float = 0.0, step_hz: float = 1.8) -> np.ndarray:
    """Walking: legs and arms swing in opposition while the root travels along the heading.

    turn_rate is in radians per second (positive turns left, towards +X from +Z).
    Returns (T, 22, 3) float32 with the first frame's root at the XZ origin facing +Z.
    """
    t = np.arange(num_frames) / FPS
    phase = 2 * np.pi * step_hz / 2 * t
    pose = np.repeat(standing_pose()[None], num_frames, axis=0)
    x_axis = np.array([1.0, 0.0, 0.0])
    swing = 0.45 * np.sin(phase)
    knee_l = 0.55 * np.clip(np.sin(phase - 1.2), 0, None)
    knee_r = 0.55 * np.clip(np.sin(phase + np.pi - 1.2), 0, None)
    # Positive rotation about +X turns -Y towards -Z, so a forward swing is a negative angle.
    _swing_limb(pose, ["left_hip", "left_knee", "left_ankle", "left_foot"], [-swing, knee_l, 0 * t], x_axis)
    _swing_limb(pose, ["right_hip", "right_knee", "right_ankle", "right_foot"], [swing, knee_r, 0 * t], x_axis)
    _swing_limb(pose, ["left_shoulder", "left_elbow", "left_wrist"], [0.5 * swing, -0.3 - 0 * t], x_axis)
    _swing_limb(pose, ["right_shoulder", "right_elbow", "right_wrist"], [-0.5 * swing, -0.3 - 0 * t], x_axis)
    pose[:, :, 1] += 0.025 * np.cos(2 * phase)[:, None] - 0.02
    heading = turn_rate * t
    dist = speed / FPS
    steps = np.stack([np.sin(heading), np.cos(heading)], axis=1) * dist
    root = np.concatenate([np.zeros((1, 2)), np.cumsum(steps[:-1], axis=0)])
    return _place(pose, heading, root).astype(np.float32)


def raise_arms(num_frames: int = 60) -> np.ndarray:
    """Standing still while both arms rise sideways from the hips to overhead and back."""
    t = np.linspace(0, 1, num_frames)
    lift = np.pi * 0.9 * np.sin(np.pi * t)
    pose = np.repeat(standing_pose()[None], num_frames, axis=0)
    z_axis = np.array([0.0, 0.0, 1.0])
    # Left arm lifts towards +X: rotating -Y towards +X is a positive rotation about +Z.
    _swing_limb(pose, ["left_shoulder", "left_elbow", "left_wrist"], [lift, 0 * t], z_axis)
    _swing_limb(pose, ["right_shoulder", "right_elbow", "right_wrist"], [-lift, 0 * t], z_axis)
    return _place(pose, 0 * t, np.zeros((num_frames, 2))).astype(np.float32)


def jump(num_frames: int = 40, height: float = 0.35, forward: float = 0.5) -> np.ndarray:
    """Crouch, jump forward with the arms swinging up, land and recover."""
    t = np.linspace(0, 1, num_frames)
    pose = np.repeat(standing_pose()[None], num_frames, axis=0)
    crouch = 0.7 * (np.exp(-(((t - 0.25) / 0.09) ** 2)) + np.exp(-(((t - 0.8) / 0.09) ** 2)))
    x_axis = np.array([1.0, 0.0, 0.0])
    for side in ("left", "right"):
        _swing_limb(pose, [f"{side}_hip", f"{side}_knee", f"{side}_ankle", f"{side}_foot"], [-crouch, 2 * crouch, -crouch], x_axis)
        arm = -2.2 * np.clip(np.sin(np.pi * (t - 0.3) / 0.5), 0, None)
        _swing_limb(pose, [f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist"], [arm, 0 * t], x_axis)
    # Lower the body by how much the crouch shortened the legs, keeping the feet on the floor.
    drop = pose[:, [JOINT["left_foot"], JOINT["right_foot"]], 1].min(axis=1) - 0.02
    pose[:, :, 1] -= drop[:, None]
    air = np.clip((t - 0.35) / 0.35, 0, 1)
    lift = height * np.where((t > 0.35) & (t < 0.7), 4 * air * (1 - air), 0.0)
    pose[:, :, 1] += lift[:, None]
    root = np.stack([np.zeros(num_frames), forward * np.clip((t - 0.35) / 0.35, 0, 1)], axis=1)
    return _place(pose, 0 * t, root).astype(np.float32)
