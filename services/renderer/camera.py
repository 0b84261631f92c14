"""Camera placement: a smoothed follow camera and a fixed camera that frames given points.

Poses are 4x4 camera-to-world matrices in pyrender's (OpenGL) convention: the camera looks down
its local -Z with +Y up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atom.motion.skeleton import FPS


@dataclass(frozen=True)
class CameraRig:
    """Where the camera sits relative to what it looks at.

    azimuth 0 looks at the body's front when it faces +Z (the HumanML3D start); positive azimuth
    moves the camera towards +X (the body's left). The camera height does not follow the root's
    height, so jumps and squats read as the body moving, not the floor.
    """

    azimuth_deg: float = 40.0
    elevation_deg: float = 20.0
    distance: float = 3.9
    target_height: float = 0.9
    yfov_deg: float = 40.0
    smoothing_s: float = 0.75
    margin: float = 1.08

    @property
    def yfov(self) -> float:
        return float(np.radians(self.yfov_deg))

    def direction(self) -> np.ndarray:
        """Unit vector from the target to the camera."""
        az, el = np.radians(self.azimuth_deg), np.radians(self.elevation_deg)
        return np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Camera-to-world pose at `eye` looking at `target`."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, np.asarray(up, float))
    if np.linalg.norm(right) < 1e-9:  # looking straight down: any right vector will do
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    true_up = np.cross(right, fwd)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, -fwd, eye
    return pose


def smooth_path(xz: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian-smooth a (T, 2) path with edge padding; the whole motion is known, so the
    filter is centred (no lag) rather than a causal moving average."""
    xz = np.asarray(xz, dtype=np.float64)
    if sigma_frames <= 0 or len(xz) < 2:
        return xz.copy()
    radius = int(np.ceil(3 * sigma_frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(xz, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, i], kernel, mode="valid") for i in range(xz.shape[1])], axis=1)


def follow_poses(roots: np.ndarray, rig: CameraRig = CameraRig(), frames=None) -> np.ndarray:
    """Camera poses following the smoothed root XZ of roots (T, 3), for `frames` (default all).

    The path is smoothed over the whole motion, so a frame's camera does not depend on which
    other frames are rendered.
    """
    xz = smooth_path(np.asarray(roots)[:, [0, 2]], rig.smoothing_s * FPS)
    if frames is not None:
        xz = xz[np.asarray(frames, dtype=np.int64)]
    targets = np.stack([xz[:, 0], np.full(len(xz), rig.target_height), xz[:, 1]], axis=1)
    eyes = targets + rig.distance * rig.direction()
    return np.stack([look_at(e, t) for e, t in zip(eyes, targets)])


def framing_pose(points: np.ndarray, aspect: float, rig: CameraRig = CameraRig()) -> np.ndarray:
    """A fixed pose from the rig's direction that keeps all points (N, 3) in view.

    The points' bounding sphere is fitted to the narrower field of view, so the frame holds
    whatever the motion does; the rig's distance is a lower bound to keep small motions at the
    same scale as the follow camera.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center = (lo + hi) / 2
    radius = float(np.linalg.norm(pts - center, axis=1).max())
    half_y = rig.yfov / 2
    half_x = np.arctan(np.tan(half_y) * aspect)
    dist = max(rig.margin * radius / np.sin(min(half_x, half_y)), rig.distance)
    return look_at(center + dist * rig.direction(), center)
