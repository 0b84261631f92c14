"""Render options, input validation and the store layout of renders."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from atom.motion.record import MotionFormatError, validate_joints
from atom.settings import RenderSettings

FORMS = ("frame_by_frame", "full_image", "trajectory_image", "video", "webm", "gif")
VIDEO_FORMS = ("video", "webm", "gif")
STYLES = ("skeleton", "mesh")
CAMERAS = ("follow", "fixed")
MIN_SIZE, MAX_SIZE = 32, 2048
MAX_INTERVAL = 1000
_DEFAULTS = RenderSettings()  # the one place the render defaults are written
DEFAULT_INTERVAL = _DEFAULTS.interval

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class RenderInputError(ValueError):
    """The motion or the options cannot be rendered; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class RenderOptions:
    """How to render one motion.

    form: frame_by_frame (one PNG per sampled frame), full_image (sampled frames tiled 5 per row
      into one PNG), trajectory_image (all sampled poses in one PNG with the root path), video
      (an H.264 mp4 of every frame at 20 fps, for people), webm (the same as VP9 WebM, for web
      pages: every browser plays it) or gif (the same as a looping GIF, shown inline anywhere).
    interval: render frames 0, k, 2k, ... (the paper's default k = 8).
    width, height: pixels of each rendered frame (a full_image is 5 frames wide).
    style: skeleton (always available) or mesh (an SMPL body; needs SMPL model arrays).
    camera: follow (tracks the smoothed root) or fixed (frames the whole motion once).
    """

    form: str = _DEFAULTS.form
    interval: int = DEFAULT_INTERVAL
    width: int = _DEFAULTS.size
    height: int = _DEFAULTS.size
    style: str = _DEFAULTS.style
    camera: str = "follow"

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise RenderInputError(f"unknown form {self.form!r}; choose one of {', '.join(FORMS)}")
        if self.style not in STYLES:
            raise RenderInputError(f"unknown style {self.style!r}; choose one of {', '.join(STYLES)}")
        if self.camera not in CAMERAS:
            raise RenderInputError(f"unknown camera {self.camera!r}; choose one of {', '.join(CAMERAS)}")
        for name in ("interval", "width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise RenderInputError(f"{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not 1 <= self.interval <= MAX_INTERVAL:
            raise RenderInputError(f"interval must be between 1 and {MAX_INTERVAL} frames, got {self.interval}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not MIN_SIZE <= value <= MAX_SIZE:
                raise RenderInputError(f"{name} must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {value}")
        if self.form in VIDEO_FORMS and (self.width % 2 or self.height % 2):
            raise RenderInputError(f"{self.form} needs an even width and height (yuv420p), got {self.width}x{self.height}")

    @classmethod
    def with_defaults(
        cls, form: str = "", interval: int = 0, width: int = 0, height: int = 0, style: str = "", camera: str = ""
    ) -> "RenderOptions":
        """Options from a message whose unset fields are 0 / "" (proto3), which mean the defaults."""
        # the class attributes are the fields' defaults
        return cls(
            form=form or cls.form,
            interval=interval or cls.interval,
            width=width or cls.width,
            height=height or cls.height,
            style=style or cls.style,
            camera=camera or cls.camera,
        )

    @property
    def variant(self) -> str:
        """The folder name of this render under renders/<motion>/.

        A non-default camera is appended so a fixed-camera render never overwrites or is served
        for a follow-camera one; the default layout stays <form>-k<interval>-<w>x<h>-<style>.
        """
        name = f"{self.form}-k{self.interval}-{self.width}x{self.height}-{self.style}"
        if self.camera != "follow":
            name += f"-{self.camera}"
        return name


def cache_key(motion_sha256: str, options: RenderOptions) -> str:
    """Store prefix of a render: renders/<motion>/<form>-k<interval>-<w>x<h>-<style>/ ."""
    if not isinstance(motion_sha256, str) or not _SHA256.match(motion_sha256):
        raise RenderInputError(f"motion id must be a lowercase 64-character sha256 hex digest, got {motion_sha256!r}")
    return f"renders/{motion_sha256}/{options.variant}/"


def check_joints(joints) -> np.ndarray:
    """Validate a (T, 22, 3) joint array the way every service does (atom.motion.record), as float64
    for drawing. Integer arrays are accepted here (a library caller's test pose); the wire format
    is float32. Raises RenderInputError."""
    try:
        arr = np.asarray(joints)
    except Exception as exc:
        raise RenderInputError(f"joints are not an array: {exc}") from None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise RenderInputError(f"joints must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    try:
        validate_joints(arr)
    except MotionFormatError as exc:
        raise RenderInputError(str(exc)) from None
    return arr
