"""Stepping: footprints and swing paths for any root path (walks, runs, side steps, turns).

A step is (foot, lift frame, land frame). The foot is planted before `lift` and from `land` on.
Each footprint is where the foot's standing spot will be a little after landing (half a stance
later): the foot lands ahead of the body when moving forward, behind when backing up, beside it
when side-stepping, and turned when turning. The last step of each foot lands on the standing
spot at the end, so every stepping motion starts and ends standing with the feet together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atom.motion.world.body import rot_y
from atom.motion.world.track import SIDE, Style, Track, ease, smooth


@dataclass(frozen=True)
class Gait:
    half_cycle: float  # frames between one foot's lift and the other's
    swing: int  # frames in the air per step (lift to land)
    clearance: float  # toe lift at mid-swing, metres
    heel_raise: float  # toe-down tilt at lift, rad (push-off)
    lead: float  # how far ahead (frames after landing) the footprint is aimed
    first_foot: int  # 0 left, 1 right
    lead_extra: float = 0.0  # the first foot aims this many frames further ahead (side steps)
    width: float = 1.0  # stance width factor for all but the final steps (turning feet need room)
    bulge: float = 0.0  # outward bow of the swing path at mid-swing, metres


def raise_frames(gait: Gait) -> int:
    """Frames the heel takes to rise before the foot leaves the floor."""
    return max(2, gait.swing // 2)


def plan_steps(n: int, gait: Gait, start: int | None = None, settle: int = 3) -> list[tuple[int, int, int]]:
    """Alternating steps that fit in n frames, at least one per foot.

    The first lift waits for the heel to rise from standing (so motion starts from rest); the
    last landing leaves `settle` frames of standing, in which the weight shift fades out.
    """
    steps: list[tuple[int, int, int]] = []
    t = float(raise_frames(gait) + 1 if start is None else start)
    foot = gait.first_foot
    while True:
        lift = int(round(t))
        land = lift + gait.swing
        if land > n - 1 - settle:
            break
        steps.append((foot, lift, land))
        foot = 1 - foot
        t += gait.half_cycle
    if len({s[0] for s in steps}) < 2:
        raise ValueError(f"{n} frames are too few for a step with each foot at this gait ({gait})")
    return steps


def nominal_toes(
    style: Style, root_xz: np.ndarray, heading: np.ndarray, t: np.ndarray, foot: int, width: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Standing toe spot (x, z) and yaw of `foot` for the root state at frames t.

    The foot's middle, not its toe, is what sits beside the root, so turning feet swivel about
    their middles and the heels do not swing into each other.
    """
    toe = style.stand_toes()[foot].copy()
    toe[0] *= width
    out = SIDE[foot] * style.toe_out
    half = 0.5 * float(style.body.offsets[10, 2])
    middle = toe - half * np.array([np.sin(out), 0.0, np.cos(out)])
    yaw = heading[t] + out
    xz = root_xz[t] + (rot_y(heading[t]) @ middle)[..., [0, 2]] + half * np.stack([np.sin(yaw), np.cos(yaw)], -1)
    return xz, yaw


def _footprints(style: Style, gait: Gait, steps, root_xz, heading, n) -> list[tuple[np.ndarray, float]]:
    """Where each step lands (toe x, z and yaw), in step order.

    A footprint that would land closer than 0.8 of a stance width to the other foot's (inside
    it, or across it) is pushed outward: feet never cross, whatever the root path does. The
    final step of each foot is exact, so every stepping motion ends in the standing stance.
    """
    last = {foot: max(i for i, s in enumerate(steps) if s[0] == foot) for foot in (0, 1)}
    current = {}
    for foot in (0, 1):
        start_xz, _ = nominal_toes(style, root_xz, heading, np.array([0]), foot)
        current[foot] = start_xz[0]
    min_sep = 1.6 * style.foot_width  # toes this far apart keep the (toed-out) heels apart too
    out = []
    for i, (foot, lift, land) in enumerate(steps):
        lead = gait.lead + (gait.lead_extra if foot == gait.first_foot else 0.0)
        aim = n - 1 if i == last[foot] else min(n - 1, int(round(land + lead)))
        width = 1.0 if i == last[foot] else gait.width
        xzs, yaws = nominal_toes(style, root_xz, heading, np.array([aim]), foot, width)
        xz, yaw = xzs[0].copy(), float(yaws[0])
        if i != last[foot]:
            h = heading[aim]
            left = np.array([np.cos(h), -np.sin(h)])
            sep = SIDE[foot] * float(np.dot(xz - current[1 - foot], left))
            if sep < min_sep:
                xz += (min_sep - sep) * SIDE[foot] * left
        current[foot] = xz
        out.append((xz, yaw))
    return out


