"""Motion-level drawing: posed bodies, shadow, floor trail and camera, frame by frame or all at once.

A "body" is anything with the SkeletonTemplate interface: `pose(joints (P, 22, 3)) -> (positions,
normals)` each (P, V, 3), `colors` (V, 3), `faces_for(P)` and `vertices_per_pose`. The skeleton
and the SMPL mesh (smpl.py) both provide it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np

from services.renderer.camera import CameraRig, follow_poses, framing_pose
from services.renderer.floor import checker_texture, face_up, floor_quad, path_strip
from services.renderer.scene import SceneRenderer
from services.renderer.shading import camera_light, shade, shade_batch

SHADOW_COLOR = np.array([0.62, 0.63, 0.66])
TRAIL_COLOR = np.array([0.10, 0.50, 0.30])
PATH_EARLY = np.array([0.62, 0.85, 0.72])
PATH_LATE = np.array([0.05, 0.38, 0.22])
SHADOW_Y, TRAIL_Y, PATH_Y = 0.006, 0.003, 0.004
FLOOR_TONE = np.array([0.93, 0.93, 0.92])
# Multisampling: judge frames are drawn without it (it costs about 40% of a frame on a software
# rasteriser and the VLM reads poses fine without it); the single trajectory image and the video
# for people get 4x.
FRAME_SAMPLES, STILL_SAMPLES, VIDEO_SAMPLES = 0, 4, 4
FRAME_CHUNK = 32  # frames whose vertex buffers are built together (bounds memory for meshes)
FLOOR_EXTENT = 120.0  # half-width in metres; far edges fade into the mipmapped grey
TILE = 0.5
_CHECKER = checker_texture()


class Body(Protocol):
    @property
    def vertices_per_pose(self) -> int: ...

    @property
    def colors(self) -> np.ndarray: ...

    def pose(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def faces_for(self, num_poses: int) -> np.ndarray: ...


def _floor_for(scene: SceneRenderer, points_xz: np.ndarray) -> None:
    """Put the floor under the given XZ points; the current one is kept while it covers them."""
    center = np.round(points_xz.mean(axis=0) / 25.0) * 25.0  # snap: nearby motions share a floor
    key = (float(center[0]), float(center[1]))
    if key != scene.floor_key:
        pos, uv, faces = floor_quad(center, FLOOR_EXTENT, TILE)
        scene.set_floor(pos, uv, faces, _CHECKER, key=key)


class MotionRenderer:
    """Renders motions into RGB arrays with one reused SceneRenderer."""

    def __init__(self, scene: SceneRenderer | None = None, rig: CameraRig = CameraRig()):
        self.scene = scene if scene is not None else SceneRenderer(yfov=rig.yfov)
        self.rig = rig
        self.scene.set_fov(rig.yfov)

    def close(self) -> None:
        self.scene.close()

    def camera_poses(self, joints: np.ndarray, camera: str, frames=None) -> np.ndarray:
        """(len(frames), 4, 4) camera poses for the given frames (default: all frames)."""
        frames = np.arange(len(joints)) if frames is None else np.asarray(frames, dtype=np.int64)
        if camera == "follow":
            return follow_poses(joints[:, 0], self.rig, frames)
        pose = framing_pose(joints.reshape(-1, 3), self.scene.aspect, self.rig)
        return np.repeat(pose[None], len(frames), axis=0)

    def render_frames(
        self,
        joints: np.ndarray,
        indices,
        body: Body,
        camera: str = "follow",
        trail: bool = True,
        width: int | None = None,
        height: int | None = None,
        samples: int = FRAME_SAMPLES,
    ) -> list[np.ndarray]:
        """Draw the given frames of a (T, 22, 3) motion -> list of (H, W, 3) uint8 (see iter_frames)."""
        return list(self.iter_frames(joints, indices, body, camera, trail, width, height, samples))

    def iter_frames(
        self,
        joints: np.ndarray,
        indices,
        body: Body,
        camera: str = "follow",
        trail: bool = True,
        width: int | None = None,
        height: int | None = None,
        samples: int = FRAME_SAMPLES,
    ):
        """Yield the given frames of a (T, 22, 3) motion as (H, W, 3) uint8 arrays, one at a time
        (a long video never holds all its frames). The renderer stays locked until the generator
        is exhausted or closed, so consume it promptly.

        Only the listed frames are posed and drawn. Each frame shows the body, its vertical
        shadow (so height above the floor is readable) and, with `trail`, the root's path so far
        (so the direction of travel is readable from a single frame). Vertex buffers are built
        for a chunk of frames in one vectorised pass; a frame is then one upload and one draw.
        """
        indices = [int(i) for i in indices]
        scene = self.scene
        with scene.lock:
            if width is not None or height is not None:
                scene.resize(scene.width if width is None else width, scene.height if height is None else height)
            scene.set_samples(samples)
            cams = self.camera_poses(joints, camera, indices)
            root_xz = joints[:, 0, [0, 2]]
            _floor_for(scene, np.concatenate([root_xz, cams[:, [0, 2], 3]]))

            nb = body.vertices_per_pose
            body_faces = body.faces_for(1)
            if trail and len(joints) > 1:
                trail_pos, trail_faces = path_strip(root_xz, 0.06, TRAIL_Y)
            else:
                trail_pos, trail_faces = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)
            n_total = 2 * nb + len(trail_pos)
            faces = np.concatenate([body_faces, body_faces + nb, trail_faces + 2 * nb]).astype(np.uint32)
            scene.set_dynamic(n_total, faces)

            for start in range(0, len(indices), FRAME_CHUNK):
                chunk = indices[start : start + FRAME_CHUNK]
                chunk_cams = cams[start : start + FRAME_CHUNK]
                buffers = self._frame_buffers(joints, chunk, chunk_cams, body, trail_pos)
                for k in range(len(chunk)):
                    scene.set_vertex_buffer(buffers[k])
                    yield scene.draw(chunk_cams[k])

    def _frame_buffers(self, joints, frames, cams, body: Body, trail_pos) -> np.ndarray:
        """Interleaved vertex buffers (P, V, 7) for frames: body, shadow, trail so far."""
        nb, P = body.vertices_per_pose, len(frames)
        n_trail = len(trail_pos)
        buf = np.ones((P, 2 * nb + n_trail, 7), np.float32)
        positions, normals = body.pose(joints[frames])
        lights = np.stack([camera_light(c) for c in cams])
        buf[:, :nb, 0:3] = positions
        buf[:, :nb, 3:6] = shade_batch(body.colors, normals, lights, cams[:, :3, 2])
        buf[:, nb : 2 * nb, 0:3] = positions
        buf[:, nb : 2 * nb, 1] = SHADOW_Y
        buf[:, nb : 2 * nb, 3:6] = SHADOW_COLOR
        if n_trail:
            n_seg = n_trail // 4
            seg = trail_pos.reshape(1, n_seg, 4, 3)
            age = np.asarray(frames)[:, None] - np.arange(n_seg)[None]  # > 0: segment walked already
            # Segments not yet walked collapse onto one point and draw nothing.
            pos = np.where((age > 0)[:, :, None, None], seg, trail_pos[0])
            fade = np.clip((age - 1) / 80.0, 0.0, 0.55)[:, :, None]  # older is paler
            col = TRAIL_COLOR * (1 - fade) + FLOOR_TONE * fade
            buf[:, 2 * nb :, 0:3] = pos.reshape(P, -1, 3)
            buf[:, 2 * nb :, 3:6] = np.repeat(col, 4, axis=1)
        return buf

    def render_trajectory(
        self,
        joints: np.ndarray,
        indices,
        body: Body,
        width: int | None = None,
        height: int | None = None,
        samples: int = STILL_SAMPLES,
    ) -> np.ndarray:
        """All sampled poses in one image, early poses pale and late poses dark, with the whole
        root path on the floor ending in an arrowhead; a fixed camera frames everything."""
        indices = [int(i) for i in indices]
        scene = self.scene
        with scene.lock:
            if width is not None or height is not None:
                scene.resize(scene.width if width is None else width, scene.height if height is None else height)
            scene.set_samples(samples)
            sampled = joints[indices]
            root_xz = joints[:, 0, [0, 2]]
            rig = trajectory_rig(root_xz, self.rig)
            cam = framing_pose(np.concatenate([sampled.reshape(-1, 3), joints[:, 0] * [1, 0, 1]]), scene.aspect, rig)
            _floor_for(scene, np.concatenate([root_xz, cam[None, [0, 2], 3]]))

            nb, n_pose = body.vertices_per_pose, len(indices)
            positions, normals = body.pose(sampled)
            s = np.linspace(0.0, 1.0, n_pose) if n_pose > 1 else np.ones(1)
            paleness = (0.6 * (1.0 - s))[:, None, None]
            base = body.colors[None] * (1 - paleness) + paleness  # blend towards white when early
            light, view = camera_light(cam), cam[:3, 2]
            body_col = shade(base, normals, light, view).reshape(-1, 3)

            path_pos, path_faces, path_col = _path_with_arrow(root_xz)
            faces = np.concatenate([body.faces_for(n_pose), path_faces + nb * n_pose]).astype(np.uint32)
            scene.set_dynamic(nb * n_pose + len(path_pos), faces)
            scene.update_dynamic(
                np.concatenate([positions.reshape(-1, 3), path_pos]),
                np.concatenate([body_col, path_col]),
            )
            return scene.draw(cam)


def trajectory_rig(root_xz: np.ndarray, rig: CameraRig) -> CameraRig:
    """A camera looking across the main direction of travel, so successive poses spread
    sideways in the picture instead of hiding behind each other.

    The view is turned 30 degrees from the perpendicular towards where the body goes (a
    three-quarter view that still separates the poses) and raised to see the path on the floor.
    A motion that stays in place keeps the default view.
    """
    xz = np.asarray(root_xz, dtype=np.float64)
    spread = xz - xz.mean(axis=0)
    if np.linalg.norm(spread, axis=1).max() < 0.3:
        return replace(rig, elevation_deg=max(rig.elevation_deg, 25.0))
    _, _, vt = np.linalg.svd(spread, full_matrices=False)
    travel = vt[0] if vt[0] @ (xz[-1] - xz[0]) >= 0 else -vt[0]
    side = np.array([travel[1], -travel[0]])  # perpendicular, in (x, z)
    default = rig.direction()[[0, 2]]
    if side @ default < 0:
        side = -side
    view = np.cos(np.radians(30)) * side + np.sin(np.radians(30)) * travel
    azimuth = float(np.degrees(np.arctan2(view[0], view[1])))
    return replace(rig, azimuth_deg=azimuth, elevation_deg=max(rig.elevation_deg, 28.0))


def _path_with_arrow(root_xz: np.ndarray):
    """The root path as a ribbon ramping light -> dark, plus an arrowhead at the end."""
    pos, faces = path_strip(root_xz, 0.06, PATH_Y)
    n_seg = len(pos) // 4
    s = np.linspace(0.0, 1.0, max(n_seg, 1))[:n_seg, None]
    col = np.repeat(PATH_EARLY * (1 - s) + PATH_LATE * s, 4, axis=0)

    travel = root_xz[-1] - root_xz[max(0, len(root_xz) - 6)]
    if np.linalg.norm(travel) < 0.05:  # no clear direction at the end: no arrow
        return pos, faces, col
    d = travel / np.linalg.norm(travel)
    n = np.array([-d[1], d[0]])
    tip = root_xz[-1] + 0.22 * d
    tri = np.stack([tip, root_xz[-1] + 0.11 * n, root_xz[-1] - 0.11 * n])
    tri_pos = np.stack([tri[:, 0], np.full(3, PATH_Y + 0.001), tri[:, 1]], axis=1).astype(np.float32)
    tri_faces = face_up(tri_pos, np.array([[0, 1, 2]])) + len(pos)
    return (
        np.concatenate([pos, tri_pos]),
        np.concatenate([faces, tri_faces.astype(np.uint32)]),
        np.concatenate([col, np.repeat(PATH_LATE[None], 3, axis=0)]),
    )
