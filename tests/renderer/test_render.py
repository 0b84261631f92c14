"""Headless rendering end to end on pyrender/EGL (Mesa llvmpipe on CPU-only machines).

One renderer (one GL context) serves the whole module."""

import numpy as np
import pytest

from atom.store import LocalStore
from services.renderer import MP4, PNG, RenderOptions, load_render, render, render_cached, save_render
from services.renderer.api import decode_png
from services.renderer.forms import tile_size
from services.renderer.sampling import sample_indices
from services.renderer.skeleton_mesh import SkeletonTemplate
from services.renderer.synthetic import jump, raise_arms, walk
from services.renderer.video import mp4_frame_count

SHA = "c0" * 32


def _red_blue(img):
    r, g, b = (img[..., i].astype(int) for i in range(3))
    red = (r > 150) & (g < 90) & (b < 90)
    blue = (b > 150) & (r < 90) & (g < 140)
    return red.sum(), blue.sum()


def test_frames_show_the_skeleton_and_change_with_the_pose(motion_renderer):
    body = SkeletonTemplate()
    arms = raise_arms(40)
    down, up = motion_renderer.render_frames(arms, [0, 20], body, width=256, height=256)
    for img in (down, up):
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # not a blank or flat image
        red, blue = _red_blue(img)
        assert red > 150 and blue > 150  # right limbs red, left limbs blue
    changed = np.abs(down.astype(int) - up.astype(int)).max(axis=2) > 40
    assert changed.sum() > 300
    # Raised arms put skeleton colour into the upper part of the picture.
    assert sum(_red_blue(up[:90])) > sum(_red_blue(down[:90])) + 50


def test_same_input_gives_identical_bytes(motion_renderer, walk_motion):
    a = render(walk_motion, RenderOptions(form="frame_by_frame", interval=20), renderer=motion_renderer)
    b = render(walk_motion, RenderOptions(form="frame_by_frame", interval=20), renderer=motion_renderer)
    assert a.images == b.images


def test_only_sampled_frames_are_drawn(motion_renderer, walk_motion):
    scene = motion_renderer.scene
    T = len(walk_motion)
    for form, k, expected in [
        ("frame_by_frame", 8, len(sample_indices(T, 8))),
        ("frame_by_frame", 4, len(sample_indices(T, 4))),
        ("full_image", 8, len(sample_indices(T, 8))),
        ("trajectory_image", 8, 1),
    ]:
        before = scene.frames_drawn
        out = render(walk_motion, RenderOptions(form=form, interval=k), renderer=motion_renderer)
        assert scene.frames_drawn - before == expected, form
        assert out.frame_indices == sample_indices(T, k)


def test_frame_by_frame_gives_one_png_per_sampled_frame(motion_renderer, walk_motion):
    out = render(walk_motion, RenderOptions(form="frame_by_frame", interval=8, width=160, height=120), renderer=motion_renderer)
    assert out.media_type == PNG
    assert len(out.images) == len(out.frame_indices) == 8  # 60 frames: 0, 8, ..., 56
    for data in out.images:
        assert decode_png(data).shape == (120, 160, 3)
    assert out.filenames()[:2] == ["frame-00000.png", "frame-00008.png"]


def test_full_image_tiles_sampled_frames(motion_renderer, walk_motion):
    out = render(walk_motion, RenderOptions(form="full_image", interval=8, width=96, height=96), renderer=motion_renderer)
    assert len(out.images) == 1 and out.filenames() == ["full.png"]
    img = decode_png(out.images[0])
    w, h = tile_size(8, 96, 96)
    assert img.shape == (h, w, 3)  # 5 + 3 tiles: two rows


