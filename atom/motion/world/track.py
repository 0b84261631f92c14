"""Animation channels and how they become joint positions.

A motion is described frame by frame by a small set of channels (root path, heading, trunk
angles, wrist targets, toe targets and foot contacts). `pose_track` turns them into joints by
forward kinematics (body.py); legs and arms are aimed with two-bone IK. The pelvis height is
fitted to the planted legs, so a planted toe is always reachable: it stays exactly where the
channels put it, and the root height follows the leg geometry.

Index 0 of every per-limb axis is the left limb, 1 the right one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atom.motion.skeleton import NUM_JOINTS
from atom.motion.world.body import (
    MAX_EXTENSION,
    Body,
    _unit,
    align,
    rot_x,
    rot_y,
    rot_z,
    two_bone_ik,
)

LEFT, RIGHT = 0, 1
SIDE = np.array([1.0, -1.0])  # +X is the figure's left


# ---------------------------------------------------------------------------------------------
# Curves


def ease(x: np.ndarray) -> np.ndarray:
    """Quintic smoothstep on [0, 1]: zero velocity and acceleration at both ends."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def keys(n: int, times, values) -> np.ndarray:
    """Values at frames 0..n-1 eased between keyframes (time, value); held outside them.

    `values` may be scalars or arrays (the first axis indexes the keys).
    """
    t_k = np.asarray(times, dtype=np.float64)
    v_k = np.asarray(values, dtype=np.float64)
    if t_k.ndim != 1 or len(t_k) != len(v_k) or len(t_k) == 0:
        raise ValueError("keys needs as many times as values, at least one")
    if np.any(np.diff(t_k) < 0):
        raise ValueError(f"key times must not decrease: {t_k.tolist()}")
    t = np.arange(n, dtype=np.float64)
    if len(t_k) == 1:
        return np.broadcast_to(v_k[0], (n,) + v_k.shape[1:]).copy()
    i = np.clip(np.searchsorted(t_k, t, side="right") - 1, 0, len(t_k) - 2)
    span = np.maximum(t_k[i + 1] - t_k[i], 1e-9)
    w = ease((t - t_k[i]) / span)
    w = w.reshape((n,) + (1,) * (v_k.ndim - 1))
    return v_k[i] + (v_k[i + 1] - v_k[i]) * w


def smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along axis 0 with edge padding (width frames, odd)."""
    if width <= 1:
        return x
    k = width | 1
    pad = k // 2
    xp = np.concatenate([np.repeat(x[:1], pad, axis=0), x, np.repeat(x[-1:], pad, axis=0)], axis=0)
    c = np.cumsum(xp, axis=0)
    c = np.concatenate([np.zeros_like(c[:1]), c], axis=0)
    return (c[k:] - c[:-k]) / k


def arm_direction(flex: np.ndarray | float, abduct: np.ndarray | float, side: float) -> np.ndarray:
    """Unit direction of a straight arm in the heading frame.

    flex swings the hanging arm forward (pi/2 points it ahead, pi straight up through the front);
    abduct then swings it outward in the frontal plane. `side` is +1 for the left arm.
    """
    flex, abduct = np.broadcast_arrays(np.asarray(flex, dtype=np.float64), np.asarray(abduct, dtype=np.float64))
    cf, sf = np.cos(flex), np.sin(flex)
    ca, sa = np.cos(abduct), np.sin(abduct)
    return np.stack([side * cf * sa, -cf * ca, sf], axis=-1)


# ---------------------------------------------------------------------------------------------
# Per-clip style and the channel container


@dataclass(frozen=True)
class Style:
    """What stays fixed through one clip: the body and its habitual posture and tempo."""

    body: Body
    foot_width: float  # lateral distance of each toe from the root line
    toe_forward: float  # toe position ahead of the root when standing
    toe_out: float  # outward yaw of each foot (rad)
    hang_flex: float  # resting arm angles (rad)
    hang_abduct: float
    hang_reach: float  # wrist distance from shoulder / arm length at rest
    posture: float  # habitual trunk pitch (rad), small
    tempo: float  # >1 moves faster
    vigour: float  # >1 moves bigger
    hand: int = 1  # the hand and foot this figure waves and kicks with (0 left, 1 right)

    @property
    def stand_height(self) -> float:
        return self.body.stand_height

    def hang_target(self) -> np.ndarray:
        """(2, 3) resting wrist targets relative to the shoulders, heading frame."""
        out = np.empty((2, 3))
        for limb in (LEFT, RIGHT):
            d = arm_direction(np.float64(self.hang_flex), np.float64(self.hang_abduct), SIDE[limb])
            out[limb] = d * self.hang_reach * self.body.arm
        return out

    def stand_toes(self) -> np.ndarray:
        """(2, 3) toe positions relative to the root on the floor, heading frame."""
        return np.array([[self.foot_width, 0.0, self.toe_forward], [-self.foot_width, 0.0, self.toe_forward]])


def random_style(body: Body, rng: np.random.Generator) -> Style:
    s = body.height_scale
    hip_x = float(body.offsets[1, 0])
    return Style(
        body=body,
        foot_width=hip_x * float(rng.uniform(1.05, 1.45)),
        # Puts the ankle under the hip: the toe is one foot length ahead of the ankle.
        toe_forward=float(body.offsets[1, 2] + body.offsets[7, 2] + body.offsets[10, 2]) + float(rng.uniform(-0.01, 0.02)) * s,
        toe_out=float(np.radians(rng.uniform(2.0, 12.0))),
        hang_flex=float(np.radians(rng.uniform(-2.0, 8.0))),
        hang_abduct=float(np.radians(rng.uniform(5.0, 14.0))),
        hang_reach=float(rng.uniform(0.93, 0.985)),
        posture=float(np.radians(rng.uniform(-2.0, 5.0))),
        tempo=float(rng.uniform(0.88, 1.12)),
        vigour=float(rng.uniform(0.88, 1.12)),
        hand=int(rng.random() < 0.8),  # most people are right-handed
    )


ARM_POLE_REST = np.array([[0.3, -0.2, -1.0], [-0.3, -0.2, -1.0]])  # elbows point back, a bit out


@dataclass
class Track:
    """Channels of n frames. Positions are in metres; angles in radians.

    root        (n, 3)    pelvis x, z on the floor plane and its *desired* height y
    heading     (n,)      facing yaw
    pelvis      (n, 3)    pitch (forward tilt), roll, yaw offset from the heading
    spine       (n, 3)    pitch, roll, yaw spread over the three spine joints
    head        (n, 2)    pitch, yaw of the neck
    wrist       (n, 2, 3) wrist targets relative to the shoulders, heading frame
    elbow_pole  (n, 2, 3) where each elbow should point, heading frame
    toe         (n, 2, 3) toe targets, world frame
    foot_yaw    (n, 2)    world yaw of each foot
    foot_pitch  (n, 2)    toe-down tilt of each foot about its toe (heel raise)
    contact     (n, 2)    foot planted on the floor
    """

    root: np.ndarray
    heading: np.ndarray
    pelvis: np.ndarray
    spine: np.ndarray
    head: np.ndarray
    wrist: np.ndarray
    elbow_pole: np.ndarray
    toe: np.ndarray
    foot_yaw: np.ndarray
    foot_pitch: np.ndarray
    contact: np.ndarray
    spans: list = field(default_factory=list)  # (start, end) of each occurrence, frames
    params: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.root.shape[0])

    @classmethod
    def standing(cls, style: Style, n: int) -> "Track":
        """n frames of the style's rest pose at the origin, facing +Z."""
        toes = style.stand_toes()
        return cls(
            root=np.tile([0.0, style.stand_height, 0.0], (n, 1)),
            heading=np.zeros(n),
            pelvis=np.zeros((n, 3)),
            spine=np.tile([style.posture, 0.0, 0.0], (n, 1)),
            head=np.tile([-0.5 * style.posture, 0.0], (n, 1)),
            wrist=np.tile(style.hang_target(), (n, 1, 1)),
            elbow_pole=np.tile(ARM_POLE_REST, (n, 1, 1)),
            toe=np.tile(toes, (n, 1, 1)),
            foot_yaw=np.tile([style.toe_out, -style.toe_out], (n, 1)),
            foot_pitch=np.zeros((n, 2)),
            contact=np.ones((n, 2), dtype=bool),
        )

    def moved(self, x: float, z: float, yaw: float) -> "Track":
        """This track (built at the origin facing +Z) placed at (x, z) facing `yaw`."""
        r = rot_y(np.float64(yaw))
        root = self.root.copy()
        root[:, [0, 2]] = self.root[:, [0, 2]] @ r[[0, 2]][:, [0, 2]].T + [x, z]
        toe = self.toe.copy()
        toe[..., [0, 2]] = self.toe[..., [0, 2]] @ r[[0, 2]][:, [0, 2]].T + [x, z]
        return Track(
            root=root,
            heading=self.heading + yaw,
            pelvis=self.pelvis,
            spine=self.spine,
            head=self.head,
            wrist=self.wrist,
            elbow_pole=self.elbow_pole,
            toe=toe,
            foot_yaw=self.foot_yaw + yaw,
            foot_pitch=self.foot_pitch,
            contact=self.contact,
            spans=list(self.spans),
            params=dict(self.params),
        )

    def end_state(self) -> tuple[float, float, float]:
        return float(self.root[-1, 0]), float(self.root[-1, 2]), float(self.heading[-1])


