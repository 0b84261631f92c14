"""Quick skeleton views: files are written, are real images, and show the pose."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from atom.motion.plot import render_skeleton_frames, save_skeleton_gif, save_skeleton_strip
from atom.motion.record import MotionFormatError
from rest_skeleton import REST_BONES, rest_joints


def pose(arms_up: bool = False) -> np.ndarray:
    bones = REST_BONES.copy()
    if arms_up:
        bones[18:22] = [(0, 0.25, 0), (0, 0.25, 0), (0, 0.25, 0), (0, 0.25, 0)]
    return rest_joints(bones)


def walk(t: int = 6) -> np.ndarray:
    frames = np.stack([pose(arms_up=(k % 2 == 1)) for k in range(t)])
    frames[:, :, 2] += 0.05 * np.arange(t)[:, None]
    return frames


def test_gif_written_with_all_frames(tmp_path):
    path = save_skeleton_gif(walk(6), tmp_path / "sub" / "walk.gif", fps=20, title="walk", size=128)
    assert path.exists() and path.stat().st_size > 2000
    with Image.open(path) as im:
        assert im.format == "GIF" and im.size == (128, 128)
        assert im.n_frames == 6
        assert im.info.get("duration") == 50
    assert not list(path.parent.glob(".*"))  # no temporary files left behind


def test_strip_written(tmp_path):
    path = save_skeleton_strip(walk(6), tmp_path / "strip.png", every=2, size=100)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (300, 100)  # frames 0, 2, 4
        px = np.asarray(im.convert("RGB"))
    assert px.std() > 5  # not a blank image


def test_pixels_follow_the_pose():
    down = render_skeleton_frames(np.stack([pose(), pose()]), size=128, radius=1.2)
    up = render_skeleton_frames(np.stack([pose(arms_up=True), pose(arms_up=True)]), size=128, radius=1.2)
    assert down.shape == (2, 128, 128, 3) and down.dtype == np.uint8
    # The reused figure keeps nothing of the previous frame: up-then-down draws like down-then-down.
    mixed = render_skeleton_frames(np.stack([pose(arms_up=True), pose()]), size=128, radius=1.2)
    np.testing.assert_array_equal(mixed[1], down[1])
    np.testing.assert_array_equal(render_skeleton_frames(np.stack([pose(), pose()]), size=128, radius=1.2), down)
    changed = np.any(down[0] != up[0], axis=-1).mean()
    assert changed > 0.003, changed


def test_chain_colours_present():
    px = render_skeleton_frames(np.stack([pose(), pose()]), size=160)[0].astype(int)
    red = (px[..., 0] > 150) & (px[..., 2] < 110)
    blue = (px[..., 2] > 150) & (px[..., 0] < 110)
    dark = px.sum(-1) < 150
    grey = (np.abs(px[..., 0] - px[..., 1]) < 8) & (np.abs(px[..., 1] - px[..., 2]) < 8) & (px[..., 0] > 150) & (px[..., 0] < 235)
    assert red.sum() > 20 and blue.sum() > 20 and dark.sum() > 10 and grey.sum() > 200


def test_bad_input(tmp_path):
    with pytest.raises(MotionFormatError):
        save_skeleton_gif(np.zeros((5, 21, 3)), tmp_path / "x.gif")
    with pytest.raises(ValueError):
        save_skeleton_strip(walk(3), tmp_path / "x.png", every=0)
    assert not (tmp_path / "x.gif").exists()
