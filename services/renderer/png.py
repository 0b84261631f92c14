"""A minimal PNG encoder for RGB frames.

Why not PIL: Pillow's encoder spends ~3 ms (level 1) to ~6 ms (default level) on a 256x256 frame,
as much as drawing it. Our renders are flat-shaded with large uniform areas, where PNG's
per-row prediction filters buy little: filter "none" plus zlib level 1 measured about 1 ms and
gave files (about 19 KB) close to Pillow's default level (18.5 KB in 6 ms). The output is a standard 8-bit RGB PNG and is
byte-identical for identical pixels.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_LEVEL = 1


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, level: int = DEFAULT_LEVEL) -> bytes:
    """(H, W, 3) uint8 RGB -> PNG bytes."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encode_png needs an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
    h, w, _ = image.shape
    rows = np.empty((h, w * 3 + 1), np.uint8)
    rows[:, 0] = 0  # filter type "none" on every row
    rows[:, 1:] = image.reshape(h, w * 3)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 (RGB)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _chunk(b"IEND", b"")
