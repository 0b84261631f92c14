"""Floor and path geometry (the renderer draws unlit: colours are baked in, see shading.py)."""

from __future__ import annotations

import numpy as np

FLOOR_LIGHT = np.array([0.93, 0.93, 0.92])
FLOOR_DARK = np.array([0.80, 0.81, 0.82])
BACKGROUND = np.array([1.0, 1.0, 1.0])


def face_up(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Reorder triangles lying on the floor so they face +Y (back faces are culled)."""
    a, b, c = positions[faces[:, 0]], positions[faces[:, 1]], positions[faces[:, 2]]
    ny = (b[:, 2] - a[:, 2]) * (c[:, 0] - a[:, 0]) - (b[:, 0] - a[:, 0]) * (c[:, 2] - a[:, 2])
    out = faces.copy()
    flip = ny < 0
    out[flip] = out[flip][:, [0, 2, 1]]
    return out


def checker_texture(tile_px: int = 64) -> np.ndarray:
    """(2 tile_px, 2 tile_px, 3) uint8: two by two checker tiles, repeated over the floor."""
    light = np.round(FLOOR_LIGHT * 255).astype(np.uint8)
    dark = np.round(FLOOR_DARK * 255).astype(np.uint8)
    yy, xx = np.mgrid[0 : 2 * tile_px, 0 : 2 * tile_px]
    tex = np.empty((2 * tile_px, 2 * tile_px, 3), np.uint8)
    tex[:] = light
    tex[(yy // tile_px + xx // tile_px) % 2 == 1] = dark
    return tex


def floor_quad(center_xz, half_extent: float = 80.0, tile: float = 0.5):
    """One large square on y = 0 textured with the checker; tiles are `tile` metres wide.

    Why a texture and not one quad per tile: each tile's triangles cost setup time on a software
    rasteriser (a 0.5 m checker around a long walk is thousands of triangles, measured at about
    5 ms a frame), and the texture's mipmaps fade distant tiles to grey instead of aliasing them
    into moire. Texture coordinates are world-aligned, so the pattern stays fixed to the ground.
    Returns positions (4, 3), texcoords (4, 2), faces (2, 3) uint32.
    """
    cx, cz = float(center_xz[0]), float(center_xz[1])
    e = float(half_extent)
    pos = np.array([[cx - e, 0, cz - e], [cx + e, 0, cz - e], [cx + e, 0, cz + e], [cx - e, 0, cz + e]])
    uv = pos[:, [0, 2]] / (2 * tile)  # the texture holds 2 x 2 tiles
    faces = face_up(pos, np.array([[0, 1, 2], [0, 2, 3]]))
    return pos.astype(np.float32), uv.astype(np.float32), faces.astype(np.uint32)


def path_strip(xz: np.ndarray, width: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    """A flat ribbon along a (N, 2) path: 4 vertices per segment (segments do not share vertices,
    so each can be coloured or hidden on its own). Returns positions (4(N-1), 3) and faces."""
    xz = np.asarray(xz, dtype=np.float64)
    a, b = xz[:-1], xz[1:]
    d = b - a
    length = np.linalg.norm(d, axis=1, keepdims=True)
    d = np.where(length > 1e-9, d / np.maximum(length, 1e-9), np.array([1.0, 0.0]))
    n = np.stack([-d[:, 1], d[:, 0]], axis=1) * (width / 2)
    # Extend each segment by half a width so consecutive segments overlap at bends.
    a_ext, b_ext = a - d * width / 2, b + d * width / 2
    quad = np.stack([a_ext - n, a_ext + n, b_ext + n, b_ext - n], axis=1)  # (S, 4, 2)
    pos = np.stack([quad[..., 0], np.full(quad.shape[:2], y), quad[..., 1]], axis=-1).reshape(-1, 3)
    base = (np.arange(len(a)) * 4)[:, None]
    faces = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]], axis=0)
    return pos.astype(np.float32), face_up(pos, faces).astype(np.uint32)
