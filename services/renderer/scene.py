"""One reusable pyrender scene: a static floor mesh and one dynamic mesh updated in place.

Speed (measured at 256x256 on Mesa llvmpipe, one core): a scene with one node per joint and bone
drew about 14 frames/s. What this module does instead:
  - everything that moves is one mesh, so a frame is two draw calls (floor + dynamic mesh);
  - the dynamic mesh's vertex buffer is overwritten with glBufferSubData, with no re-creation of
    buffers or vertex arrays between frames of a motion;
  - lighting is baked into vertex colours and the scene is drawn unlit (see shading.py);
  - the floor is one textured quad, not a mesh of checker tiles (see floor.py);
  - only the colour buffer is read back (pyrender also reads and linearises depth every frame);
  - shader uniform locations are looked up once, not on every call;
  - multisampling is configurable (off by default: 4x costs about 40% more per frame).
The renderer, context, shaders and framebuffer live as long as this object.

pyrender is pinned (0.1.45); this module touches four of its internals: `Primitive._buffers[0]`
(the interleaved vertex buffer), `Renderer._configure_main_framebuffer`,
`Renderer._read_main_framebuffer` and `Renderer._program_cache` (replaced or wrapped on our
instance only; pyrender's classes are not modified).
"""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager
from typing import Any

import numpy as np

from services.renderer.floor import BACKGROUND
from services.renderer.gl import RendererUnavailable, create_offscreen, load_pyrender, release_context


def _configure_framebuffer(self):
    """Replacement for pyrender's framebuffer set-up with a configurable sample count.

    pyrender always renders into a 4x multisampled buffer. Multisampling costs about 40% of the
    frame time on a software rasteriser; with `self._atom_samples == 0` we draw straight into a
    single-sample buffer and the read skips the resolve blit.
    """
    from OpenGL.GL import (
        GL_COLOR_ATTACHMENT0,
        GL_DEPTH_ATTACHMENT,
        GL_DEPTH_COMPONENT24,
        GL_DRAW_FRAMEBUFFER,
        GL_RENDERBUFFER,
        GL_RGBA,
        glBindFramebuffer,
        glBindRenderbuffer,
        glFramebufferRenderbuffer,
        glGenFramebuffers,
        glGenRenderbuffers,
        glRenderbufferStorage,
        glRenderbufferStorageMultisample,
    )

    size = (self.viewport_width, self.viewport_height)
    if self._main_fb is not None and self._main_fb_dims != size:
        self._delete_main_framebuffer()
    if self._main_fb is not None:
        return

    def make(samples):
        colour, depth = glGenRenderbuffers(2)
        for rb, fmt in ((colour, GL_RGBA), (depth, GL_DEPTH_COMPONENT24)):
            glBindRenderbuffer(GL_RENDERBUFFER, rb)
            if samples:
                glRenderbufferStorageMultisample(GL_RENDERBUFFER, samples, fmt, *size)
            else:
                glRenderbufferStorage(GL_RENDERBUFFER, fmt, *size)
        fb = glGenFramebuffers(1)
        glBindFramebuffer(GL_DRAW_FRAMEBUFFER, fb)
        glFramebufferRenderbuffer(GL_DRAW_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, colour)
        glFramebufferRenderbuffer(GL_DRAW_FRAMEBUFFER, GL_DEPTH_ATTACHMENT, GL_RENDERBUFFER, depth)
        return fb, colour, depth

    self._main_fb, self._main_cb, self._main_db = make(0)
    if self._atom_samples:
        self._main_fb_ms, self._main_cb_ms, self._main_db_ms = make(self._atom_samples)
    else:
        # pyrender deletes "both" buffers as pairs; a second single-sample set keeps that valid.
        self._main_fb_ms, self._main_cb_ms, self._main_db_ms = make(0)
    self._main_fb_dims = size


