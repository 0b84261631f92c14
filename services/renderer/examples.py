"""Write the example renders shown in the README.

    PYTHONPATH=. .venv/bin/python -m services.renderer.examples docs/images

Uses a clip from the procedural motion world (walk forward, jump forward, wave, squat) when
atom.motion.world is present, else the renderer's own synthetic walk. Deterministic.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from services.renderer import RenderOptions, render
from services.renderer.api import decode_png
from services.renderer.synthetic import jump, walk

EVENTS = ("walk_forward", "jump_forward", "wave", "squat")


def example_motion() -> tuple[np.ndarray, str]:
    try:
        from atom.motion.world.compose import compose
    except ImportError:
        return walk(160, turn_rate=0.4), "synthetic walk with a left turn"
    clip = compose(list(EVENTS), np.random.default_rng(3))
    return clip.joints, "world clip: " + ", then ".join(e.replace("_", " ") for e in EVENTS)


def _save(img: np.ndarray, path: Path) -> None:
    buf = io.BytesIO()
    # A 256-colour palette keeps the docs images small (< 200 KB) with no visible loss here.
    Image.fromarray(img).quantize(colors=256, dither=Image.Dither.NONE).save(buf, "PNG", optimize=True)
    path.write_bytes(buf.getvalue())
    print(f"{path} {img.shape[1]}x{img.shape[0]} {len(buf.getvalue()) // 1024} KB")


def main(out_dir: str = "docs/images") -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    joints, what = example_motion()
    print(f"motion: {what} ({len(joints)} frames)")

    frames = render(joints, RenderOptions(form="frame_by_frame", interval=8))
    mid = len(frames.images) // 4
    _save(decode_png(frames.images[mid]), out / "render-frame.png")

    full = render(joints, RenderOptions(form="full_image", interval=8, width=160, height=160))
    _save(decode_png(full.images[0]), out / "render-full-image.png")

    traj = render(joints, RenderOptions(form="trajectory_image", interval=8, width=384, height=288))
    _save(decode_png(traj.images[0]), out / "render-trajectory.png")

    hop = jump(40)
    strip = render(hop, RenderOptions(form="frame_by_frame", interval=8, width=192, height=192))
    _save(np.concatenate([decode_png(b) for b in strip.images], axis=1), out / "render-jump-frames.png")


if __name__ == "__main__":
    main(*sys.argv[1:])
