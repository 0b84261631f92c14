"""Skeleton geometry as one merged triangle mesh, posed with vectorised numpy.

Joints are spheres and bones are open cylinders. The unit templates are built once; posing a
batch of P skeletons is a handful of broadcast operations, so the renderer can upload one vertex
buffer per frame (one draw call) instead of one node per joint and bone (44 draws).

A small "nose" sphere sits in front of the head, pointing where the body faces: without it the
facing direction of a stick figure is ambiguous from many viewpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from atom.motion.skeleton import BONES, FACE_JOINTS, JOINT, KINEMATIC_CHAINS, NUM_JOINTS

# Chain colours (linear RGB in 0..1): right limbs red, left limbs blue, spine dark grey.
RIGHT_COLOR = np.array([0.84, 0.16, 0.14])
LEFT_COLOR = np.array([0.13, 0.37, 0.85])
SPINE_COLOR = np.array([0.27, 0.27, 0.29])
NOSE_COLOR = np.array([0.98, 0.62, 0.05])
CHAIN_COLORS = (RIGHT_COLOR, LEFT_COLOR, SPINE_COLOR, RIGHT_COLOR, LEFT_COLOR)

HEAD = JOINT["head"]


def joint_colors() -> np.ndarray:
    """(22, 3) colour per joint: the colour of the chain the joint ends a bone of."""
    colors = np.tile(SPINE_COLOR, (NUM_JOINTS, 1))
    for chain, color in zip(KINEMATIC_CHAINS, CHAIN_COLORS):
        for j in chain[1:]:
            colors[j] = color
    return colors


def unit_sphere(n_lon: int = 10, n_lat: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere of radius 1: (V, 3) vertices (equal to their normals) and (F, 3) faces."""
    points = [(0.0, 1.0, 0.0)]
    for i in range(1, n_lat):
        theta = np.pi * i / n_lat
        for k in range(n_lon):
            phi = 2 * np.pi * k / n_lon
            points.append((np.sin(theta) * np.cos(phi), np.cos(theta), np.sin(theta) * np.sin(phi)))
    points.append((0.0, -1.0, 0.0))
    verts = np.array(points, dtype=np.float64)
    bottom = len(verts) - 1
    faces = []
    for k in range(n_lon):
        k2 = (k + 1) % n_lon
        faces.append((0, 1 + k2, 1 + k))
    for i in range(n_lat - 2):
        a, b = 1 + i * n_lon, 1 + (i + 1) * n_lon
        for k in range(n_lon):
            k2 = (k + 1) % n_lon
            faces.append((a + k, a + k2, b + k))
            faces.append((a + k2, b + k2, b + k))
    last = 1 + (n_lat - 2) * n_lon
    for k in range(n_lon):
        k2 = (k + 1) % n_lon
        faces.append((last + k, last + k2, bottom))
    return verts, np.array(faces, dtype=np.int64)


def unit_cylinder(n_seg: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An open unit tube along +Y from y=0 to y=1: ring coords (V, 2) as (cos, sin), heights
    (V,) in {0, 1}, and (F, 3) faces. Caps are not needed: joint spheres close the ends."""
    ang = 2 * np.pi * np.arange(n_seg) / n_seg
    ring = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    circle = np.concatenate([ring, ring])
    heights = np.concatenate([np.zeros(n_seg), np.ones(n_seg)])
    faces = []
    for k in range(n_seg):
        k2 = (k + 1) % n_seg
        faces.append((k, n_seg + k, k2))
        faces.append((k2, n_seg + k, n_seg + k2))
    return circle, heights, np.array(faces, dtype=np.int64)


def bone_frames(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal frames for segments a->b (... , 3): unit axis d and two perpendiculars u, w.

    The helper axis switches from X to Z when d is nearly parallel to X so the cross product
    never degenerates; a zero-length segment gets the +Y axis.
    """
    d = b - a
    length = np.linalg.norm(d, axis=-1, keepdims=True)
    d = np.where(length > 1e-9, d / np.maximum(length, 1e-9), np.array([0.0, 1.0, 0.0]))
    helper = np.where(np.abs(d[..., :1]) > 0.9, np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]))
    u = np.cross(helper, d)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    # (u, d, w) is right-handed like (X, Y, Z), so template winding stays outward-facing.
    w = np.cross(u, d)
    return d, u, w


def facing_direction(joints: np.ndarray) -> np.ndarray:
    """(..., 3) horizontal unit vector the body faces, from the hip and shoulder lines."""
    r_hip, l_hip, r_sh, l_sh = FACE_JOINTS
    across = (joints[..., l_hip, :] - joints[..., r_hip, :]) + (joints[..., l_sh, :] - joints[..., r_sh, :])
    # Left is +X when facing +Z (HumanML3D rest pose), so forward = left x up.
    fwd = np.cross(across, np.array([0.0, 1.0, 0.0]))
    fwd[..., 1] = 0.0
    norm = np.linalg.norm(fwd, axis=-1, keepdims=True)
    return np.where(norm > 1e-9, fwd / np.maximum(norm, 1e-9), np.array([0.0, 0.0, 1.0]))


