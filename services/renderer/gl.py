"""Headless OpenGL set-up for pyrender: platform choice and the numpy 2 shim.

Everything here must run before the first `import OpenGL` / `import pyrender` in the process,
because PyOpenGL binds its platform (EGL, OSMesa, GLX) once, at import time. Import pyrender
through `load_pyrender()` and never directly.

Platform choice, in order:
  1. PYOPENGL_PLATFORM, if the user set it (we respect it; only "egl" and "osmesa" are headless);
  2. ATOM_GL_PLATFORM ("egl" or "osmesa");
  3. "egl" (works on Mesa llvmpipe without a display and on NVIDIA GPUs; EGL_DEVICE_ID picks
     the GPU).

Traps measured on this project: with PYOPENGL_PLATFORM unset pyrender
looks for an X display and fails; OSMesa needs PyOpenGL >= 3.1.10 but pyrender pins 3.1.0;
OpenGL.ERROR_CHECKING = False breaks EGL context creation, so we leave error checking on.
"""

from __future__ import annotations

import os
import sys
import threading
import types

import numpy as np

PLATFORM_ENV = "ATOM_GL_PLATFORM"
HEADLESS_PLATFORMS = ("egl", "osmesa")

_lock = threading.Lock()
_pyrender = None


class RendererUnavailable(RuntimeError):
    """Headless OpenGL cannot be set up here; the message says why and what to install or set."""


def apply_numpy_shims() -> None:
    """Restore `np.infty`, which numpy 2 removed and pyrender 0.1.45 still uses.

    pyrender computes mesh and scene bounds with `np.infty`; without the alias every mesh without
    primitives, every scene-bounds query and every shadow pass raises AttributeError under
    numpy 2. `np.inf` is the same float, so the alias changes no behaviour. Setting it as a
    module attribute wins over numpy's module-level __getattr__ that raises for expired names.
    """
    if "infty" not in np.__dict__:
        np.infty = np.inf  # type: ignore[attr-defined]


def choose_platform() -> str:
    """Pick the PyOpenGL platform and export PYOPENGL_PLATFORM; returns its name."""
    user = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if user:
        if user not in HEADLESS_PLATFORMS:
            raise RendererUnavailable(
                f"PYOPENGL_PLATFORM={user!r} is not a headless platform; the renderer needs 'egl' "
                "(default) or 'osmesa'. Unset PYOPENGL_PLATFORM or set it to 'egl'."
            )
        platform = user
    else:
        platform = os.environ.get(PLATFORM_ENV, "egl").strip().lower() or "egl"
        if platform not in HEADLESS_PLATFORMS:
            raise RendererUnavailable(f"{PLATFORM_ENV}={platform!r} is unknown; use 'egl' (default) or 'osmesa'.")
    if "OpenGL" in sys.modules:
        bound = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
        if bound != platform:
            raise RendererUnavailable(
                f"PyOpenGL was imported before the renderer chose the {platform!r} platform "
                f"(it is bound to {bound or 'its default (a display)'}). Import "
                "services.renderer before anything that imports OpenGL or pyrender."
            )
    os.environ["PYOPENGL_PLATFORM"] = platform
    return platform


def _check_osmesa() -> None:
    try:
        from OpenGL import osmesa  # noqa: F401
        from OpenGL.osmesa import OSMesaCreateContextAttribs  # noqa: F401
    except Exception as exc:  # ImportError, or a missing libOSMesa raising at load
        import OpenGL

        raise RendererUnavailable(
            f"OSMesa rendering is not available ({type(exc).__name__}: {exc}). It needs the "
            f"system library libosmesa6 and PyOpenGL >= 3.1.10 (installed: {OpenGL.__version__}; "
            "pyrender pins 3.1.0). Use EGL instead: unset ATOM_GL_PLATFORM (EGL works on Mesa "
            "llvmpipe without a GPU given libegl1 and libegl-mesa0)."
        ) from None


def load_pyrender():
    """Set up the platform and the numpy shim, then import and return the pyrender module."""
    global _pyrender
    with _lock:
        if _pyrender is not None:
            return _pyrender
        apply_numpy_shims()
        platform = choose_platform()
        try:
            import OpenGL  # noqa: F401
        except Exception as exc:
            raise RendererUnavailable(f"PyOpenGL cannot be imported: {exc}") from None
        if platform == "osmesa":
            _check_osmesa()
        try:
            import pyrender
        except Exception as exc:
            hint = (
                "install the Mesa EGL packages (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri)"
                if platform == "egl"
                else "install libosmesa6 and PyOpenGL >= 3.1.10"
            )
            raise RendererUnavailable(
                f"pyrender failed to import on the {platform!r} platform ({type(exc).__name__}: {exc}); {hint}."
            ) from None
        _pyrender = pyrender
        return pyrender


def create_offscreen(width: int, height: int):
    """An OffscreenRenderer for the chosen platform, with a clear error when it cannot start.

    Its `delete` (also what its finaliser calls) is replaced by `_delete_keeping_display`: pyrender
    ends with eglTerminate on the EGL display, which all contexts of the process share, so one
    renderer being closed or garbage-collected would break every other one.
    """
    pyrender = load_pyrender()
    try:
        offscreen = pyrender.OffscreenRenderer(int(width), int(height))
        offscreen.delete = types.MethodType(_delete_keeping_display, offscreen)
        return offscreen
    except RendererUnavailable:
        raise
    except Exception as exc:
        platform = os.environ.get("PYOPENGL_PLATFORM")
        raise RendererUnavailable(
            f"could not create a headless OpenGL context on {platform!r} "
            f"({type(exc).__name__}: {exc}). For EGL install libegl1, libegl-mesa0 and "
            "libgl1-mesa-dri (software rendering works without a GPU); on a multi-GPU host pick "
            "the device with EGL_DEVICE_ID."
        ) from None


def release_context(platform) -> None:
    """Detach the GL context from the calling thread so another thread can make it current.

    pyrender's EGL platform has a no-op make_uncurrent, which leaves the context bound to the
    last thread that drew; EGL then refuses it to any other thread (EGL_BAD_ACCESS), which breaks
    renderers shared by a server's worker threads.
    """
    display = getattr(platform, "_egl_display", None)
    if display is not None:
        from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglMakeCurrent

        eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
    else:
        platform.make_uncurrent()


def _delete_keeping_display(offscreen) -> None:
    """Free an OffscreenRenderer's GL objects and context, but not the shared EGL display."""
    platform = getattr(offscreen, "_platform", None)
    if platform is None:
        return
    renderer = getattr(offscreen, "_renderer", None)
    offscreen._platform = offscreen._renderer = None
    try:
        platform.make_current()
        if renderer is not None:
            renderer.delete()
    except Exception:  # a context that is already gone has nothing left to free
        pass
    finally:
        release_context(platform)
        display = getattr(platform, "_egl_display", None)
        if display is not None:
            from OpenGL.EGL import eglDestroyContext

            if platform._egl_context is not None:
                eglDestroyContext(display, platform._egl_context)
            platform._egl_context = None
            platform._egl_display = None
        else:
            platform.delete_context()
