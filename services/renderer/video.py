"""Video encoding of rendered frames with the ffmpeg that imageio-ffmpeg bundles: H.264 mp4 (for
files people download) and VP9 WebM (for web pages: every Chromium build plays VP9, not every one
plays H.264); and animated GIF with Pillow (for slides, issues and chat, where a video is not
shown inline)."""

from __future__ import annotations

import os
import tempfile
from typing import Iterable

import numpy as np

from atom.motion.skeleton import FPS

# imageio-ffmpeg starts ffmpeg with preexec_fn=os.setpgrp, which makes Python fork() the whole
# process; gRPC's fork handlers then run in a server with live threads, and in a full run one of
# 12 encodes failed with a broken pipe while gRPC logged "epoll_wait error: Bad file descriptor".
# Without preexec_fn (this switch, read at every ffmpeg start), subprocess uses vfork/exec, which
# runs no fork handlers.
os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")


class VideoError(RuntimeError):
    """ffmpeg failed to write or read a video; the message carries ffmpeg's reason."""


# Per codec: (file suffix, ffmpeg encoder, encoder options). Both single-threaded and bit-exact so
# that the same frames give the same bytes from run to run (frame threads change rate control).
CODECS = {
    "h264": (".mp4", "libx264", ["-crf", "20", "-preset", "veryfast", "-threads", "1", "-movflags", "+faststart"]),
    "vp9": (".webm", "libvpx-vp9", ["-crf", "32", "-b:v", "0", "-deadline", "good", "-cpu-used", "8", "-row-mt", "0", "-threads", "1"]),
}


def encode_mp4(frames: Iterable[np.ndarray], width: int, height: int, fps: int = FPS) -> bytes:
    """Encode (H, W, 3) uint8 frames as H.264 (yuv420p, faststart) and return the mp4 bytes."""
    return encode_video(frames, width, height, fps, "h264")


def encode_webm(frames: Iterable[np.ndarray], width: int, height: int, fps: int = FPS) -> bytes:
    """Encode (H, W, 3) uint8 frames as VP9 in WebM and return the bytes."""
    return encode_video(frames, width, height, fps, "vp9")


def encode_gif(frames: Iterable[np.ndarray], width: int, height: int, fps: int = FPS) -> bytes:
    """Encode (H, W, 3) uint8 frames as an endlessly looping GIF. GIF delays are whole
    hundredths of a second, so 20 fps is exact (5/100 s) and other rates are rounded."""
    import io

    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8), "RGB") for f in frames]
    if not images:
        raise ValueError("no frames to encode")
    if images[0].size != (width, height):
        raise ValueError(f"frames are {images[0].size[0]}x{images[0].size[1]}, expected {width}x{height}")
    buf = io.BytesIO()
    # One adaptive palette per frame (Pillow's default quantizer: deterministic); no optimisation
    # pass, so frame count and timing stay exactly the motion's.
    images[0].save(
        buf, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, optimize=False, disposal=1
    )
    return buf.getvalue()


def encode_video(frames: Iterable[np.ndarray], width: int, height: int, fps: int, codec: str) -> bytes:
    """Encode (H, W, 3) uint8 frames with one of CODECS (yuv420p, so the sizes must be even)."""
    import imageio_ffmpeg

    suffix, encoder, options = CODECS[codec]
    if width % 2 or height % 2:
        raise ValueError(f"{codec} (yuv420p) needs even frame sizes, got {width}x{height}")
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="atom-render-")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(
            path,
            (width, height),
            fps=fps,
            codec=encoder,
            pix_fmt_out="yuv420p",
            macro_block_size=1,
            quality=None,
            ffmpeg_log_level="error",
            output_params=[*options, "-map_metadata", "-1", "-fflags", "+bitexact"],
        )
        try:
            writer.send(None)  # start ffmpeg
            count = 0
            for frame in frames:
                frame = np.ascontiguousarray(frame, dtype=np.uint8)
                if frame.shape != (height, width, 3):
                    raise ValueError(f"frame {count} has shape {frame.shape}, expected {(height, width, 3)}")
                writer.send(frame)
                count += 1
        finally:
            writer.close()
        if count == 0:
            raise ValueError("a video needs at least one frame")
        with open(path, "rb") as fh:
            return fh.read()
    except (OSError, RuntimeError) as exc:
        raise VideoError(f"ffmpeg could not encode the video: {exc}") from None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def mp4_frame_count(data: bytes, suffix: str = ".mp4") -> int:
    """Number of video frames in mp4 (or, with suffix ".webm", WebM) bytes; decodes the stream,
    so it is exact."""
    import imageio_ffmpeg

    fd, path = tempfile.mkstemp(suffix=suffix, prefix="atom-probe-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            frames, _ = imageio_ffmpeg.count_frames_and_secs(path)
        except RuntimeError as exc:
            raise VideoError(f"not a readable video: {exc}") from None
        return int(frames)
    finally:
        os.unlink(path)
