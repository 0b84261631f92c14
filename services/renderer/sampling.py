"""Which frames of a motion are rendered: every k-th frame, as in the AToM paper."""

from __future__ import annotations

from services.renderer.options import RenderInputError


def sample_indices(num_frames: int, k: int = 8) -> list[int]:
    """Frames 0, k, 2k, ... below num_frames (the paper samples every 8th frame)."""
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1:
        raise RenderInputError(f"num_frames must be a positive integer, got {num_frames!r}")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise RenderInputError(f"the sampling interval must be a positive integer, got {k!r}")
    return list(range(0, int(num_frames), int(k)))
