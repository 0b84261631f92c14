"""Quick matplotlib views of a 22-joint skeleton, for a person to check a motion by eye.

Chains are coloured like the field's quick plots: right limbs red, left limbs blue, spine dark,
on a grey floor, with the camera following the root. Rendering goes through the Agg canvas
directly (no pyplot, no global backend switch), and one figure is reused for every frame.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from atom.motion.record import validate_joints
from atom.motion.skeleton import CHAIN_NAMES, FPS, KINEMATIC_CHAINS

CHAIN_COLORS = {
    "right_leg": "#c0392b",
    "left_leg": "#1f4e9c",
    "spine": "#222222",
    "right_arm": "#e8584a",
    "left_arm": "#3d8fd6",
}
FLOOR_COLOR = (0.55, 0.55, 0.55, 0.45)
TRAIL_COLOR = "#7f7f7f"


def _to_plot(p: np.ndarray) -> np.ndarray:
    """HumanML3D (x, y up, z) -> matplotlib (x, -z, y up). A rotation, not a mirror, so left
    and right stay where they are; a body facing +Z faces the default camera."""
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


class SkeletonView:
    """One reusable 3D axes; `draw` poses it and returns the RGB pixels."""

    def __init__(
        self,
        size: int = 256,
        radius: float = 1.0,
        elev: float = 18.0,
        azim: float = -70.0,
        title: str | None = None,
        dpi: int = 100,
        fig=None,
        rect=None,
    ):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from mpl_toolkits.mplot3d.art3d import Poly3DCollection

        if fig is None:
            fig = Figure(figsize=(size / dpi, size / dpi), dpi=dpi)
            FigureCanvasAgg(fig)
        self.fig = fig
        self.radius = float(radius)
        ax = fig.add_axes(rect or (0.0, 0.0, 1.0, 1.0), projection="3d")
        ax.view_init(elev=elev, azim=azim)
        ax.set_box_aspect((1, 1, 1), zoom=1.3)
        ax.set_axis_off()
        self.ax = ax
        self.floor = Poly3DCollection([np.zeros((4, 3))], facecolors=[FLOOR_COLOR], edgecolors="none")
        ax.add_collection3d(self.floor)
        (self.trail,) = ax.plot([], [], [], color=TRAIL_COLOR, lw=1.0)
        self.lines = []
        for name, chain in zip(CHAIN_NAMES, KINEMATIC_CHAINS):
            width = 2.5 if name == "spine" else 2.0
            (line,) = ax.plot([], [], [], color=CHAIN_COLORS[name], lw=width, solid_capstyle="round")
            self.lines.append((line, list(chain)))
        self.title = ax.set_title(title or "", fontsize=8) if title is not None else None
        self.label = ax.text2D(0.02, 0.02, "", transform=ax.transAxes, fontsize=7, color="#444444")

    def pose(self, joints: np.ndarray, floor_y: float, trail: np.ndarray | None = None, label: str = "") -> None:
        p = _to_plot(np.asarray(joints, dtype=np.float64))
        cx, cy = p[0, 0], p[0, 1]
        r = self.radius
        self.ax.set_xlim(cx - r, cx + r)
        self.ax.set_ylim(cy - r, cy + r)
        self.ax.set_zlim(floor_y, floor_y + 2 * r)
        self.floor.set_verts([[(cx - r, cy - r, floor_y), (cx + r, cy - r, floor_y), (cx + r, cy + r, floor_y), (cx - r, cy + r, floor_y)]])
        if trail is not None and len(trail):
            t = _to_plot(np.asarray(trail, dtype=np.float64))
            self.trail.set_data_3d(t[:, 0], t[:, 1], np.full(len(t), floor_y))
        for line, chain in self.lines:
            line.set_data_3d(p[chain, 0], p[chain, 1], p[chain, 2])
        self.label.set_text(label)

    def pixels(self) -> np.ndarray:
        canvas = self.fig.canvas
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def iter_skeleton_frames(joints: np.ndarray, size: int = 256, title: str | None = None, every: int = 1, radius: float | None = None):
    """Yield (H, W, 3) uint8 frames of the motion, one per `every` frames. The camera frames a
    box of half-width `radius` metres around the root (default: fitted to the clip)."""
    joints = validate_joints(joints).astype(np.float64)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    floor_y = float(joints[..., 1].min())
    view = SkeletonView(size=size, title=title, radius=radius or _radius(joints))
    for t in range(0, len(joints), every):
        view.pose(joints[t], floor_y, trail=joints[: t + 1, 0], label=f"{t}/{len(joints) - 1}")
        yield view.pixels()


def render_skeleton_frames(
    joints: np.ndarray, size: int = 256, title: str | None = None, every: int = 1, radius: float | None = None
) -> np.ndarray:
    """All frames at once: (ceil(T / every), H, W, 3) uint8."""
    return np.stack(list(iter_skeleton_frames(joints, size=size, title=title, every=every, radius=radius)))


def _radius(joints: np.ndarray) -> float:
    # Room for the tallest pose and the widest reach from the root, at least a metre.
    height = float(joints[..., 1].max() - joints[..., 1].min())
    reach = float(np.max(np.linalg.norm((joints - joints[:, :1])[..., [0, 2]], axis=-1)))
    return max(1.0, 0.55 * height, 1.1 * reach)


def _atomic_save(path: Path, save) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        save(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_skeleton_gif(joints: np.ndarray, path: str | os.PathLike, fps: int = FPS, title: str | None = None, size: int = 256) -> Path:
    """Write an animated GIF of the motion (camera follows the root). Returns the path."""
    from PIL import Image

    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames = [Image.fromarray(f) for f in iter_skeleton_frames(joints, size=size, title=title)]
    path = Path(path)
    duration = max(1, int(round(1000 / fps)))
    _atomic_save(path, lambda p: frames[0].save(p, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0))
    return path


def save_skeleton_strip(
    joints: np.ndarray, path: str | os.PathLike, every: int = 8, size: int = 200, max_cols: int = 10, title: str | None = None
) -> Path:
    """Write one PNG with the poses of every `every`-th frame side by side (wrapping after
    `max_cols`), each panel centred on its own root. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    joints = validate_joints(joints).astype(np.float64)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    idx = list(range(0, len(joints), every))
    cols = min(len(idx), max(1, max_cols))
    rows = -(-len(idx) // cols)
    dpi = 100
    head = 0.25 if title else 0.0
    fig = Figure(figsize=(cols * size / dpi, rows * size / dpi + head), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title, fontsize=9)
    floor_y = float(joints[..., 1].min())
    radius = _radius(joints)
    body_h = 1.0 - head / (rows * size / dpi + head)
    for k, t in enumerate(idx):
        r, c = divmod(k, cols)
        rect = (c / cols, body_h * (1 - (r + 1) / rows), 1 / cols, body_h / rows)
        view = SkeletonView(radius=radius, fig=fig, rect=rect)
        view.pose(joints[t], floor_y, label=f"frame {t}")
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    path = Path(path)
    _atomic_save(path, lambda p: Image.fromarray(pixels).save(p, format="PNG"))
    return path
