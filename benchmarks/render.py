"""Benchmark: sampled frames per second per core, our renderer against two matplotlib baselines.

    PYTHONPATH=. .venv/bin/python benchmarks/render.py [--rounds 5] [--sizes 256 512]

Every method turns the sampled frames (every 8th) of the same motions into PNG bytes, which is
what the judge needs:
  (a) naive matplotlib: the field's usual 3D skeleton plot, a new figure per frame, savefig PNG;
  (b) tuned matplotlib: one figure reused, line artists updated in place, the Agg canvas read
      directly and encoded with the same fast PNG encoder as ours;
  (c) ours: services.renderer.render(form="frame_by_frame") on pyrender/EGL;
  (d) before: the straightforward pyrender scene (a node per joint and bone, pyrender's lit
      shader, colour + depth read back, Pillow PNG), the starting point of this renderer.
Also reported: (b) and (c) without PNG encoding (raw RGB arrays), and (b') the tuned plot with
matplotlib's default 3D axes, panes and grid left on, which is what most quick plots look like
unless axes are switched off (drawing them costs matplotlib about 4x).

"Per core": everything runs single-threaded (OMP/BLAS threads 1, llvmpipe LP_NUM_THREADS=0 so
rasterisation happens on the calling thread) and the rate is frames per second of process CPU
time, which stays meaningful on a shared, loaded machine where wall time does not. Rounds are
interleaved (a, b, c, a, b, c, ...) and the best round of each method is reported, so a burst of
load from other processes penalises no method in particular; medians are printed too.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("LP_NUM_THREADS", "0")  # must be set before the GL context exists

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from atom.motion.skeleton import BONES, KINEMATIC_CHAINS  # noqa: E402
from services.renderer import RenderOptions, render  # noqa: E402
from services.renderer.api import default_renderer  # noqa: E402
from services.renderer.png import encode_png  # noqa: E402
from services.renderer.sampling import sample_indices  # noqa: E402
from services.renderer.skeleton_mesh import SkeletonTemplate  # noqa: E402
from services.renderer.synthetic import jump, raise_arms, walk  # noqa: E402

CHAIN_COLORS = ("red", "blue", "black", "red", "blue")
CHAIN_WIDTHS = (4.0, 4.0, 4.0, 2.0, 2.0)
RADIUS = 1.6  # half-size of the plotted cube around the root, metres
INTERVAL = 8


def motions() -> list[np.ndarray]:
    return [walk(196, turn_rate=0.4), raise_arms(120), jump(80), walk(160, speed=1.5, turn_rate=-0.3)]


def _plot_coords(p: np.ndarray) -> np.ndarray:
    """HumanML3D (x, y up, z) -> matplotlib axes (x, z, y up)."""
    return np.stack([p[..., 0], p[..., 2], p[..., 1]], axis=-1)


# --------------------------------------------------------------------------------------------
# (a) the usual plot: new figure per frame
# --------------------------------------------------------------------------------------------


def naive_matplotlib(joints: np.ndarray, indices, size: int) -> list[bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    pts = _plot_coords(joints)
    out = []
    for i in indices:
        fig = plt.figure(figsize=(size / 100, size / 100), dpi=100)
        ax = fig.add_subplot(111, projection="3d")
        root = pts[i, 0]
        ax.set_xlim(root[0] - RADIUS, root[0] + RADIUS)
        ax.set_ylim(root[1] - RADIUS, root[1] + RADIUS)
        ax.set_zlim(0, 2 * RADIUS)
        ax.view_init(elev=20, azim=-60)
        ax.grid(False)
        ax.set_axis_off()
        x0, x1, y0, y1 = root[0] - RADIUS, root[0] + RADIUS, root[1] - RADIUS, root[1] + RADIUS
        floor = Poly3DCollection([[[x0, y0, 0], [x0, y1, 0], [x1, y1, 0], [x1, y0, 0]]])
        floor.set_facecolor((0.5, 0.5, 0.5, 0.5))
        ax.add_collection3d(floor)
        ax.plot3D(pts[: i + 1, 0, 0], pts[: i + 1, 0, 1], np.zeros(i + 1), color="blue", linewidth=1.0)
        for chain, color, width in zip(KINEMATIC_CHAINS, CHAIN_COLORS, CHAIN_WIDTHS):
            ax.plot3D(pts[i, chain, 0], pts[i, chain, 1], pts[i, chain, 2], color=color, linewidth=width)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        out.append(buf.getvalue())
    return out


# --------------------------------------------------------------------------------------------
# (b) tuned: one figure, artists updated in place, canvas read directly
# --------------------------------------------------------------------------------------------


class TunedMatplotlib:
    def __init__(self, size: int, axes: bool = False):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from mpl_toolkits.mplot3d.art3d import Poly3DCollection

        self.fig = Figure(figsize=(size / 100, size / 100), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        ax: Any = self.fig.add_axes((0, 0, 1, 1), projection="3d")  # an Axes3D: mpl_toolkits is untyped
        ax.view_init(elev=20, azim=-60)
        if not axes:
            ax.set_axis_off()
        self.ax = ax
        self.floor = Poly3DCollection([np.zeros((4, 3))], facecolors=[(0.5, 0.5, 0.5, 0.5)])
        ax.add_collection3d(self.floor)
        (self.trail,) = ax.plot([], [], [], color="blue", linewidth=1.0)
        self.lines = [ax.plot([], [], [], color=c, linewidth=w)[0] for c, w in zip(CHAIN_COLORS, CHAIN_WIDTHS)]

    def frames(self, joints: np.ndarray, indices, png: bool = True) -> list:
        pts = _plot_coords(joints)
        out = []
        for i in indices:
            root = pts[i, 0]
            self.ax.set_xlim(root[0] - RADIUS, root[0] + RADIUS)
            self.ax.set_ylim(root[1] - RADIUS, root[1] + RADIUS)
            self.ax.set_zlim(0, 2 * RADIUS)
            x0, x1, y0, y1 = root[0] - RADIUS, root[0] + RADIUS, root[1] - RADIUS, root[1] + RADIUS
            self.floor.set_verts([[[x0, y0, 0], [x0, y1, 0], [x1, y1, 0], [x1, y0, 0]]])
            self.trail.set_data_3d(pts[: i + 1, 0, 0], pts[: i + 1, 0, 1], np.zeros(i + 1))
            for line, chain in zip(self.lines, KINEMATIC_CHAINS):
                line.set_data_3d(pts[i, chain, 0], pts[i, chain, 1], pts[i, chain, 2])
            self.canvas.draw()
            rgb = np.asarray(self.canvas.buffer_rgba())[..., :3]
            out.append(encode_png(np.ascontiguousarray(rgb)) if png else rgb.copy())
        return out


# --------------------------------------------------------------------------------------------
# (d) "before": pyrender with one node per joint and bone, pyrender's lit shader, PIL PNG
# --------------------------------------------------------------------------------------------


class NaivePyrender:
    """The straightforward pyrender scene this renderer replaced: 22 sphere nodes and 21
    cylinder nodes moved every frame, a directional light, colour and depth read back."""

    def __init__(self, size: int):
        import trimesh

        from services.renderer.camera import follow_poses
        from services.renderer.gl import create_offscreen, load_pyrender

        self.pr = pr = load_pyrender()
        self.follow_poses = follow_poses
        self.r = create_offscreen(size, size)
        self.scene = pr.Scene(bg_color=[1.0, 1.0, 1.0, 1.0], ambient_light=[0.3, 0.3, 0.3])
        floor = trimesh.creation.box(extents=[40.0, 0.01, 40.0])
        self.scene.add(pr.Mesh.from_trimesh(floor, smooth=False))
        mat = pr.MetallicRoughnessMaterial(baseColorFactor=[0.8, 0.2, 0.2, 1.0], metallicFactor=0.0)
        sphere = pr.Mesh.from_trimesh(trimesh.creation.icosphere(subdivisions=2, radius=0.045), material=mat)
        cyl = pr.Mesh.from_trimesh(trimesh.creation.cylinder(radius=0.028, height=1.0), material=mat)
        self.joint_nodes = [self.scene.add(sphere) for _ in range(22)]
        self.bone_nodes = [self.scene.add(cyl) for _ in BONES]
        self.cam = self.scene.add(pr.PerspectiveCamera(yfov=np.radians(40.0)), pose=np.eye(4))
        self.light = self.scene.add(pr.DirectionalLight(intensity=3.0), pose=np.eye(4))

    def frames(self, joints: np.ndarray, indices) -> list[bytes]:
        from PIL import Image

        from services.renderer.skeleton_mesh import bone_frames

        cams = self.follow_poses(joints[:, 0], frames=indices)
        out = []
        for k, i in enumerate(indices):
            for j, node in enumerate(self.joint_nodes):
                pose = np.eye(4)
                pose[:3, 3] = joints[i, j]
                self.scene.set_pose(node, pose)
            a, b = joints[i, [p for p, _ in BONES]], joints[i, [c for _, c in BONES]]
            d, u, w = bone_frames(a, b)
            for n, node in enumerate(self.bone_nodes):
                pose = np.eye(4)
                length = np.linalg.norm(b[n] - a[n])
                pose[:3, 0], pose[:3, 1], pose[:3, 2] = u[n], w[n], d[n] * length  # cylinder axis is Z
                pose[:3, 3] = (a[n] + b[n]) / 2
                self.scene.set_pose(node, pose)
            self.scene.set_pose(self.cam, cams[k])
            self.scene.set_pose(self.light, cams[k])
            color, _ = self.r.render(self.scene)
            buf = io.BytesIO()
            Image.fromarray(color).save(buf, format="PNG")
            out.append(buf.getvalue())
        return out


# --------------------------------------------------------------------------------------------
# (c) ours
# --------------------------------------------------------------------------------------------


def ours_png(joints: np.ndarray, size: int) -> list[bytes]:
    return render(joints, RenderOptions(form="frame_by_frame", interval=INTERVAL, width=size, height=size)).images


def ours_arrays(joints: np.ndarray, size: int) -> list[np.ndarray]:
    return default_renderer().render_frames(joints, sample_indices(len(joints), INTERVAL), SkeletonTemplate(), width=size, height=size)


def timed(fn) -> tuple[int, float, float]:
    """(frames, cpu seconds, wall seconds) of one call returning a list of frames."""
    c0, w0 = time.process_time(), time.perf_counter()
    n = len(fn())
    return n, time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per method (best is reported)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--naive-frames", type=int, default=12, help="sampled frames per round for the slow baseline")
    args = ap.parse_args()

    clips = motions()
    jobs = [(m, sample_indices(len(m), INTERVAL)) for m in clips]
    total = sum(len(ix) for _, ix in jobs)

    from OpenGL.GL import GL_RENDERER, glGetString

    renderer = default_renderer()
    renderer.scene._offscreen._platform.make_current()
    gl_name = glGetString(GL_RENDERER).decode()
    print(
        f"GL renderer: {gl_name} (PYOPENGL_PLATFORM={os.environ.get('PYOPENGL_PLATFORM')}, "
        f"LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS')})"
    )
    print(
        f"motions: {len(clips)} ({sum(len(m) for m in clips)} frames), sampled every {INTERVAL}th: "
        f"{total} frames per round; {args.rounds} rounds; rates are frames per CPU-second\n"
    )

    for size in args.sizes:
        tuned = TunedMatplotlib(size)
        tuned_axes = TunedMatplotlib(size, axes=True)
        before = NaivePyrender(size)
        naive_job = (clips[0], sample_indices(len(clips[0]), INTERVAL)[: args.naive_frames])
        methods = {
            "(a) matplotlib, new figure per frame": lambda: naive_matplotlib(naive_job[0], naive_job[1], size),
            "(b) matplotlib tuned (figure reused)": lambda: [f for m, ix in jobs for f in tuned.frames(m, ix)],
            "(c) ours, pyrender EGL": lambda: [f for m, _ in jobs for f in ours_png(m, size)],
            "(d) before: pyrender, node per joint/bone": lambda: before.frames(*naive_job),
            "(b') tuned, 3D axes and grid drawn": lambda: [f for m, ix in jobs[:1] for f in tuned_axes.frames(m, ix)],
            "(b) tuned, raw RGB (no PNG)": lambda: [f for m, ix in jobs for f in tuned.frames(m, ix, png=False)],
            "(c) ours, raw RGB (no PNG)": lambda: [f for m, _ in jobs for f in ours_arrays(m, size)],
        }
        for fn in methods.values():  # warm-up: imports, contexts, shader compilation, caches
            fn()
        rates: dict[str, list[float]] = {name: [] for name in methods}
        walls: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.rounds):
            for name, fn in methods.items():
                n, cpu, wall = timed(fn)
                rates[name].append(n / cpu)
                walls[name].append(n / wall)

        print(f"== {size}x{size} ==")
        print(f"{'method':40s} {'best fps/core':>14s} {'median':>8s} {'wall fps':>9s}")
        for name in methods:
            print(f"{name:40s} {max(rates[name]):14.1f} {statistics.median(rates[name]):8.1f} {statistics.median(walls[name]):9.1f}")
        a = max(rates["(a) matplotlib, new figure per frame"])
        b = max(rates["(b) matplotlib tuned (figure reused)"])
        c = max(rates["(c) ours, pyrender EGL"])
        b_raw, c_raw = max(rates["(b) tuned, raw RGB (no PNG)"]), max(rates["(c) ours, raw RGB (no PNG)"])
        d = max(rates["(d) before: pyrender, node per joint/bone"])
        print(f"ratio ours / before (naive pyrender scene): {d and c / d:6.1f}x")
        print(f"ratio ours / naive matplotlib : {c / a:6.1f}x")
        b_axes = max(rates["(b') tuned, 3D axes and grid drawn"])
        print(
            f"ratio ours / tuned matplotlib : {c / b:6.1f}x   (raw RGB: {c_raw / b_raw:.1f}x; "
            f"against (b') with axes drawn: {c / b_axes:.1f}x)\n"
        )


if __name__ == "__main__":
    main()
