"""Composition for the injection forms: the Full-Image tiling with time labels."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from atom.motion.skeleton import FPS

COLUMNS = 5  # the paper tiles the sampled frames 5 per row
GAP = 2
GAP_COLOR = (150, 150, 150)


@lru_cache(maxsize=16)
def _font(size: int):
    # Pillow >= 10.1 ships a scalable default font (FreeType); older builds fall back to bitmap.
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def time_label(index: int, fps: int = FPS) -> str:
    return f"t = {index / fps:.2f} s"


def draw_label(image: np.ndarray, text: str) -> np.ndarray:
    """Write `text` in the top-left corner on a white box (legible on floor and sky alike)."""
    h = image.shape[0]
    size = max(10, int(round(h * 0.075)))
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    font = _font(size)
    pad = max(2, size // 4)
    x0, y0, x1, y1 = draw.textbbox((pad * 2, pad * 2), text, font=font)
    draw.rectangle((x0 - pad, y0 - pad, x1 + pad, y1 + pad), fill=(255, 255, 255), outline=(90, 90, 90))
    draw.text((pad * 2, pad * 2), text, fill=(20, 20, 20), font=font)
    return np.asarray(pil)


def tile_size(num_frames: int, width: int, height: int, columns: int = COLUMNS) -> tuple[int, int]:
    """(width, height) in pixels of the Full-Image composite of num_frames tiles."""
    cols = min(columns, num_frames)
    rows = -(-num_frames // columns)
    return cols * width + (cols - 1) * GAP, rows * height + (rows - 1) * GAP


def full_image(frames: list[np.ndarray], indices: list[int], fps: int = FPS, columns: int = COLUMNS) -> np.ndarray:
    """Tile sampled frames row-major, `columns` per row, each labelled with its time in seconds.

    Tiles are separated by a thin grey gap; cells after the last frame stay white.
    """
    if not frames:
        raise ValueError("full_image needs at least one frame")
    h, w, _ = frames[0].shape
    out_w, out_h = tile_size(len(frames), w, h, columns)
    canvas = np.empty((out_h, out_w, 3), np.uint8)
    canvas[:] = GAP_COLOR
    cols = min(columns, len(frames))
    rows = -(-len(frames) // columns)
    for cell in range(rows * cols):
        r, c = divmod(cell, cols)
        y, x = r * (h + GAP), c * (w + GAP)
        if cell < len(frames):
            canvas[y : y + h, x : x + w] = draw_label(frames[cell], time_label(indices[cell], fps))
        else:
            canvas[y : y + h, x : x + w] = 255
    return canvas
