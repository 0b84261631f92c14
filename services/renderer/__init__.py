"""Headless rendering of 22-joint HumanML3D motions for the VLM judge and for people.

Public API (see api.py):
    render(joints, RenderOptions(...)) -> RenderOutput(images, frame_indices, media_type)
    cache_key(motion_sha256, options) -> "renders/<motion>/<form>-k<k>-<w>x<h>-<style>/"
    render_cached / save_render / load_render   (store-backed cache of renders)
    sample_indices(num_frames, k)                (frames 0, k, 2k, ...)
    convert_smpl_pkl(pkl_path, out_npz)          (one-time SMPL model conversion)

Importing this package chooses the headless OpenGL platform (EGL unless PYOPENGL_PLATFORM or
ATOM_GL_PLATFORM say otherwise) before anything imports PyOpenGL; see gl.py.
"""

import os as _os
import sys as _sys

# PyOpenGL binds its platform at import: export the choice now, before any other module can
# import OpenGL. Errors (a bad value) are raised later, when a renderer is actually created.
if "OpenGL" not in _sys.modules and not _os.environ.get("PYOPENGL_PLATFORM"):
    _choice = _os.environ.get("ATOM_GL_PLATFORM", "egl").strip().lower()
    if _choice in ("egl", "osmesa"):
        _os.environ["PYOPENGL_PLATFORM"] = _choice

from services.renderer.api import (  # noqa: E402
    MP4,
    PNG,
    RenderOutput,
    default_renderer,
    load_render,
    render,
    render_cached,
    save_render,
)
from services.renderer.gl import RendererUnavailable  # noqa: E402
from services.renderer.options import (  # noqa: E402
    CAMERAS,
    FORMS,
    STYLES,
    RenderInputError,
    RenderOptions,
    cache_key,
)
from services.renderer.sampling import sample_indices  # noqa: E402
from services.renderer.smpl import SmplModelError, SmplModelMissing, convert_smpl_pkl  # noqa: E402

__all__ = [
    "CAMERAS",
    "FORMS",
    "MP4",
    "PNG",
    "STYLES",
    "RenderInputError",
    "RenderOptions",
    "RenderOutput",
    "RendererUnavailable",
    "SmplModelError",
    "SmplModelMissing",
    "cache_key",
    "convert_smpl_pkl",
    "default_renderer",
    "load_render",
    "render",
    "render_cached",
    "sample_indices",
    "save_render",
]