def test_trajectory_image_shows_all_poses_in_one_picture(motion_renderer):
    motion = walk(100, turn_rate=0.5)
    out = render(motion, RenderOptions(form="trajectory_image", width=200, height=150), renderer=motion_renderer)
    img = decode_png(out.images[0])
    assert img.shape == (150, 200, 3)
    assert out.frame_indices == sample_indices(100, 8)
    # Many poses drawn: far more limb pixels than one frame of the same motion at this size.
    single = motion_renderer.render_frames(motion, [50], SkeletonTemplate(), camera="fixed", width=200, height=150)[0]
    assert sum(_red_blue(img)) > 3 * sum(_red_blue(single))
    # The root path (green) is drawn on the floor.
    r, g, b = (img[..., i].astype(int) for i in range(3))
    assert ((g > r + 40) & (g > b + 10)).sum() > 30


def test_video_is_an_mp4_with_every_frame(motion_renderer):
    motion = jump(30)
    before = motion_renderer.scene.frames_drawn
    out = render(motion, RenderOptions(form="video", width=128, height=96), renderer=motion_renderer)
    assert motion_renderer.scene.frames_drawn - before == 30
    assert out.media_type == MP4 and out.filenames() == ["motion.mp4"]
    data = out.images[0]
    assert data[4:8] == b"ftyp"
    assert mp4_frame_count(data) == 30
    assert out.frame_indices == list(range(30))
    again = render(motion, RenderOptions(form="video", width=128, height=96), renderer=motion_renderer)
    assert again.images[0] == data  # single-threaded x264 with bitexact flags: reproducible bytes


def test_webm_is_vp9_with_every_frame_and_decodes_back(motion_renderer):
    """The web pages' video: WebM (EBML magic) with VP9, every frame, decodable to the drawn pictures."""
    import imageio_ffmpeg

    motion = jump(30)
    out = render(motion, RenderOptions(form="webm", width=128, height=96), renderer=motion_renderer)
    assert out.media_type == "video/webm" and out.filenames() == ["motion.webm"]
    data = out.images[0]
    assert data[:4] == b"\x1a\x45\xdf\xa3" and b"V_VP9" in data[:4096]
    assert mp4_frame_count(data, ".webm") == 30
    # Decoded back, a frame looks like the PNG of the same frame (lossy: close, not equal).
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".webm") as fh:
        fh.write(data)
        fh.flush()
        reader = imageio_ffmpeg.read_frames(fh.name)
        meta = next(reader)
        decoded = [np.frombuffer(f, np.uint8).reshape(96, 128, 3) for f in reader]
    assert meta["size"] == (128, 96) and len(decoded) == 30
    png = render(motion, RenderOptions(form="frame_by_frame", interval=10, width=128, height=96), renderer=motion_renderer)
    first = decode_png(png.images[0]).astype(int)
    assert np.abs(decoded[0].astype(int) - first).mean() < 12


def test_gif_loops_every_frame_at_20_fps_and_decodes_back(motion_renderer):
    """The slides' and issues' animation: a looping GIF, every frame 5/100 s, each frame the drawn
    picture up to its 256-colour palette."""
    import io

    from PIL import Image, ImageSequence

    motion = jump(30)
    out = render(motion, RenderOptions(form="gif", width=128, height=96), renderer=motion_renderer)
    assert out.media_type == "image/gif" and out.filenames() == ["motion.gif"]
    gif = Image.open(io.BytesIO(out.images[0]))
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    assert gif.info["loop"] == 0 and len(frames) == 30 and frames[0].shape == (96, 128, 3)
    assert all(f.info["duration"] == 50 for f in ImageSequence.Iterator(Image.open(io.BytesIO(out.images[0]))))
    png = render(motion, RenderOptions(form="frame_by_frame", interval=10, width=128, height=96), renderer=motion_renderer)
    for i, image in zip((0, 10, 20), png.images):
        assert np.abs(frames[i].astype(int) - decode_png(image).astype(int)).mean() < 4
    again = render(motion, RenderOptions(form="gif", width=128, height=96), renderer=motion_renderer)
    assert again.images[0] == out.images[0]


def test_fixed_camera_does_not_move(motion_renderer):
    motion = walk(60, speed=1.5)
    poses = motion_renderer.camera_poses(motion, "fixed", [0, 30, 59])
    np.testing.assert_allclose(poses[0], poses[2])
    follow = motion_renderer.camera_poses(motion, "follow", [0, 30, 59])
    assert np.linalg.norm(follow[2, :3, 3] - follow[0, :3, 3]) > 2.0
    out = render(motion, RenderOptions(form="frame_by_frame", camera="fixed", interval=30), renderer=motion_renderer)
    assert len(out.images) == 2