def step_feet(track: Track, style: Style, gait: Gait, steps: list[tuple[int, int, int]]) -> None:
    """Fill the track's toe, foot yaw, foot pitch and contact channels from a step plan.

    The track's root (x, z) and heading must already hold the path.
    """
    n = track.n
    root_xz = track.root[:, [0, 2]]
    heading = track.heading
    prints = _footprints(style, gait, steps, root_xz, heading, n)
    for foot in (0, 1):
        mine = [(i, s) for i, s in enumerate(steps) if s[0] == foot]
        xz0, yaw0 = nominal_toes(style, root_xz, heading, np.array([0]), foot)
        spot_xz, spot_yaw = xz0[0], float(yaw0[0])
        toe = np.zeros((n, 3))
        yaw = np.zeros(n)
        pitch = np.zeros(n)
        contact = np.ones(n, dtype=bool)
        toe[:, [0, 2]] = spot_xz
        yaw[:] = spot_yaw
        for i, (_, lift, land) in mine:
            new_xz, new_yaw = prints[i]
            # Push-off: the heel rises about the planted toe just before the foot leaves.
            r0 = max(0, lift - raise_frames(gait))
            k = np.arange(r0, lift + 1)
            pitch[k] = gait.heel_raise * ease((k - r0) / max(lift - r0, 1))
            # Swing: an arc from the old spot to the new one, heel back down by landing.
            k = np.arange(lift + 1, land)
            s = (k - lift) / (land - lift)
            e = ease(s)[:, None]
            toe[k, 0] = spot_xz[0] + (new_xz[0] - spot_xz[0]) * e[:, 0]
            toe[k, 2] = spot_xz[1] + (new_xz[1] - spot_xz[1]) * e[:, 0]
            if gait.bulge > 0.0:
                # Bow the path away from the other foot (outward of the heading mid-swing).
                yaw_mid = heading[(lift + land) // 2]
                out = SIDE[foot] * np.array([np.cos(yaw_mid), -np.sin(yaw_mid)])
                b = gait.bulge * np.sin(np.pi * s)
                toe[k, 0] += b * out[0]
                toe[k, 2] += b * out[1]
            # Lift peaks early in the swing, as real toes clear the floor after push-off.
            toe[k, 1] = gait.clearance * np.sin(np.pi * s**0.8)
            dyaw = (new_yaw - spot_yaw + np.pi) % (2 * np.pi) - np.pi
            yaw[k] = spot_yaw + dyaw * e[:, 0]
            pitch[k] = gait.heel_raise * (1.0 - s) ** 2 - 0.25 * np.sin(np.pi * s) * (1.0 - s)
            contact[k] = False
            toe[land:, [0, 2]] = new_xz
            toe[land:, 1] = 0.0
            yaw[land:] = spot_yaw + dyaw
            pitch[land:] = 0.0
            spot_xz, spot_yaw = new_xz, spot_yaw + dyaw
        track.toe[:, foot] = toe
        track.foot_yaw[:, foot] = yaw
        track.foot_pitch[:, foot] = pitch
        track.contact[:, foot] = contact


def body_sway(track: Track, style: Style, amount: float, arm_swing: float, twist: float) -> None:
    """Weight shift over the stance foot, arm swing and trunk counter-rotation driven by the feet.

    Everything is derived from where the feet actually are, so it is zero when standing still
    and in phase with the legs whatever the direction of travel.
    """
    r = rot_y(track.heading)
    fwd = r[:, :, 2]
    left = r[:, :, 0]
    rel = track.toe - track.root[:, None, :]
    rel[..., 1] = 0.0
    along = np.einsum("tfi,ti->tf", rel, fwd)  # forward position of each toe
    lead = (along[:, 0] - along[:, 1]) / max(style.body.leg, 1e-6)  # >0: left foot ahead
    stance = smooth(track.contact[:, 0].astype(float) - track.contact[:, 1].astype(float), 5)
    shift = amount * style.body.height_scale * stance
    track.root[:, 0] += shift * left[:, 0]
    track.root[:, 2] += shift * left[:, 2]
    # Left foot ahead -> left hip ahead -> pelvis yawed to the right (negative yaw).
    track.pelvis[:, 2] += -twist * lead
    track.spine[:, 2] += 1.6 * twist * lead
    # Arms swing opposite to the legs: left arm back when the left foot is ahead.
    for limb in (0, 1):
        # Left arm swings back when the left foot is ahead; a long stride saturates the swing.
        swing = -SIDE[limb] * 0.75 * np.tanh(arm_swing * lead / 0.75)
        base = track.wrist[:, limb]
        ang = np.arctan2(base[:, 2], -base[:, 1]) + swing
        radius = np.hypot(base[:, 1], base[:, 2])
        track.wrist[:, limb, 1] = -radius * np.cos(ang)
        track.wrist[:, limb, 2] = radius * np.sin(ang)