@dataclass(frozen=True)
class SkeletonTemplate:
    """Precomputed unit geometry for one skeleton; `pose` places any batch of poses."""

    joint_radius: float = 0.045
    head_radius: float = 0.095
    nose_radius: float = 0.035
    bone_radius: float = 0.028
    sphere_lon: int = 10
    sphere_lat: int = 6
    cylinder_segments: int = 10
    # Derived in __post_init__ (not arguments, not compared)
    _sphere: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)
    _cyl: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)
    _radii: np.ndarray = field(init=False, repr=False, compare=False)
    _faces: np.ndarray = field(init=False, repr=False, compare=False)
    _colors: np.ndarray = field(init=False, repr=False, compare=False)
    _bone_idx: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sv, sf = unit_sphere(self.sphere_lon, self.sphere_lat)
        cc, ch, cf = unit_cylinder(self.cylinder_segments)
        object.__setattr__(self, "_sphere", (sv, sf))
        object.__setattr__(self, "_cyl", (cc, ch, cf))
        radii = np.full(NUM_JOINTS + 1, self.joint_radius)
        radii[HEAD] = self.head_radius
        radii[NUM_JOINTS] = self.nose_radius
        object.__setattr__(self, "_radii", radii)

        n_spheres, n_bones = NUM_JOINTS + 1, len(BONES)
        sv_n, cv_n = len(sv), len(cc)
        faces = [sf + i * sv_n for i in range(n_spheres)]
        base = n_spheres * sv_n
        faces += [cf + base + i * cv_n for i in range(n_bones)]
        object.__setattr__(self, "_faces", np.concatenate(faces).astype(np.uint32))

        jc = joint_colors()
        sphere_colors = np.concatenate([jc, NOSE_COLOR[None]])
        bone_colors = jc[[c for _, c in BONES]]
        colors = np.concatenate([np.repeat(sphere_colors, sv_n, axis=0), np.repeat(bone_colors, cv_n, axis=0)])
        object.__setattr__(self, "_colors", colors)
        parents = np.array([p for p, _ in BONES])
        children = np.array([c for _, c in BONES])
        object.__setattr__(self, "_bone_idx", (parents, children))

    @property
    def vertices_per_pose(self) -> int:
        return (NUM_JOINTS + 1) * len(self._sphere[0]) + len(BONES) * len(self._cyl[0])

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) uint32 faces of one pose."""
        return self._faces

    @property
    def colors(self) -> np.ndarray:
        """(V, 3) base colour per vertex of one pose (chain colours)."""
        return self._colors

    def faces_for(self, num_poses: int) -> np.ndarray:
        """Faces of `num_poses` poses laid out one after another in the vertex buffer."""
        offs = (np.arange(num_poses, dtype=np.uint32) * self.vertices_per_pose)[:, None, None]
        return (self._faces[None] + offs).reshape(-1, 3)

    def pose(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vertices and normals for joints (P, 22, 3) -> two (P, V, 3) float32 arrays."""
        joints = np.asarray(joints, dtype=np.float64)
        if joints.ndim == 2:
            joints = joints[None]
        sv, _ = self._sphere
        cc, ch, _ = self._cyl
        P = joints.shape[0]

        nose = joints[:, HEAD] + facing_direction(joints) * (self.head_radius + 0.4 * self.nose_radius)
        centers = np.concatenate([joints, nose[:, None]], axis=1)  # (P, 23, 3)
        s_pos = centers[:, :, None, :] + self._radii[None, :, None, None] * sv[None, None]
        s_nrm = np.broadcast_to(sv[None, None], s_pos.shape)

        parents, children = self._bone_idx
        a, b = joints[:, parents], joints[:, children]  # (P, B, 3)
        _, u, w = bone_frames(a, b)
        radial = cc[None, None, :, 0:1] * u[:, :, None, :] + cc[None, None, :, 1:2] * w[:, :, None, :]
        c_pos = a[:, :, None, :] + self.bone_radius * radial + ch[None, None, :, None] * (b - a)[:, :, None, :]

        pos = np.concatenate([s_pos.reshape(P, -1, 3), c_pos.reshape(P, -1, 3)], axis=1)
        nrm = np.concatenate([s_nrm.reshape(P, -1, 3), radial.reshape(P, -1, 3)], axis=1)
        return pos.astype(np.float32), nrm.astype(np.float32)