def _read_colour_only(self, scene, flags):
    """Replacement for pyrender's framebuffer read: resolve the multisampled colour buffer and
    read RGB only. Skipping the depth read and its float conversion saves a copy per frame."""
    from OpenGL.GL import (
        GL_COLOR_BUFFER_BIT,
        GL_DRAW_FRAMEBUFFER,
        GL_LINEAR,
        GL_PACK_ALIGNMENT,
        GL_READ_FRAMEBUFFER,
        GL_RGB,
        GL_UNSIGNED_BYTE,
        glBindFramebuffer,
        glBlitFramebuffer,
        glPixelStorei,
        glReadPixels,
    )

    width, height = self._main_fb_dims
    if self._atom_samples:
        glBindFramebuffer(GL_READ_FRAMEBUFFER, self._main_fb_ms)
        glBindFramebuffer(GL_DRAW_FRAMEBUFFER, self._main_fb)
        glBlitFramebuffer(0, 0, width, height, 0, 0, width, height, GL_COLOR_BUFFER_BIT, GL_LINEAR)
        glBindFramebuffer(GL_READ_FRAMEBUFFER, self._main_fb)
    else:
        glBindFramebuffer(GL_READ_FRAMEBUFFER, self._main_fb_ms)
    glPixelStorei(GL_PACK_ALIGNMENT, 1)  # rows of odd widths are not padded to 4 bytes
    buf = glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE)
    img = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
    return np.ascontiguousarray(img[::-1])


def _set_uniform_cached(self, name, value, unsigned=False):
    """pyrender's ShaderProgram.set_uniform with the uniform location looked up once per program.

    pyrender asks GL for the location on every call (17 calls a frame here, each through
    PyOpenGL's wrappers); caching it saves about a tenth of a frame. Values are passed exactly
    as pyrender passes them, and unknown names are ignored as pyrender's own try/except does.
    """
    from OpenGL.GL import GL_TRUE, glGetUniformLocation, glUniform1f, glUniform1i, glUniform1ui

    cache = self.__dict__.setdefault("_atom_uniform_locations", {})
    key = (self._program_id, name)
    loc = cache.get(key)
    if loc is None:
        loc = cache[key] = glGetUniformLocation(self._program_id, name)
    if loc == -1:
        return
    if isinstance(value, np.ndarray):
        if value.ndim == 1:
            if np.issubdtype(value.dtype, np.unsignedinteger) or unsigned:
                self._FUNC_MAP[(value.shape[0], "u")](loc, 1, value.astype(np.uint32))
            elif np.issubdtype(value.dtype, np.integer):
                self._FUNC_MAP[(value.shape[0], "i")](loc, 1, value.astype(np.int32))
            else:
                self._FUNC_MAP[(value.shape[0], "f")](loc, 1, value.astype(np.float32))
        else:
            self._FUNC_MAP[(value.shape[0], value.shape[1])](loc, 1, GL_TRUE, value)
    elif isinstance(value, float):
        glUniform1f(loc, value)
    elif isinstance(value, (bool, int)):
        (glUniform1ui if unsigned else glUniform1i)(loc, int(value))


class _CachingProgramCache:
    """Wraps pyrender's ShaderProgramCache so the programs it hands to our renderer use
    `_set_uniform_cached` (set on each program instance; pyrender's class is untouched)."""

    def __init__(self, inner):
        self._inner = inner

    def get_program(self, *args, **kwargs):
        program = self._inner.get_program(*args, **kwargs)
        if "set_uniform" not in program.__dict__:
            program.set_uniform = types.MethodType(_set_uniform_cached, program)
        return program

    def __getattr__(self, name):
        return getattr(self._inner, name)


# pyrender interleaves a primitive's attributes in one buffer: position (3) then colour_0 (4).
VERTEX_FLOATS = 7