def test_trail_appears_once_the_body_has_moved(motion_renderer):
    motion = walk(60, speed=1.5)
    first, later = motion_renderer.render_frames(motion, [0, 50], SkeletonTemplate(), width=256, height=256)

    def green(img):
        r, g, b = (img[..., i].astype(int) for i in range(3))
        return ((g > r + 40) & (g > b + 10)).sum()

    assert green(first) == 0
    assert green(later) > 30


def test_render_cache_round_trip(motion_renderer, walk_motion, tmp_path):
    store = LocalStore(tmp_path)
    opts = RenderOptions(form="frame_by_frame", interval=16, width=64, height=64)
    assert load_render(store, SHA, opts) is None
    out, cached = render_cached(store, SHA, walk_motion, opts, renderer=motion_renderer)
    assert not cached
    keys = store.list(f"renders/{SHA}/")
    assert f"renders/{SHA}/frame_by_frame-k16-64x64-skeleton/manifest.json" in keys
    drawn = motion_renderer.scene.frames_drawn
    again, cached = render_cached(store, SHA, walk_motion, opts, renderer=motion_renderer)
    assert cached and motion_renderer.scene.frames_drawn == drawn  # nothing re-rendered
    assert again.images == out.images and again.frame_indices == out.frame_indices
    # A missing file makes the cached render incomplete: it is rendered again, not served.
    store.delete(f"renders/{SHA}/frame_by_frame-k16-64x64-skeleton/frame-00016.png")
    assert load_render(store, SHA, opts) is None
    save_render(store, SHA, out)
    assert load_render(store, SHA, opts) is not None


def test_sizes_change_between_calls(motion_renderer, walk_motion):
    for w, h in [(64, 48), (300, 200), (64, 48)]:
        out = render(walk_motion, RenderOptions(form="frame_by_frame", interval=30, width=w, height=h), renderer=motion_renderer)
        assert decode_png(out.images[0]).shape == (h, w, 3)


@pytest.mark.parametrize("samples", [0, 4])
def test_antialiasing_setting(motion_renderer, walk_motion, samples):
    img = motion_renderer.render_frames(walk_motion, [10], SkeletonTemplate(), width=256, height=256, samples=samples)[0]
    assert motion_renderer.scene.samples == samples
    assert sum(_red_blue(img)) > 200


def test_renderer_is_usable_from_several_threads(motion_renderer, walk_motion):
    # gRPC serves requests on a thread pool: the GL context must move between threads.
    import threading

    results, errors = [], []

    def job():
        try:
            out = render(walk_motion, RenderOptions(form="frame_by_frame", interval=20, width=64, height=64), renderer=motion_renderer)
            results.append(out.images)
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 3 and results[0] == results[1] == results[2]


def test_closing_one_renderer_leaves_the_others_working(motion_renderer, walk_motion):
    from services.renderer.frames import MotionRenderer

    other = MotionRenderer()
    other.render_frames(walk_motion, [0], SkeletonTemplate(), width=64, height=64)
    other.close()
    other.close()  # idempotent
    img = motion_renderer.render_frames(walk_motion, [0], SkeletonTemplate(), width=64, height=64)[0]
    assert sum(_red_blue(img)) > 0 or img.std() > 5


def test_a_garbage_collected_renderer_leaves_the_others_working(motion_renderer, walk_motion):
    # pyrender's own finaliser would eglTerminate the display that every context shares.
    import gc

    from services.renderer.frames import MotionRenderer

    dropped = MotionRenderer()
    dropped.render_frames(walk_motion, [0], SkeletonTemplate(), width=64, height=64)
    del dropped
    gc.collect()
    img = motion_renderer.render_frames(walk_motion, [0], SkeletonTemplate(), width=64, height=64)[0]
    assert img.std() > 5