_ARRAY_FIELDS = ("root", "heading", "pelvis", "spine", "head", "wrist", "elbow_pole", "toe", "foot_yaw", "foot_pitch", "contact")


def concat(tracks: list[Track]) -> Track:
    """Tracks one after another (each already placed where the previous one ended)."""
    if not tracks:
        raise ValueError("concat needs at least one track")
    out: dict[str, Any] = {name: np.concatenate([getattr(t, name) for t in tracks], axis=0) for name in _ARRAY_FIELDS}
    return Track(**out)


# ---------------------------------------------------------------------------------------------
# Channels -> joints


def _softmin(values: np.ndarray, k: float) -> np.ndarray:
    """Smooth minimum along axis -1, never above the true minimum."""
    m = values.min(axis=-1, keepdims=True)
    return (m - k * np.log(np.sum(np.exp(-(values - m) / k), axis=-1, keepdims=True)))[..., 0]


def _heading_apply(rh: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("tij,tj->ti", rh, v)


def pose_track(track: Track, body: Body) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint positions (n, 22, 3) float64, global rotations (n, 22, 3, 3), fitted root height (n,)."""
    n = track.n
    off = body.offsets
    rh = rot_y(track.heading)
    rp = rh @ rot_y(track.pelvis[:, 2]) @ rot_x(track.pelvis[:, 0]) @ rot_z(track.pelvis[:, 1])

    # Feet: ankle target from the toe and the foot's orientation (the foot pivots on its toe).
    rf = rot_y(track.foot_yaw) @ rot_x(track.foot_pitch)  # (n, 2, 3, 3)
    toe_off = np.stack([off[10], off[11]])  # (2, 3)
    ankle_t = track.toe - np.einsum("tfij,fj->tfi", rf, toe_off)

    # Pelvis height: the desired height, lowered where a planted leg could not reach its ankle.
    hip_rel = np.einsum("tij,fj->tfi", rp, np.stack([off[1], off[2]]))  # (n, 2, 3)
    hip_xz = track.root[:, None, [0, 2]] + hip_rel[..., [0, 2]]
    dxz2 = np.sum((hip_xz - ankle_t[..., [0, 2]]) ** 2, axis=-1)
    reach = MAX_EXTENSION * body.leg
    bound = ankle_t[..., 1] - hip_rel[..., 1] + np.sqrt(np.maximum(reach * reach - dxz2, 0.0))
    bound = np.where(track.contact, bound, np.inf)
    y = _softmin(np.concatenate([track.root[:, 1:2], bound], axis=1), k=0.006)
    # A foot touching down can lower the bound from one frame to the next. Spread each drop over
    # its neighbours (max filter, then average), which keeps y under every bound, made smooth.
    drop = track.root[:, 1] - y
    w = 3
    padded = np.concatenate([np.zeros(w), drop, np.zeros(w)])
    dilated = np.max(np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1), axis=1)
    y = track.root[:, 1] - smooth(dilated, 2 * w + 1)
    root = track.root.copy()
    root[:, 1] = y

    g = np.broadcast_to(np.eye(3), (n, 22, 3, 3)).copy()
    p = np.empty((n, NUM_JOINTS, 3))
    p[:, 0] = root
    g[:, 0] = rp

    def place(j: int, parent: int) -> None:
        p[:, j] = p[:, parent] + g[:, parent] @ off[j]

    for j in (1, 2, 3):
        place(j, 0)
    spine_w = (0.4, 0.3, 0.3)
    prev = 0
    for joint, wi in zip((3, 6, 9), spine_w):
        local = rot_y(wi * track.spine[:, 2]) @ rot_x(wi * track.spine[:, 0]) @ rot_z(wi * track.spine[:, 1])
        g[:, joint] = g[:, prev] @ local
        if joint != 3:
            place(joint, prev)
        prev = joint
    g[:, 12] = g[:, 9] @ rot_y(track.head[:, 1]) @ rot_x(track.head[:, 0])
    for j in (12, 13, 14):
        place(j, 9)
    place(15, 12)

    # Collars lift with the arms: a raised wrist shrugs its shoulder a little.
    lift = np.clip(track.wrist[..., 1] / body.arm, 0.0, 1.0) * np.radians(18.0)  # (n, 2)
    g[:, 13] = g[:, 9] @ rot_z(lift[:, 0])
    g[:, 14] = g[:, 9] @ rot_z(-lift[:, 1])
    place(16, 13)
    place(17, 14)

    for limb, (sh, el, wr) in enumerate(((16, 18, 20), (17, 19, 21))):
        pole = _heading_apply(rh, track.elbow_pole[:, limb])
        target = p[:, sh] + _heading_apply(rh, track.wrist[:, limb])
        elbow = two_bone_ik(p[:, sh], target, body.upper_arm, body.forearm, pole)
        g[:, sh] = align(_unit(off[el]), np.array([0.0, 0.0, -1.0]), elbow - p[:, sh], pole)
        place(el, sh)
        g[:, el] = align(_unit(off[wr]), np.array([0.0, 0.0, -1.0]), target - p[:, el], pole)
        place(wr, el)

    for limb, (hip, knee, ankle, toe) in enumerate(((1, 4, 7, 10), (2, 5, 8, 11))):
        fwd = rf[:, limb, :, 2].copy()
        fwd[:, 1] = 0.0
        pole = _unit(fwd + 0.15 * SIDE[limb] * rf[:, limb, :, 0])  # knees point ahead, a touch out
        k = two_bone_ik(p[:, hip], ankle_t[:, limb], body.thigh, body.shin, pole)
        g[:, hip] = align(_unit(off[knee]), np.array([0.0, 0.0, 1.0]), k - p[:, hip], pole)
        place(knee, hip)
        g[:, knee] = align(_unit(off[ankle]), np.array([0.0, 0.0, 1.0]), ankle_t[:, limb] - p[:, knee], pole)
        place(ankle, knee)
        g[:, ankle] = rf[:, limb]
        place(toe, ankle)
    return p, g, y