class SceneRenderer:
    """A headless GL context with a floor and one dynamic mesh; `draw(camera_pose)` -> RGB array.

    Safe to share between threads: each GL use holds `lock` with the context current on the
    calling thread and releases it afterwards (callers that prepare several draws, such as
    MotionRenderer, hold `lock` across them). Draws are serialised, never parallel.
    """

    def __init__(self, width: int = 256, height: int = 256, yfov: float = np.radians(40.0), samples: int = 0):
        self._pr = load_pyrender()
        self.width, self.height = int(width), int(height)
        self.lock = threading.RLock()
        self.frames_drawn = 0  # counts draw() calls; tests use it to check sampling
        self._offscreen = create_offscreen(self.width, self.height)
        # pyrender leaves a new context current on the creating thread; release it so any thread
        # (a gRPC worker, say) can take it. Every use below makes it current and releases it.
        release_context(self._offscreen._platform)
        renderer = getattr(self._offscreen, "_renderer", None)
        if renderer is None or not hasattr(renderer, "_read_main_framebuffer"):
            raise RendererUnavailable("unsupported pyrender version: expected pyrender 0.1.45's Renderer")
        if samples not in (0, 2, 4, 8):
            raise ValueError(f"samples must be 0 (no antialiasing), 2, 4 or 8, got {samples}")
        renderer._atom_samples = int(samples)
        renderer._delete_main_framebuffer()
        renderer._configure_main_framebuffer = types.MethodType(_configure_framebuffer, renderer)
        renderer._read_main_framebuffer = types.MethodType(_read_colour_only, renderer)
        renderer._program_cache = _CachingProgramCache(renderer._program_cache)

        self.scene = self._pr.Scene(bg_color=np.append(BACKGROUND, 1.0).astype(float), ambient_light=np.zeros(3))
        self._camera = self._pr.PerspectiveCamera(yfov=float(yfov), aspectRatio=self.width / self.height, znear=0.05, zfar=200.0)
        self._camera_node = self.scene.add(self._camera, pose=np.eye(4))
        self._material = self._pr.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0, roughnessFactor=1.0)
        self._floor_node = None
        self._floor_key = None
        self._dyn_node = None
        self._dyn_primitive: Any = None  # a pyrender.Primitive (pyrender has no type information)
        self._dyn_vertices = 0
        self._dyn_buffer: np.ndarray | None = None
        self._dyn_dirty = False
        self._flags = self._pr.RenderFlags.FLAT

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def resize(self, width: int, height: int) -> None:
        """Change the output size; the framebuffer is recreated on the next draw."""
        width, height = int(width), int(height)
        if (width, height) == (self.width, self.height):
            return
        self.width, self.height = width, height
        self._offscreen.viewport_width, self._offscreen.viewport_height = width, height
        self._camera.aspectRatio = width / height

    @property
    def floor_key(self):
        """The key the current floor was set with (None before the first floor)."""
        return self._floor_key

    @property
    def samples(self) -> int:
        return self._offscreen._renderer._atom_samples

    def set_samples(self, samples: int) -> None:
        """Multisampling for the next draws: 0 (none, fastest), 2, 4 or 8."""
        if samples not in (0, 2, 4, 8):
            raise ValueError(f"samples must be 0 (no antialiasing), 2, 4 or 8, got {samples}")
        renderer = self._offscreen._renderer
        if renderer._atom_samples != samples:
            with self._current():
                renderer._delete_main_framebuffer()
            renderer._atom_samples = int(samples)

    def set_fov(self, yfov: float) -> None:
        self._camera.yfov = float(yfov)

    def set_floor(self, positions: np.ndarray, texcoords: np.ndarray, faces: np.ndarray, texture: np.ndarray, key=None) -> None:
        """Replace the static floor: a mesh textured with an RGB image repeated over texcoords.
        A repeated `key` keeps the current floor (no re-upload)."""
        if key is not None and key == self._floor_key and self._floor_node is not None:
            return
        from OpenGL.GL import GL_LINEAR, GL_LINEAR_MIPMAP_NEAREST, GL_REPEAT

        if self._floor_node is not None:
            self.scene.remove_node(self._floor_node)
        sampler = self._pr.Sampler(magFilter=GL_LINEAR, minFilter=GL_LINEAR_MIPMAP_NEAREST, wrapS=GL_REPEAT, wrapT=GL_REPEAT)
        tex = self._pr.Texture(source=texture, source_channels="RGB", sampler=sampler)
        material = self._pr.MetallicRoughnessMaterial(
            baseColorFactor=[1.0, 1.0, 1.0, 1.0], baseColorTexture=tex, metallicFactor=0.0, roughnessFactor=1.0
        )
        prim = self._pr.Primitive(positions=positions, texcoord_0=texcoords, indices=faces, material=material)
        self._floor_node = self.scene.add(self._pr.Mesh([prim]))
        self._floor_key = key

    def set_dynamic(self, num_vertices: int, faces: np.ndarray) -> None:
        """Allocate the moving mesh for a fixed topology (one per motion and style)."""
        if self._dyn_node is not None:
            self.scene.remove_node(self._dyn_node)
        zeros = np.zeros((num_vertices, 3), np.float32)
        prim = self._pr.Primitive(
            positions=zeros,
            color_0=np.ones((num_vertices, 4), np.float32),
            indices=np.asarray(faces, np.uint32),
            material=self._material,
        )
        self._dyn_node = self.scene.add(self._pr.Mesh([prim]))
        self._dyn_primitive = prim
        self._dyn_vertices = num_vertices
        self._dyn_buffer = None
        self._dyn_dirty = False

    def update_dynamic(self, positions: np.ndarray, colors: np.ndarray) -> None:
        """Overwrite the moving mesh's vertices (V, 3) and colours (V, 3) for the next draw."""
        buf = np.ones((self._dyn_vertices, VERTEX_FLOATS), np.float32)
        buf[:, 0:3] = positions
        buf[:, 3:6] = colors
        self.set_vertex_buffer(buf)

    def set_vertex_buffer(self, buffer: np.ndarray) -> None:
        """Use an interleaved (V, 7) float32 buffer (x, y, z, r, g, b, a) for the next draw.

        The array is uploaded as is at draw time (no copy), so callers can prepare the buffers
        of many frames in one vectorised pass and hand over one row-block per frame.
        """
        if self._dyn_primitive is None:
            raise RuntimeError("set_dynamic() must be called before the vertices are set")
        if buffer.shape != (self._dyn_vertices, VERTEX_FLOATS) or buffer.dtype != np.float32:
            raise ValueError(f"vertex buffer must be ({self._dyn_vertices}, {VERTEX_FLOATS}) float32, got {buffer.shape} {buffer.dtype}")
        self._dyn_buffer = np.ascontiguousarray(buffer)
        self._dyn_dirty = True

    def _upload(self) -> None:
        from OpenGL.GL import GL_ARRAY_BUFFER, glBindBuffer, glBufferSubData

        prim, buf = self._dyn_primitive, self._dyn_buffer
        assert buf is not None  # draw uploads only after set_vertex_buffer
        if not prim._in_context():
            # First draw of this mesh: pyrender creates the buffers from the primitive's arrays.
            prim.positions = np.ascontiguousarray(buf[:, 0:3])
            prim.color_0 = np.ascontiguousarray(buf[:, 3:7])
            return
        glBindBuffer(GL_ARRAY_BUFFER, prim._buffers[0])
        glBufferSubData(GL_ARRAY_BUFFER, 0, buf.nbytes, buf)
        glBindBuffer(GL_ARRAY_BUFFER, 0)

    @contextmanager
    def _current(self):
        """Hold the lock with the GL context current on this thread; release both after."""
        with self.lock:
            platform = self._offscreen._platform
            platform.make_current()
            try:
                yield
            finally:
                release_context(platform)

    def draw(self, camera_pose: np.ndarray) -> np.ndarray:
        """Render the scene from camera_pose (4x4 camera-to-world) -> (H, W, 3) uint8."""
        with self._current():
            self.scene.set_pose(self._camera_node, camera_pose)
            if self._dyn_dirty:
                self._upload()
                self._dyn_dirty = False
            # OffscreenRenderer.render makes the context current again and releases it itself.
            img = self._offscreen.render(self.scene, flags=self._flags)
        self.frames_drawn += 1
        return img

    def close(self) -> None:
        """Free this renderer's GL objects and context (the shared EGL display stays up)."""
        with self.lock:
            if self._offscreen is not None:
                offscreen, self._offscreen = self._offscreen, None
                offscreen.delete()  # gl._delete_keeping_display

    def __enter__(self) -> "SceneRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
