"""The renderer's entry points: render a motion in one form, and keep renders in the store.

    out = render(joints, RenderOptions(form="frame_by_frame", interval=8))
    out.images          # list of PNG bytes (one mp4 for form="video", one WebM for "webm")
    out.frame_indices   # which motion frames were drawn

One GL context per process is created lazily and reused (creating a context and compiling shaders
costs far more than a frame); calls are serialised on it with a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from atom.motion.skeleton import FPS
from services.renderer.forms import full_image
from services.renderer.frames import VIDEO_SAMPLES, MotionRenderer
from services.renderer.options import RenderInputError, RenderOptions, cache_key, check_joints
from services.renderer.png import encode_png
from services.renderer.sampling import sample_indices
from services.renderer.skeleton_mesh import SkeletonTemplate
from services.renderer.video import encode_gif, encode_mp4, encode_webm

PNG, MP4, WEBM, GIF = "image/png", "video/mp4", "video/webm", "image/gif"
# Video forms: (encoder, media type, file name). Every frame is drawn for these.
_VIDEOS = {"video": (encode_mp4, MP4, "motion.mp4"), "webm": (encode_webm, WEBM, "motion.webm"), "gif": (encode_gif, GIF, "motion.gif")}
RENDER_VERSION = 1  # bump when the look of renders changes; recorded in the store manifest

_default_lock = threading.Lock()
_default_renderer: MotionRenderer | None = None
_skeleton = SkeletonTemplate()
_smpl_bodies: dict = {}


@dataclass(frozen=True)
class RenderOutput:
    images: list[bytes]
    frame_indices: list[int]
    media_type: str
    options: RenderOptions = field(default_factory=RenderOptions)

    def filenames(self) -> list[str]:
        """Names of the artifacts under the render's store prefix, one per entry of `images`."""
        form = self.options.form
        if form == "frame_by_frame":
            return [f"frame-{i:05d}.png" for i in self.frame_indices]
        if form in _VIDEOS:
            return [_VIDEOS[form][2]]
        return {"full_image": ["full.png"], "trajectory_image": ["trajectory.png"]}[form]


def default_renderer() -> MotionRenderer:
    """The process-wide renderer (created on first use)."""
    global _default_renderer
    with _default_lock:
        if _default_renderer is None:
            _default_renderer = MotionRenderer()
        return _default_renderer


def body_for(style: str, smpl_model=None):
    """The body geometry for a style. `smpl_model`: an SmplBody, a path to the .npz, or None
    for $ATOM_SMPL_MODEL. Raises SmplModelMissing when mesh is asked for without a model."""
    if style == "skeleton":
        return _skeleton
    from services.renderer.smpl import SmplBody, find_smpl_model

    if isinstance(smpl_model, SmplBody):
        return smpl_model
    path = find_smpl_model(smpl_model)
    key = str(path.resolve())
    with _default_lock:
        if key not in _smpl_bodies:
            _smpl_bodies[key] = SmplBody.from_file(path)
        return _smpl_bodies[key]


def render(joints, options: RenderOptions = RenderOptions(), *, renderer: MotionRenderer | None = None, smpl_model=None) -> RenderOutput:
    """Render one motion (T, 22, 3) in the form the options ask for.

    Only the sampled frames (0, k, 2k, ...) are drawn, except for the video, which holds every
    frame. Raises RenderInputError for bad joints or options, SmplModelMissing for style='mesh'
    without model files, RendererUnavailable when no headless OpenGL can start.
    """
    if not isinstance(options, RenderOptions):
        raise RenderInputError(f"options must be a RenderOptions, got {type(options).__name__}")
    joints = check_joints(joints)
    body = body_for(options.style, smpl_model)
    mr = renderer if renderer is not None else default_renderer()
    w, h = options.width, options.height
    T = len(joints)

    if options.form in _VIDEOS:
        encode, media_type, _name = _VIDEOS[options.form]
        indices = list(range(T))
        frames = mr.iter_frames(joints, indices, body, camera=options.camera, width=w, height=h, samples=VIDEO_SAMPLES)
        try:
            data = encode(frames, w, h, FPS)
        finally:
            frames.close()  # releases the renderer even if encoding failed part-way
        return RenderOutput([data], indices, media_type, options)

    indices = sample_indices(T, options.interval)
    if options.form == "trajectory_image":
        img = mr.render_trajectory(joints, indices, body, width=w, height=h)
        return RenderOutput([encode_png(img)], indices, PNG, options)
    frames = mr.render_frames(joints, indices, body, camera=options.camera, width=w, height=h)
    if options.form == "full_image":
        return RenderOutput([encode_png(full_image(frames, indices, FPS))], indices, PNG, options)
    return RenderOutput([encode_png(f) for f in frames], indices, PNG, options)


# ----------------------------------------------------------------------------------------------
# Store layout: renders/<motion>/<variant>/{frame-00000.png..., full.png, trajectory.png,
# motion.mp4, manifest.json}. The manifest is written last: its presence means the render is
# complete, so a crash mid-way leaves a render that is redone, never a partial one that is served.
# ----------------------------------------------------------------------------------------------


def save_render(store, motion_sha256: str, output: RenderOutput) -> list[str]:
    """Write a render's files and manifest under its cache prefix; returns the file keys."""
    prefix = cache_key(motion_sha256, output.options)
    keys = []
    for name, data in zip(output.filenames(), output.images):
        key = prefix + name
        store.put_bytes(key, data, output.media_type)
        keys.append(key)
    opts = output.options
    store.put_json(
        prefix + "manifest.json",
        {
            "motion": motion_sha256,
            "options": {
                "form": opts.form,
                "interval": opts.interval,
                "width": opts.width,
                "height": opts.height,
                "style": opts.style,
                "camera": opts.camera,
            },
            "files": [k[len(prefix) :] for k in keys],
            "frame_indices": list(map(int, output.frame_indices)),
            "media_type": output.media_type,
            "fps": FPS,
            "render_version": RENDER_VERSION,
        },
    )
    return keys


def load_render(store, motion_sha256: str, options: RenderOptions) -> RenderOutput | None:
    """The cached render for these options, or None when it is absent or incomplete."""
    prefix = cache_key(motion_sha256, options)
    if not store.exists(prefix + "manifest.json"):
        return None
    manifest = store.get_json(prefix + "manifest.json")
    if manifest.get("render_version") != RENDER_VERSION:
        return None
    try:
        images = [store.get_bytes(prefix + name) for name in manifest["files"]]
    except KeyError:  # ArtifactNotFound is a KeyError: a file vanished, render again
        return None
    return RenderOutput(images, [int(i) for i in manifest["frame_indices"]], manifest["media_type"], options)


def render_cached(store, motion_sha256: str, joints, options: RenderOptions = RenderOptions(), **kwargs) -> tuple[RenderOutput, bool]:
    """Serve from the store when present, else render and save. Returns (output, was_cached)."""
    cached = load_render(store, motion_sha256, options)
    if cached is not None:
        return cached, True
    out = render(joints, options, **kwargs)
    save_render(store, motion_sha256, out)
    return out, False


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> (H, W, 3) uint8 (for tests and tools)."""
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
