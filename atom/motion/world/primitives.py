"""Parametric motion primitives, one per event of atom.motion.events.

Every builder makes one performance (or, for clapping, a run of claps) of a given length in
frames, starting and ending in the clip's standing pose at the origin facing +Z; compose.py
places it where the previous one ended. Because all of them begin and end standing, with
eased (zero-velocity) keyframes, consecutive events join smoothly.

Builders draw their own variation (speed, amplitude, step length, which hand or leg) from the
generator they are given, always in the same order, so a seed fixes the motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from atom.motion.events import EVENT_NAMES
from atom.motion.world.body import rot_y
from atom.motion.world.gait import Gait, body_sway, plan_steps, step_feet
from atom.motion.world.track import LEFT, RIGHT, SIDE, Style, Track, arm_direction, ease, keys

FPS = 20
G = 9.81
DEG = np.pi / 180.0


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _frames(seconds: float) -> int:
    return max(1, int(round(seconds * FPS)))


def _arm_targets(style: Style, flex, abduct, reach, limb: int) -> np.ndarray:
    flex = np.asarray(flex, dtype=np.float64)
    abduct = np.asarray(abduct, dtype=np.float64)
    reach = np.asarray(reach, dtype=np.float64)
    d = arm_direction(flex, abduct, SIDE[limb])
    return d * np.broadcast_to(reach * style.body.arm, d.shape[:-1])[..., None]


def _shoulder_x(style: Style) -> float:
    off = style.body.offsets
    return float(off[13, 0] + off[16, 0])


def _set_arm(track: Track, style: Style, limb: int, times, flex, abduct, reach) -> None:
    """Keyframe one arm by angles (eased between keys); angles interpolate, so paths arc."""
    n = track.n
    f = keys(n, times, flex)
    a = keys(n, times, abduct)
    r = keys(n, times, reach)
    track.wrist[:, limb] = _arm_targets(style, f, a, r, limb)


def _hang(style: Style) -> tuple[float, float, float]:
    return style.hang_flex, style.hang_abduct, style.hang_reach


def _head_follow(track: Track, lead_frames: int = 4, gain: float = 0.6, limit: float = 0.6) -> None:
    """The head looks ahead into a turn."""
    h = track.heading
    ahead = np.concatenate([h[lead_frames:], np.repeat(h[-1:], lead_frames)])
    track.head[:, 1] += np.clip(gain * (ahead - h), -limit, limit)


# ---------------------------------------------------------------------------------------------
# Stepping events


def _walk_path(track: Track, steps, direction: np.ndarray, distance: float, ramp: float) -> None:
    """Move the root `distance` along `direction` (heading frame), easing in and out.

    The body sets off as the first heel rises and comes to rest as the last step lands, so the
    feet are under it at both ends and the finishing steps bring them together.
    """
    n = track.n
    t_start = max(0.0, min(s[1] for s in steps) - 2.0)
    t_end = max(s[2] for s in steps)
    t = np.arange(n, dtype=np.float64)
    r = min(ramp, (t_end - t_start) / 2.0)
    # Speed: eased up over `r` frames, flat, eased down to zero at t_end.
    v = ease((t - t_start) / r) - ease((t - (t_end - r)) / r)
    v[t >= t_end] = 0.0
    pos = np.concatenate([[0.0], np.cumsum(v[:-1])])
    pos *= distance / max(pos[-1], 1e-9)
    track.root[:, 0] += pos * direction[0]
    track.root[:, 2] += pos * direction[1]


def walk(style: Style, rng: np.random.Generator, n: int, backward: bool = False) -> Track:
    s = style.body.height_scale
    cadence = (_u(rng, 1.5, 1.9) if backward else _u(rng, 1.7, 2.1)) * style.tempo  # steps / s
    step = (_u(rng, 0.32, 0.45) if backward else _u(rng, 0.5, 0.66)) * s * style.vigour
    half = FPS / cadence
    swing = int(round(0.8 * half))
    gait = Gait(
        half_cycle=half,
        swing=swing,
        clearance=_u(rng, 0.05, 0.09) * s,
        heel_raise=_u(rng, 0.25, 0.45),
        lead=(2 * half - swing) / 2.0,
        first_foot=int(rng.integers(2)),
    )
    tr = Track.standing(style, n)
    steps = plan_steps(n, gait)
    t_end = max(st[2] for st in steps)
    speed = step * cadence / FPS  # metres per frame at cruise
    ramp = 1.2 * half
    t_go = min(st[1] for st in steps) - 2
    distance = speed * max(t_end - t_go - ramp, 1.0)
    _walk_path(tr, steps, np.array([0.0, -1.0 if backward else 1.0]), distance, ramp)
    step_feet(tr, style, gait, steps)
    lean = _u(rng, 2.0, 5.0) * DEG if not backward else _u(rng, 3.0, 7.0) * DEG
    tr.spine[:, 0] += lean * _busy(tr)
    body_sway(tr, style, amount=_u(rng, 0.015, 0.03), arm_swing=_u(rng, 0.45, 0.75) * (0.6 if backward else 1.0), twist=_u(rng, 0.05, 0.1))
    tr.params = {"distance": round(distance, 3), "cadence": round(cadence, 3)}
    return tr


def _busy(tr: Track) -> np.ndarray:
    """1 while the feet are moving, eased to 0 at rest (to fade posture changes in and out)."""
    moving = ~np.all(tr.contact, axis=1)
    idx = np.nonzero(moving)[0]
    if len(idx) == 0:
        return np.zeros(tr.n)
    return keys(tr.n, [0, idx[0], idx[-1], tr.n - 1], [0.0, 1.0, 1.0, 0.0])


def walk_forward(style, rng, n):
    return walk(style, rng, n, backward=False)


def walk_backward(style, rng, n):
    return walk(style, rng, n, backward=True)


def run(style: Style, rng: np.random.Generator, n: int) -> Track:
    s = style.body.height_scale
    cadence = _u(rng, 2.6, 3.1) * style.tempo
    step = _u(rng, 0.8, 1.1) * s * style.vigour
    half = FPS / cadence
    swing = int(round(1.3 * half))  # longer than half a cycle: both feet off the floor at times
    gait = Gait(
        half_cycle=half,
        swing=swing,
        clearance=_u(rng, 0.16, 0.26) * s,
        heel_raise=_u(rng, 0.45, 0.7),
        lead=(2 * half - swing) / 2.0,
        first_foot=int(rng.integers(2)),
    )
    tr = Track.standing(style, n)
    steps = plan_steps(n, gait)
    t_end = max(st[2] for st in steps)
    speed = step * cadence / FPS
    ramp = 2.2 * half
    t_go = min(st[1] for st in steps) - 2
    distance = speed * max(t_end - t_go - ramp, 1.0)
    _walk_path(tr, steps, np.array([0.0, 1.0]), distance, ramp)
    step_feet(tr, style, gait, steps)
    busy = _busy(tr)
    tr.spine[:, 0] += _u(rng, 8.0, 14.0) * DEG * busy
    tr.pelvis[:, 0] += _u(rng, 3.0, 6.0) * DEG * busy
    # In flight the pelvis rises; on the ground the legs' reach pulls it down.
    airborne = ~np.any(tr.contact, axis=1)
    tr.root[:, 1] += (0.05 * s * airborne.astype(float) - 0.03 * s) * busy
    # Bent elbows, held forward.
    for limb in (LEFT, RIGHT):
        f, a, r = _hang(style)
        tr.wrist[:, limb] = _arm_targets(style, f + (35 * DEG - f) * busy, a, r + (0.68 - r) * busy, limb)
        tr.elbow_pole[:, limb] = [SIDE[limb] * 0.2, -0.3, -1.0]
    body_sway(tr, style, amount=0.015, arm_swing=_u(rng, 0.7, 1.0), twist=_u(rng, 0.08, 0.14))
    tr.params = {"distance": round(distance, 3), "cadence": round(cadence, 3)}
    return tr


def sidestep(style: Style, rng: np.random.Generator, n: int, side: int) -> Track:
    s = style.body.height_scale
    # Brisk shuffling steps; at least two step-together cycles (four steps), quicker when short.
    half = FPS / (_u(rng, 1.9, 2.5) * style.tempo)
    if (n - 5) / half - 1.28 + 1 < 4:
        half = (n - 5) / (3 + 1.28)
    swing = int(round(0.85 * half))
    gait = Gait(
        half_cycle=half,
        swing=swing,
        clearance=_u(rng, 0.04, 0.07) * s,
        heel_raise=_u(rng, 0.1, 0.25),
        lead=(2 * half - swing) / 2.0,
        first_foot=side,
        lead_extra=0.75 * half,
    )
    tr = Track.standing(style, n)
    steps = plan_steps(n, gait)
    # Step-together: the leading foot reaches out a half cycle ahead, the other closes up;
    # the feet never cross as long as each cycle covers less than the stance is wide.
    cycles = len(steps) / 2.0
    distance = _u(rng, 0.2, 0.3) * s * style.vigour * cycles
    _walk_path(tr, steps, np.array([SIDE[side], 0.0]), distance, ramp=1.5 * half)
    step_feet(tr, style, gait, steps)
    body_sway(tr, style, amount=0.01, arm_swing=0.1, twist=0.0)
    # Arms drift out a little towards the travel side for balance.
    busy = _busy(tr)
    for limb in (LEFT, RIGHT):
        f, a, r = _hang(style)
        tr.wrist[:, limb] = _arm_targets(style, f, a + 8 * DEG * busy, r, limb)
    tr.params = {"distance": round(distance, 3)}
    return tr


def sidestep_left(style, rng, n):
    return sidestep(style, rng, n, LEFT)


def sidestep_right(style, rng, n):
    return sidestep(style, rng, n, RIGHT)


def turn(style: Style, rng: np.random.Generator, n: int, sign: float) -> Track:
    """Turn on the spot in a few steps: the inside foot opens first, the last steps square up."""
    s = style.body.height_scale
    angle = sign * _u(rng, 75.0, 110.0) * DEG
    # Two steps per foot (three when short) so no single step has to swivel the whole turn.
    k = 4 if n >= 26 else 3
    # Fit k steps: heel raise (~0.43 half), k - 1 half cycles, one swing (0.85 half), 4 to settle.
    half = (n - 5) / (k - 1 + 0.85 + 0.43)
    swing = int(round(0.85 * half))
    gait = Gait(
        half_cycle=half,
        swing=swing,
        clearance=_u(rng, 0.04, 0.07) * s,
        heel_raise=_u(rng, 0.15, 0.3),
        lead=(2 * half - swing) / 2.0,
        first_foot=LEFT if angle > 0 else RIGHT,
        width=1.5,
        bulge=0.05 * s,
    )
    tr = Track.standing(style, n)
    steps = plan_steps(n, gait)
    t_end = max(st[2] for st in steps)
    # The body turns a little ahead of the feet and finishes as the last step lands.
    t0 = max(1.0, min(st[1] for st in steps) - 2.0)
    t1 = max(t_end - 1.0, t0 + 2.0)
    t = np.arange(n)
    tr.heading[:] = angle * ease((t - t0) / (t1 - t0))
    step_feet(tr, style, gait, steps)
    _head_follow(tr)
    body_sway(tr, style, amount=0.008, arm_swing=0.1, twist=0.0)
    busy = _busy(tr)
    arms_out = _u(rng, 0, 8) * DEG
    for limb in (LEFT, RIGHT):
        f, a, r = _hang(style)
        tr.wrist[:, limb] = _arm_targets(style, f, a + arms_out * busy, r, limb)
    tr.params = {"angle_deg": round(float(np.degrees(angle)), 2)}
    return tr


def turn_left(style, rng, n):
    return turn(style, rng, n, +1.0)


def turn_right(style, rng, n):
    return turn(style, rng, n, -1.0)


def spin(style: Style, rng: np.random.Generator, n: int) -> Track:
    """A full turn on the ball of one foot, the other foot tucked up beside the standing leg."""
    s = style.body.height_scale
    sign = 1.0 if rng.random() < 0.5 else -1.0
    angle = sign * _u(rng, 345.0, 375.0) * DEG
    pivot = LEFT if sign > 0 else RIGHT  # spin over the foot on the inside of the turn
    free = 1 - pivot
    tr = Track.standing(style, n)
    t_prep = 1 + (n - 2) * _u(rng, 0.1, 0.16)
    t_stop = n - 1 - (n - 2) * _u(rng, 0.12, 0.18)
    times = [0, t_prep, t_stop, n - 1]
    tr.heading[:] = keys(n, times, [0, 0, angle, angle])
    toes = style.stand_toes()
    t_p = toes[pivot, [0, 2]]
    # The root circles the pivot toe, drawn in over it while spinning (weight on that foot).
    k = keys(n, times, [1.0, 0.3, 0.3, 1.0])
    rel = np.stack([k * toes[pivot, 0], np.zeros(n), np.full(n, toes[pivot, 2])], axis=1)
    r = rot_y(tr.heading)
    tr.root[:, [0, 2]] = t_p - np.einsum("tij,tj->ti", r, rel)[:, [0, 2]]
    tr.root[:, 1] -= keys(n, times, [0, 0.03, 0.03, 0]) * s
    # Pivot foot: toe fixed, swivelling on its ball.
    tr.toe[:, pivot, [0, 2]] = t_p
    tr.foot_yaw[:, pivot] = tr.heading + SIDE[pivot] * style.toe_out
    tr.foot_pitch[:, pivot] = keys(n, times, [0, 0.35, 0.35, 0])
    # Free foot: lifted beside the standing knee, carried round with the body, set down at the end.
    t = np.arange(n, dtype=np.float64)
    lift = keys(n, [0, t_prep, t_prep + 3, t_stop - 3, t_stop, n - 1], [0, 0, 1, 1, 0, 0])
    free_rel = np.tile(toes[free], (n, 1))
    free_rel[:, 0] -= SIDE[free] * 0.05 * s * lift
    free_rel[:, 1] = _u(rng, 0.12, 0.2) * s * lift
    free_rel[:, 2] -= 0.05 * s * lift
    carried = tr.root * [1, 0, 1] + np.einsum("tij,tj->ti", r, free_rel)
    # Planted before and after: blend from the start spot into the carried path and back out.
    start_spot = np.array([toes[free, 0], 0.0, toes[free, 2]])
    end_spot = carried[-1] * [1, 0, 1]
    first_half = t < 0.5 * (t_prep + t_stop)
    spot = np.where(first_half[:, None], start_spot, end_spot)
    tr.toe[:, free] = spot + (carried - spot) * lift[:, None]
    tr.foot_yaw[:, free] = tr.heading + SIDE[free] * style.toe_out
    tr.foot_pitch[:, free] = 0.4 * lift
    tr.contact[:, free] = lift <= 1e-6
    _head_follow(tr)
    f, a, r_ = _hang(style)
    out = _u(rng, 15.0, 35.0) * DEG
    for limb in (LEFT, RIGHT):
        _set_arm(tr, style, limb, times, [f, f, f, f], [a, a + out, a + out, a], [r_] * 4)
    tr.params = {"angle_deg": round(float(np.degrees(angle)), 2), "pivot": "left" if pivot == LEFT else "right"}
    return tr


# ---------------------------------------------------------------------------------------------
# Jumps


def jump(style: Style, rng: np.random.Generator, n: int, forward: bool) -> Track:
    s = style.body.height_scale
    tr = Track.standing(style, n)
    h0 = style.stand_height
    flight = int(np.clip(round(_u(rng, 6.0, 9.0) * style.vigour), 5, 10))
    t_f = flight / FPS
    v0 = G * t_f / 2.0
    distance = _u(rng, 0.45, 0.9) * s * style.vigour if forward else _u(rng, -0.03, 0.03) * s
    # Phase lengths share what the flight leaves, in natural proportions.
    rest = n - flight - 2
    crouch = max(4, int(round(rest * 0.3)))
    push = max(3, int(round(rest * 0.17)))
    absorb = max(3, int(round(rest * 0.2)))
    start = 1
    t_bottom = start + crouch
    t_off = t_bottom + push  # last frame on the floor
    t_land = t_off + flight  # first frame back on the floor
    t_absorbed = t_land + absorb
    t_end = n - 1
    depth = _u(rng, 0.1, 0.18) * s * style.vigour
    heel = _u(rng, 0.5, 0.75)
    rise = 0.062 * s * np.sin(heel) / np.sin(0.6)  # the pelvis rises with the heels at take-off

    t = np.arange(n, dtype=np.float64)
    y = keys(n, [0, start, t_bottom, t_off], [h0, h0, h0 - depth, h0 + rise])
    k = (t > t_off) & (t < t_land)
    tau = (t[k] - t_off) / FPS
    y[k] = h0 + rise + v0 * tau - 0.5 * G * tau * tau
    land_depth = _u(rng, 0.06, 0.12) * s
    after = keys(n, [t_land, t_absorbed, t_end], [h0 + 0.02 * s, h0 - land_depth, h0])
    y[t >= t_land] = after[t >= t_land]
    tr.root[:, 1] = y

    # Horizontal path: weight back in the crouch, carried through the flight, settled after.
    z = keys(n, [0, start, t_bottom, t_off], [0.0, 0.0, -0.04 * s if forward else 0.0, 0.06 * s if forward else 0.0])
    z_to = z[t_off]
    z_ld = distance - (0.05 * s if forward else 0.0)
    z[k] = z_to + (z_ld - z_to) * (t[k] - t_off) / (t_land - t_off)
    z_after = keys(n, [t_land, t_absorbed, t_end], [z_ld, distance, distance])
    z[t >= t_land] = z_after[t >= t_land]
    tr.root[:, 2] = z

    # Feet: planted, heels rising into the push, rigid under the body in the air, landing flat.
    toes0 = style.stand_toes()
    pitch = keys(n, [0, t_bottom, t_off], [0.0, 0.0, heel])
    pitch_air = keys(n, [t_off, t_land - 1, t_land, t_land + 2], [heel, 0.5 * heel, 0.45 * heel, 0.0])
    pitch[t > t_off] = pitch_air[t > t_off]
    tr.foot_pitch[:] = pitch[:, None]
    air = (t > t_off) & (t < t_land)
    tr.contact[air] = False
    frac = ease((t - t_off) / (t_land - t_off))
    tuck = 0.08 * s * np.sin(np.pi * np.clip((t - t_off) / (t_land - t_off), 0, 1))
    for foot in (LEFT, RIGHT):
        tr.toe[:, foot, 2] = toes0[foot, 2] + distance * frac
        tr.toe[:, foot, 1] = np.where(air, (y - (h0 + rise)) + tuck, 0.0)
        tr.toe[:, foot, 1] = np.maximum(tr.toe[:, foot, 1], 0.0)

    # Trunk and arms: lean into the crouch, arms back then swung forward for the take-off.
    lean = (_u(rng, 25.0, 38.0) if forward else _u(rng, 15.0, 25.0)) * DEG
    trunk = keys(n, [0, start, t_bottom, t_off, t_land, t_absorbed, t_end], [0.0, 0.0, lean, 0.3 * lean, 0.5 * lean, 0.7 * lean, 0.0])
    tr.pelvis[:, 0] = 0.5 * trunk
    tr.spine[:, 0] += 0.5 * trunk
    tr.head[:, 0] -= 0.4 * trunk
    swing_up = _u(rng, 45.0, 70.0) * DEG
    swing_back = -_u(rng, 25.0, 40.0) * DEG
    f, a, r = _hang(style)
    for limb in (LEFT, RIGHT):
        # Arms go back in the crouch and swing through during the push into the flight.
        _set_arm(
            tr,
            style,
            limb,
            [0, start, t_bottom - 1, t_off + 3, t_land, t_absorbed, t_end],
            [f, f, swing_back, swing_up, 0.7 * swing_up, 20 * DEG, f],
            [a] * 7,
            [r] * 7,
        )
    tr.params = {"distance": round(distance, 3), "flight_frames": flight, "height": round(G * t_f * t_f / 8.0, 3)}
    return tr


def jump_in_place(style, rng, n):
    return jump(style, rng, n, forward=False)


def jump_forward(style, rng, n):
    return jump(style, rng, n, forward=True)


# ---------------------------------------------------------------------------------------------
# Going down and up


def squat(style: Style, rng: np.random.Generator, n: int) -> Track:
    s = style.body.height_scale
    tr = Track.standing(style, n)
    h0 = style.stand_height
    depth = _u(rng, 0.24, 0.36) * s * style.vigour
    back = _u(rng, 0.06, 0.12) * s
    lean = _u(rng, 16.0, 30.0) * DEG
    hold = int(rng.integers(0, 3))
    down = (n - 2 - hold) * _u(rng, 0.45, 0.55)
    t_b = 1 + down
    t_u = t_b + hold
    times = [0, 1, t_b, t_u, n - 1]
    tr.root[:, 1] = keys(n, times, [h0, h0, h0 - depth, h0 - depth, h0])
    tr.root[:, 2] = keys(n, times, [0, 0, -back, -back, 0])
    trunk = keys(n, times, [0, 0, lean, lean, 0])
    tr.pelvis[:, 0] = 0.6 * trunk
    tr.spine[:, 0] += 0.4 * trunk
    tr.head[:, 0] -= 0.5 * trunk
    f, a, r = _hang(style)
    if rng.random() < 0.6:  # arms out in front for balance
        up = _u(rng, 70.0, 90.0) * DEG
        for limb in (LEFT, RIGHT):
            _set_arm(tr, style, limb, times, [f, f, up, up, f], [a, a, 8 * DEG, 8 * DEG, a], [r, r, 0.97, 0.97, r])
    tr.params = {"depth": round(depth, 3)}
    return tr


def sit_down(style: Style, rng: np.random.Generator, n: int) -> Track:
    """Sit down and stand up again, no chair: the hips go low and back, then hold."""
    s = style.body.height_scale
    tr = Track.standing(style, n)
    h0 = style.stand_height
    seat = _u(rng, 0.4, 0.48) * s
    back = _u(rng, 0.22, 0.3) * s
    frac_hold = _u(rng, 0.22, 0.34)
    hold = (n - 2) * frac_hold
    down = (n - 2 - hold) * _u(rng, 0.45, 0.55)
    t1 = 1 + down
    t2 = t1 + hold
    t3 = n - 1
    times = [0, 1, 1 + 0.6 * down, t1, t2, t2 + 0.4 * (t3 - t2), t3]
    tr.root[:, 1] = keys(n, times, [h0, h0, h0 - 0.55 * (h0 - seat), seat, seat, h0 - 0.55 * (h0 - seat), h0])
    tr.root[:, 2] = keys(n, times, [0, 0, -0.6 * back, -back, -back, -0.6 * back, 0])
    lean_go = _u(rng, 32.0, 42.0) * DEG
    lean_sit = _u(rng, 8.0, 18.0) * DEG
    trunk = keys(n, times, [0, 0, lean_go, 0.8 * lean_go, lean_sit, lean_go, 0])
    tr.pelvis[:, 0] = 0.5 * trunk
    tr.spine[:, 0] += 0.5 * trunk
    tr.head[:, 0] -= 0.5 * trunk
    f, a, r = _hang(style)
    reach_fwd = _u(rng, 40.0, 70.0) * DEG
    for limb in (LEFT, RIGHT):
        # Reach forward going down and getting up; hands rest on the thighs while seated.
        _set_arm(tr, style, limb, times, [f, f, reach_fwd, 45 * DEG, 45 * DEG, reach_fwd, f], [a] * 7, [r, r, 0.95, 0.85, 0.85, 0.95, r])
    tr.params = {"seat_height": round(seat, 3)}
    return tr


def bow(style: Style, rng: np.random.Generator, n: int) -> Track:
    s = style.body.height_scale
    tr = Track.standing(style, n)
    pel = _u(rng, 30.0, 45.0) * DEG
    spi = _u(rng, 25.0, 40.0) * DEG
    hold = (n - 2) * _u(rng, 0.1, 0.25)
    down = (n - 2 - hold) * _u(rng, 0.45, 0.55)
    times = [0, 1, 1 + down, 1 + down + hold, n - 1]
    w = keys(n, times, [0, 0, 1, 1, 0])
    tr.pelvis[:, 0] = pel * w
    tr.spine[:, 0] += spi * w
    tr.head[:, 0] += _u(rng, 5.0, 20.0) * DEG * w
    tr.root[:, 2] = -_u(rng, 0.04, 0.09) * s * w
    tr.root[:, 1] -= 0.02 * s * w
    if rng.random() < 0.3:  # a formal bow: one hand across the stomach
        limb = int(rng.integers(2))
        f, a, r = _hang(style)
        _set_arm(tr, style, limb, times, [f, f, 40 * DEG, 40 * DEG, f], [a, a, -25 * DEG, -25 * DEG, a], [r, r, 0.55, 0.55, r])
        tr.params["hand_on_stomach"] = "left" if limb == LEFT else "right"
    tr.params["angle_deg"] = round(float(np.degrees(pel + spi)), 2)
    return tr


# ---------------------------------------------------------------------------------------------
# Legs and arms


def kick(style: Style, rng: np.random.Generator, n: int) -> Track:
    s = style.body.height_scale
    body = style.body
    leg = style.hand
    other = 1 - leg
    tr = Track.standing(style, n)
    toes = style.stand_toes()
    # How high the straight leg swings, as its angle from hanging (60 deg: foot about knee high).
    angle = _u(rng, 45.0, 80.0) * DEG * min(style.vigour, 1.05)
    t_lift = 1 + (n - 2) * 0.2
    t_chamber = 1 + (n - 2) * 0.38
    t_ext = 1 + (n - 2) * 0.52
    t_back = 1 + (n - 2) * 0.68
    t_down = 1 + (n - 2) * 0.86
    times = [0, t_lift, t_chamber, t_ext, t_back, t_down, n - 1]
    shift_w = keys(n, times, [0, 0.6, 1, 1, 1, 0.6, 0])
    shift = 0.05 * s
    tr.root[:, 0] += SIDE[other] * shift * shift_w
    tr.root[:, 1] -= keys(n, times, [0, 0.01, 0.03, 0.04, 0.03, 0.01, 0]) * s
    # Ankle aims relative to the hip (local frame): knee up, leg out straight, knee up, down.
    hip = np.array([body.offsets[1 + leg, 0] + SIDE[other] * shift, style.stand_height - body.hip_drop, body.offsets[1, 2]])
    L = body.leg
    chamber = hip + np.array([0.0, -0.5 * L, 0.35 * L])
    extend = hip + 0.97 * L * np.array([0.0, -np.cos(angle), np.sin(angle)])
    ankle0 = np.array([toes[leg, 0], body.ankle_height, toes[leg, 2] - body.offsets[10, 2]])
    pitch_ext = max(0.0, np.pi / 2 - angle - np.arctan2(-body.offsets[10, 1], body.offsets[10, 2])) + 0.15
    pitches = np.array([0, 0.3, 0.6, pitch_ext, 0.5, 0, 0])
    ankles = np.array([ankle0, ankle0, chamber, extend, chamber, ankle0, ankle0])
    ankles[:, 0] = toes[leg, 0]
    foot = np.array([0.0, body.offsets[10 + leg, 1], body.offsets[10 + leg, 2]])
    toe_keys = np.array(
        [
            a + np.array([0.0, foot[1] * np.cos(p) - foot[2] * np.sin(p), foot[1] * np.sin(p) + foot[2] * np.cos(p)])
            for a, p in zip(ankles, pitches)
        ]
    )
    # On the floor the toe stays put (the heel may be up): no sliding before lift-off or after.
    toe_keys[1] = toe_keys[0]
    toe_keys[5] = toe_keys[6] = toe_keys[0]
    toe_keys[[0, 1, 5, 6], 1] = 0.0
    tr.toe[:, leg] = keys(n, times, toe_keys)
    tr.foot_pitch[:, leg] = keys(n, times, pitches)
    t = np.arange(n)
    tr.contact[:, leg] = ~((t > t_lift) & (t < t_down))
    # The pelvis tips back as the leg goes up; the trunk leans over it a little.
    tr.pelvis[:, 0] = keys(n, times, [0, 0, -4, -_u(rng, 8, 15), -4, 0, 0]) * DEG
    tr.spine[:, 0] += keys(n, times, [0, 0, 4, 8, 4, 0, 0]) * DEG
    tr.pelvis[:, 1] = SIDE[leg] * keys(n, times, [0, 0, 3, 5, 3, 0, 0]) * DEG
    # Arms balance: the opposite arm comes forward, the same-side arm goes back and out.
    f, a, r = _hang(style)
    w = keys(n, times, [0, 0.3, 0.7, 1, 0.7, 0.3, 0])
    tr.wrist[:, other] = _arm_targets(style, f + (35 * DEG - f) * w, a + 15 * DEG * w, r + (0.85 - r) * w, other)
    tr.wrist[:, leg] = _arm_targets(style, f + (-25 * DEG - f) * w, a + 25 * DEG * w, r, leg)
    tr.params = {"leg": "left" if leg == LEFT else "right", "angle_deg": round(float(np.degrees(angle)), 2)}
    return tr


def wave(style: Style, rng: np.random.Generator, n: int) -> Track:
    """Hand up beside the head, forearm swinging side to side a few times, hand down."""
    s = style.body.height_scale
    hand = style.hand
    tr = Track.standing(style, n)
    side = SIDE[hand]
    up = np.array([side * _u(rng, 0.18, 0.3), _u(rng, 0.2, 0.3), _u(rng, 0.0, 0.15)]) * s
    amp = _u(rng, 0.07, 0.12) * s
    freq = _u(rng, 1.6, 2.6) * style.tempo
    t_up = 1 + (n - 2) * _u(rng, 0.2, 0.27)
    t_down = n - 1 - (n - 2) * _u(rng, 0.2, 0.27)
    times = [0, 1, t_up, t_down, n - 1]
    t = np.arange(n, dtype=np.float64)
    env = keys(n, times, [0, 0, 1, 1, 0])
    # Side-to-side swing, faded in and out over a few frames at the top.
    fade = np.clip((t - t_up + 3) / 3, 0, 1) * np.clip((t_down - t + 3) / 3, 0, 1)
    osc = amp * np.sin(2 * np.pi * freq * (t - t_up) / FPS) * fade
    hang = style.hang_target()[hand]
    target = hang * (1 - env[:, None]) + up * env[:, None]
    target[:, 0] += osc
    target[:, 1] -= 0.3 * np.abs(osc)  # the hand pivots on the elbow, so it dips at the sides
    tr.wrist[:, hand] = target
    tr.elbow_pole[:, hand] = (1 - env[:, None]) * tr.elbow_pole[:, hand] + env[:, None] * np.array([side * 0.7, -1.0, 0.0])
    tr.head[:, 1] += side * 10 * DEG * env * (rng.random() < 0.5)
    tr.spine[:, 1] += -side * 3 * DEG * env
    tr.params = {"hand": "left" if hand == LEFT else "right", "frequency_hz": round(freq, 3)}
    return tr


def raise_arms(style: Style, rng: np.random.Generator, n: int) -> Track:
    tr = Track.standing(style, n)
    f, a, r = _hang(style)
    via_front = rng.random() < 0.5
    hold = (n - 2) * _u(rng, 0.12, 0.3)
    up = (n - 2 - hold) * _u(rng, 0.45, 0.55)
    times = [0, 1, 1 + up, 1 + up + hold, n - 1]
    reach = _u(rng, 0.95, 0.99)
    if via_front:
        top = _u(rng, 160.0, 175.0) * DEG
        flex, abd = [f, f, top, top, f], [a, a, 8 * DEG, 8 * DEG, a]
    else:
        top = _u(rng, 155.0, 172.0) * DEG
        flex, abd = [f, f, 12 * DEG, 12 * DEG, f], [a, a, top, top, a]
    for limb in (LEFT, RIGHT):
        _set_arm(tr, style, limb, times, flex, abd, [r, r, reach, reach, r])
        tr.elbow_pole[:, limb] = [SIDE[limb] * 0.6, 0.0, -1.0]
    tr.head[:, 0] -= 12 * DEG * keys(n, times, [0, 0, 1, 1, 0])  # looks up
    tr.params = {"path": "front" if via_front else "sides"}
    return tr


def clap(style: Style, rng: np.random.Generator, n: int, count: int = 1) -> Track:
    """Hands up to the chest, `count` claps, hands down. Spans split between claps."""
    tr = Track.standing(style, n)
    s = style.body.height_scale
    sw = _shoulder_x(style)
    height = -_u(rng, 0.12, 0.25) * s  # below the shoulders
    ahead = _u(rng, 0.28, 0.38) * s
    apart = _u(rng, 0.2, 0.34) * s
    touch = 0.06 * s
    raise_f = max(4, int(round((n - 2) * 0.18 / max(count, 1) ** 0.3)))
    lower_f = raise_f
    t_in = 1 + raise_f
    t_out = n - 1 - lower_f
    period = (t_out - t_in) / count
    t = np.arange(n, dtype=np.float64)
    u = np.clip((t - t_in) / period, 0, count)
    gap = np.where((t >= t_in) & (t <= t_out), touch + (apart - touch) * (0.5 + 0.5 * np.cos(2 * np.pi * u)), apart)
    env = keys(n, [0, 1, t_in, t_out, n - 1], [0, 0, 1, 1, 0])
    hang = style.hang_target()
    for limb in (LEFT, RIGHT):
        clap_pt = np.stack([SIDE[limb] * (gap / 2.0 - sw), np.full(n, height), np.full(n, ahead)], axis=1)
        tr.wrist[:, limb] = hang[limb] * (1 - env[:, None]) + clap_pt * env[:, None]
        tr.elbow_pole[:, limb] = (1 - env[:, None]) * tr.elbow_pole[:, limb] + env[:, None] * np.array([SIDE[limb], -1.0, -0.3])
    contacts = [t_in + (k + 0.5) * period for k in range(count)]
    bounds = [0] + [int(round(t_in + (k + 1) * period)) for k in range(count - 1)] + [n]
    tr.spans = [(bounds[k], bounds[k + 1]) for k in range(count)]
    tr.params = {"contact_frames": [round(c, 2) for c in contacts]}
    return tr


# ---------------------------------------------------------------------------------------------
# Idle


def idle(style: Style, rng: np.random.Generator, n: int) -> Track:
    """Standing still, breathing and shifting weight a little."""
    tr = Track.standing(style, n)
    t = np.arange(n, dtype=np.float64)
    ph = _u(rng, 0, 2 * np.pi)
    env = np.sin(np.pi * np.clip(t / max(n - 1, 1), 0, 1))
    tr.root[:, 0] += 0.01 * style.body.height_scale * np.sin(2 * np.pi * t / 60.0 + ph) * env
    tr.spine[:, 0] += 1.0 * DEG * np.sin(2 * np.pi * t / 40.0 + ph) * env
    return tr


# ---------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class Primitive:
    event: str
    build: Callable[..., Track]
    natural: tuple[int, int]  # usual frames per performance
    minimum: int  # fewest frames it still looks right in
    grouped: bool = False  # repetitions are built in one go (claps), not one after another

    def frames(self, rng: np.random.Generator, tempo: float) -> int:
        lo, hi = self.natural
        return int(round(rng.uniform(lo, hi) / tempo))


PRIMITIVES: dict[str, Primitive] = {
    p.event: p
    for p in (
        Primitive("walk_forward", walk_forward, (50, 86), 36),
        Primitive("walk_backward", walk_backward, (50, 80), 36),
        Primitive("run", run, (44, 66), 34),
        Primitive("turn_left", turn_left, (26, 38), 22),
        Primitive("turn_right", turn_right, (26, 38), 22),
        Primitive("sidestep_left", sidestep_left, (40, 64), 30),
        Primitive("sidestep_right", sidestep_right, (40, 64), 30),
        Primitive("jump_in_place", jump_in_place, (24, 32), 20),
        Primitive("jump_forward", jump_forward, (26, 34), 22),
        Primitive("squat", squat, (28, 44), 22),
        Primitive("sit_down", sit_down, (48, 72), 34),
        Primitive("wave", wave, (34, 52), 26),
        Primitive("raise_arms", raise_arms, (30, 46), 24),
        Primitive("kick", kick, (22, 32), 18),
        Primitive("clap", clap, (10, 14), 7, grouped=True),  # per clap; plus raise and lower
        Primitive("bow", bow, (30, 46), 24),
        Primitive("spin", spin, (34, 52), 26),
    )
}

missing = set(EVENT_NAMES) - set(PRIMITIVES)
if missing:  # the vocabulary grew without a primitive: fail at import, not mid-corpus
    raise ImportError(f"no motion primitive for events {sorted(missing)}")
