"""Kinematic event detector: which events a motion shows, when, in what order, how many times.

Works from joint positions alone (HumanML3D format: 22 joints, Y up, metres), so it applies to
real data, to the procedural world and to generated motions alike. Nothing here knows how the
world builds its motions; thresholds are in body-relative units (leg length) and seconds.

Pipeline: smooth the joints (generated motions jitter), derive per-frame signals in the body's
facing frame (root velocity, heading rate, pelvis drop below standing height, foot heights,
wrist heights and gap, trunk pitch), find each event family's intervals with hysteresis
thresholds, split them into single performances, and resolve families that explain the same
frames (a jump's crouch is not a squat; a jump's travel is not a walk).

The thresholds (Thresholds) were chosen on world clips of seed 1000 only, clean and perturbed
(`benchmarks/detector.py --seed 1000`); the benchmark's default seed 2024 is held out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import find_peaks

from atom.motion.events import EVENTS, EventLabel
from atom.motion.record import validate_joints

# Reference body: the 1.70 m adult whose leg (hip to ankle) is about 0.79 m.
REF_LEG = 0.79


@dataclass(frozen=True)
class DetectedEvent:
    """One performance of an event over frames [start, end)."""

    event: str
    start: int
    end: int
    detail: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {"event": self.event, "start": self.start, "end": self.end, "detail": self.detail}


# ---------------------------------------------------------------------------------------------
# Small signal tools


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 with edge replication (sigma in frames)."""
    if sigma <= 0 or len(x) < 2:
        return x.astype(np.float64, copy=True)
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = [(r, r)] + [(0, 0)] * (x.ndim - 1)
    xp = np.pad(x.astype(np.float64), pad, mode="edge")
    # Convolve every trailing channel along axis 0.
    flat = xp.reshape(len(xp), -1)
    out = np.empty((len(x), flat.shape[1]))
    for c in range(flat.shape[1]):
        out[:, c] = np.convolve(flat[:, c], k, mode="valid")
    return out.reshape(x.shape)


def _deriv(x: np.ndarray, fps: float) -> np.ndarray:
    """Central difference along axis 0, per second."""
    if len(x) < 2:
        return np.zeros_like(x)
    return np.gradient(x, axis=0) * fps


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of True."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def _hysteresis(x: np.ndarray, on: float, off: float) -> list[tuple[int, int]]:
    """Runs where x rises above `on`, extended while it stays above `off`."""
    out = []
    for a, b in _runs(x > off):
        if np.any(x[a:b] > on):
            out.append((a, b))
    return out


def _merge(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(runs):
        if out and a - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _covered(run: tuple[int, int], others: list[tuple[int, int]], frac: float) -> bool:
    """Is at least `frac` of `run` inside the union of `others`?"""
    n = run[1] - run[0]
    if n <= 0:
        return True
    mask = np.zeros(n, dtype=bool)
    for o in others:
        a, b = max(o[0], run[0]), min(o[1], run[1])
        if b > a:
            mask[a - run[0] : b - run[0]] = True
    return mask.mean() >= frac


def _split_peaks(x: np.ndarray, run: tuple[int, int], valley: float) -> list[tuple[int, int]]:
    """Split a run of a bump-shaped signal at valleys lower than `valley` x the smaller peak."""
    a, b = run
    seg = x[a:b]
    if len(seg) < 3:
        return [run]
    # Local maxima, merged when no deep enough valley separates them.
    peaks = [i for i in range(len(seg)) if (i == 0 or seg[i] >= seg[i - 1]) and (i == len(seg) - 1 or seg[i] > seg[i + 1])]
    cuts = []
    cur = peaks[0]
    for p in peaks[1:]:
        v = cur + int(np.argmin(seg[cur : p + 1]))
        if seg[v] < valley * min(seg[cur], seg[p]):
            cuts.append(v)
            cur = p
        elif seg[p] > seg[cur]:
            cur = p
    bounds = [0] + cuts + [len(seg)]
    return [(a + bounds[i], a + bounds[i + 1]) for i in range(len(bounds) - 1) if bounds[i + 1] > bounds[i]]


# ---------------------------------------------------------------------------------------------
# Signals


@dataclass
class Signals:
    """Per-frame kinematic signals, in body-relative units where noted."""

    n: int
    fps: float
    leg: float  # hip-to-ankle length, metres
    scale: float  # leg / REF_LEG
    heading: np.ndarray  # (n,) unwrapped facing yaw, rad
    yaw_rate: np.ndarray  # (n,) rad/s
    v_fwd: np.ndarray  # (n,) root velocity along the facing direction, m/s (window-averaged)
    v_left: np.ndarray  # (n,) root velocity to the figure's left, m/s
    speed: np.ndarray  # (n,) horizontal root speed, m/s (window-averaged)
    root_xz: np.ndarray  # (n, 2)
    drop: np.ndarray  # (n,) pelvis below standing height, in legs
    foot_h: np.ndarray  # (n, 2) lowest point of each foot above its resting height, metres
    ankle_h: np.ndarray  # (n, 2) ankle above its resting height, metres
    foot_ahead: np.ndarray  # (n, 2) ankle ahead of the pelvis along the facing, metres
    foot_speed: np.ndarray  # (n, 2) horizontal speed of each foot, m/s
    feet_xz: np.ndarray  # (n, 2, 2) toe positions on the floor plane
    trunk_pitch: np.ndarray  # (n,) forward lean of pelvis->neck from vertical, rad
    wrist_up: np.ndarray  # (n, 2) wrist above its shoulder, metres
    wrist_over_head: np.ndarray  # (n, 2) wrist above the head joint, metres
    hand_gap: np.ndarray  # (n,) distance between the wrists, metres
    hands_ahead: np.ndarray  # (n,) wrists' mean position ahead of the chest, metres
    wrist_lateral: np.ndarray  # (n, 2) wrist position to the figure's left of its shoulder, metres
    hips_back: np.ndarray  # (n,) pelvis behind the ankles' midpoint along the facing, metres


def _facing(j: np.ndarray) -> np.ndarray:
    across = (j[:, 2] - j[:, 1]) + (j[:, 17] - j[:, 16])  # points to the figure's right
    fwd = np.stack([across[:, 2], np.zeros(len(j)), -across[:, 0]], axis=1)  # up x across
    norm = np.linalg.norm(fwd, axis=1, keepdims=True)
    return fwd / np.maximum(norm, 1e-9)


def compute_signals(joints: np.ndarray, fps: float = 20.0, smooth_sigma: float = 1.5) -> Signals:
    """smooth_sigma is in frames at 20 fps; other rates scale it (and every window) to seconds."""
    raw = validate_joints(joints).astype(np.float64)
    n = len(raw)
    k = fps / 20.0
    smooth_sigma *= k
    j = _gauss(raw, smooth_sigma)

    thigh = np.linalg.norm(raw[:, [4, 5]] - raw[:, [1, 2]], axis=-1)
    shin = np.linalg.norm(raw[:, [7, 8]] - raw[:, [4, 5]], axis=-1)
    leg = float(np.median(thigh + shin))
    if not np.isfinite(leg) or leg < 1e-3:
        raise ValueError("joints have degenerate legs (zero length); pass HumanML3D-format joints in metres")
    scale = leg / REF_LEG

    fwd = _facing(j)
    heading = np.unwrap(np.arctan2(fwd[:, 0], fwd[:, 2]))
    heading = _gauss(heading, 2.0 * k)
    yaw_rate = _deriv(heading, fps)
    fwd = np.stack([np.sin(heading), np.zeros(n), np.cos(heading)], axis=1)
    left = np.stack([np.cos(heading), np.zeros(n), -np.sin(heading)], axis=1)

    root_xz = j[:, 0, [0, 2]]
    # Velocity averaged over ~0.5 s, which cancels the side-to-side sway of each stride.
    vel = _gauss(_deriv(root_xz, fps), 4.0 * k)
    v_fwd = vel[:, 0] * fwd[:, 0] + vel[:, 1] * fwd[:, 2]
    v_left = vel[:, 0] * left[:, 0] + vel[:, 1] * left[:, 2]
    speed = np.hypot(vel[:, 0], vel[:, 1])

    # Resting heights: the floor is where the feet spend their lowest moments.
    ankles = j[:, [7, 8]]
    toes = j[:, [10, 11]]
    ankle_rest = np.percentile(ankles[..., 1], 5, axis=0)
    toe_rest = np.percentile(toes[..., 1], 5, axis=0)
    ankle_h = ankles[..., 1] - ankle_rest
    foot_h = np.minimum(ankle_h, toes[..., 1] - toe_rest)
    hip_drop = float(np.median(j[:, 0, 1] - 0.5 * (j[:, 1, 1] + j[:, 2, 1])))
    stand = float(np.mean(ankle_rest)) + 0.975 * leg + hip_drop
    drop = (stand - j[:, 0, 1]) / leg

    rel_ankle = ankles - j[:, None, 0]
    foot_ahead = rel_ankle[..., 0] * fwd[:, None, 0] + rel_ankle[..., 2] * fwd[:, None, 2]
    foot_speed = np.linalg.norm(_deriv(toes[..., [0, 2]], fps), axis=-1)
    mid_ankle = 0.5 * (ankles[:, 0] + ankles[:, 1]) - j[:, 0]
    hips_back = mid_ankle[:, 0] * fwd[:, 0] + mid_ankle[:, 2] * fwd[:, 2]

    trunk = j[:, 12] - j[:, 0]
    trunk_fwd = trunk[:, 0] * fwd[:, 0] + trunk[:, 2] * fwd[:, 2]
    trunk_pitch = np.arctan2(trunk_fwd, trunk[:, 1])

    wrists = j[:, [20, 21]]
    shoulders = j[:, [16, 17]]
    wrist_up = wrists[..., 1] - shoulders[..., 1]
    wrist_over_head = wrists[..., 1] - j[:, None, 15, 1]
    # Claps are quick (2-3 a second): their gap comes from lightly smoothed wrists.
    fine = _gauss(raw[:, [20, 21]], min(smooth_sigma, 0.75 * k))
    hand_gap = np.linalg.norm(fine[:, 0] - fine[:, 1], axis=-1)
    chest = j[:, 9]
    hands_rel = 0.5 * (wrists[:, 0] + wrists[:, 1]) - chest
    hands_ahead = hands_rel[:, 0] * fwd[:, 0] + hands_rel[:, 2] * fwd[:, 2]
    wl = wrists - shoulders
    wrist_lateral = wl[..., 0] * left[:, None, 0] + wl[..., 2] * left[:, None, 2]

    return Signals(
        n=n,
        fps=float(fps),
        leg=leg,
        scale=scale,
        heading=heading,
        yaw_rate=yaw_rate,
        v_fwd=v_fwd,
        v_left=v_left,
        speed=speed,
        root_xz=root_xz,
        drop=drop,
        foot_h=foot_h,
        ankle_h=ankle_h,
        foot_ahead=foot_ahead,
        foot_speed=foot_speed,
        feet_xz=toes[..., [0, 2]],
        trunk_pitch=trunk_pitch,
        wrist_up=wrist_up,
        wrist_over_head=wrist_over_head,
        hand_gap=hand_gap,
        hands_ahead=hands_ahead,
        wrist_lateral=wrist_lateral,
        hips_back=hips_back,
    )


# ---------------------------------------------------------------------------------------------
# Thresholds. Lengths are in legs (hip-to-ankle) or metres scaled by the body (x scale), speeds
# in m/s, angles in degrees, durations in frames at 20 fps (scaled to other rates).


@dataclass(frozen=True)
class Thresholds:
    # Locomotion
    move_on: float = 0.22  # m/s root speed that starts a locomotion interval
    move_off: float = 0.1
    min_travel: float = 0.25  # metres (x scale) an interval must cover
    min_steps: int = 2  # foot swings within a locomotion interval
    swing_speed: float = 0.45  # m/s (x scale) of a foot that is stepping
    step_length: float = 0.06  # metres (x scale) a stepping foot must travel
    # A forward interval is a run when two of three cues agree: speed, high feet, bent arms.
    run_speed: float = 1.95  # m/s (x sqrt scale) peak speed
    run_lift: float = 0.105  # metres (x scale) the stepping feet rise (95th percentile)
    run_arms: float = -0.33  # metres (x scale): typical highest wrist relative to its shoulder
    # Turning
    turn_rate_on: float = 40.0  # deg/s
    turn_rate_off: float = 12.0
    turn_min: float = 45.0  # deg a turn must reach
    spin_min: float = 240.0  # deg from which a rotation is a spin
    # Jumps
    air_height: float = 0.05  # metres (x scale) both feet must be above rest
    air_frames: int = 3  # frames at 20 fps both feet must stay up
    air_peak: float = 0.06  # metres (x scale) the lower foot must reach at the top
    jump_rise: float = 0.1  # legs the pelvis must rise above standing in the air
    jump_swing: float = 0.12  # legs from the crouch before take-off to the top of the flight
    jump_max_speed: float = 1.9  # m/s: faster airborne phases are running strides
    jump_forward: float = 0.2  # metres (x scale) travelled forward that make a jump a jump forward
    # Squat / sit
    drop_on: float = 0.2  # legs of pelvis drop
    drop_off: float = 0.08
    sit_travel: float = 0.5  # metres (x scale): less travel inside a squat or sit is not a walk
    sit_score: float = 0.74  # drop + 0.5 * hips behind ankles (legs) + 0.25 * seconds held low
    # Bow
    bow_on: float = 33.0  # deg of trunk pitch
    bow_off: float = 15.0
    bow_max_drop: float = 0.2
    # Kick
    kick_on: float = 0.33  # legs: ankle above rest
    kick_off: float = 0.12
    kick_ahead: float = 0.1  # legs: raised ankle ahead of the pelvis
    # Arms
    raise_on: float = 0.1  # metres (x scale) both wrists above the head
    raise_off: float = 0.0
    wave_on: float = 0.06  # metres (x scale) one wrist above its shoulder
    wave_off: float = 0.0
    clap_gap: float = 0.2  # metres (x scale): wrists closer than this may be touching
    clap_open: float = 0.06  # metres (x scale) the hands must part around each clap
    min_frames: int = 4  # shortest performance kept, frames at 20 fps


DEFAULT = Thresholds()


def _frames(k: float, fps: float) -> int:
    return max(1, int(round(k * fps / 20.0)))


# ---------------------------------------------------------------------------------------------
# Families


def _jumps(s: Signals, th: Thresholds) -> list[DetectedEvent]:
    air = np.all(s.foot_h > th.air_height * s.scale, axis=1)
    out = []
    for a, b in _runs(air):
        if b - a < _frames(th.air_frames, s.fps):
            continue
        if np.max(np.min(s.foot_h[a:b], axis=1)) < th.air_peak * s.scale:
            continue
        if np.max(-s.drop[a:b]) < th.jump_rise:
            continue  # feet up but the body did not rise: a stumble or noise
        before = s.drop[max(0, a - _frames(12, s.fps)) : a + 1]
        if np.max(-s.drop[a:b]) + np.max(before) < th.jump_swing:
            continue  # no crouch into the take-off: the whole figure drifting up, not a jump
        if np.median(s.speed[a:b]) > th.jump_max_speed * np.sqrt(s.scale):
            continue  # a running stride's flight
        # The performance: from the crouch before take-off to the recovery after landing.
        pre = _frames(20, s.fps)
        post = _frames(20, s.fps)
        start = a
        while start > max(0, a - pre) and s.drop[start - 1] > 0.02:
            start -= 1
        start = max(0, min(start, a - _frames(3, s.fps)))
        end = b
        while end < min(s.n, b + post) and s.drop[end] > 0.02:
            end += 1
        end = min(s.n, max(end, b + _frames(3, s.fps)))
        i0, i1 = max(0, a - 2), min(s.n - 1, b + 1)
        d = s.root_xz[i1] - s.root_xz[i0]
        h = 0.5 * (s.heading[i0] + s.heading[i1])
        along = d[0] * np.sin(h) + d[1] * np.cos(h)
        event = "jump_forward" if along > th.jump_forward * s.scale else "jump_in_place"
        out.append(DetectedEvent(event, start, end, {"air_frames": b - a, "forward_m": round(float(along), 3)}))
    # Consecutive jumps can claim each other's crouch/recovery frames: split the difference.
    for k in range(1, len(out)):
        if out[k].start < out[k - 1].end:
            mid = (out[k].start + out[k - 1].end) // 2
            out[k - 1] = DetectedEvent(out[k - 1].event, out[k - 1].start, mid, out[k - 1].detail)
            out[k] = DetectedEvent(out[k].event, mid, out[k].end, out[k].detail)
    return out


def _rotations(s: Signals, th: Thresholds) -> list[DetectedEvent]:
    rate = np.degrees(np.abs(s.yaw_rate))
    out = []
    for run in _hysteresis(rate, th.turn_rate_on, th.turn_rate_off):
        for a, b in _split_peaks(rate, run, 0.3):
            total = float(np.degrees(s.heading[b - 1] - s.heading[a]))
            if abs(total) < th.turn_min:
                continue
            if abs(total) >= th.spin_min:
                # One spin per full turn in the bump (a merged double spin is two).
                k = max(1, int(round(abs(total) / 360.0)))
                edges = np.linspace(a, b, k + 1).round().astype(int)
                for i in range(k):
                    out.append(DetectedEvent("spin", int(edges[i]), int(edges[i + 1]), {"angle_deg": round(total / k, 1)}))
            else:
                out.append(DetectedEvent("turn_left" if total > 0 else "turn_right", a, b, {"angle_deg": round(total, 1)}))
    return out


def _locomotion(s: Signals, th: Thresholds, exclude: list[tuple[int, int]]) -> list[DetectedEvent]:
    speed = s.speed.copy()
    for a, b in exclude:
        speed[a:b] = 0.0
    swinging = s.foot_speed > th.swing_speed * s.scale
    out = []
    for run in _hysteresis(speed, th.move_on * np.sqrt(s.scale), th.move_off * np.sqrt(s.scale)):
        for a, b in _split_peaks(speed, run, 0.25):
            if b - a < _frames(th.min_frames * 2, s.fps):
                continue
            travel = float(np.linalg.norm(s.root_xz[b - 1] - s.root_xz[a]))
            if travel < th.min_travel * s.scale:
                continue
            # Steps alternate: a swing that starts and ends with one of the other foot's (both
            # feet leaving and landing together, as in a jump) is not a step.
            # A swing must carry the foot somewhere (jittery feet twitch in place).
            feet_xz = s.feet_xz
            swings = []
            for f in (0, 1):
                mine = []
                for r0, r1 in _merge(_runs(swinging[a:b, f]), 2):
                    i0, i1 = max(0, a + r0 - 1), min(s.n - 1, a + r1)
                    if r1 - r0 >= 2 and np.linalg.norm(feet_xz[i1, f] - feet_xz[i0, f]) >= th.step_length * s.scale:
                        mine.append((r0, r1))
                swings.append(mine)
            tol = _frames(3, s.fps)
            steps = 0
            for f in (0, 1):
                for r0, r1 in swings[f]:
                    if not any(abs(q0 - r0) <= tol and abs(q1 - r1) <= tol for q0, q1 in swings[1 - f]):
                        steps += 1
            if steps < th.min_steps:
                continue  # the body moved but the feet did not step: leaning, sitting back, jumping
            vf = float(np.mean(s.v_fwd[a:b]))
            vl = float(np.mean(s.v_left[a:b]))
            peak = float(np.max(s.speed[a:b]))
            if abs(vf) >= abs(vl):
                if vf > 0:
                    votes = (
                        int(peak > th.run_speed * np.sqrt(s.scale))
                        + int(np.percentile(s.foot_h[a:b].max(axis=1), 95) > th.run_lift * s.scale)
                        + int(np.median(s.wrist_up[a:b].max(axis=1)) > th.run_arms * s.scale)
                    )
                    event = "run" if votes >= 2 else "walk_forward"
                else:
                    event = "walk_backward"
            else:
                event = "sidestep_left" if vl > 0 else "sidestep_right"
            out.append(DetectedEvent(event, a, b, {"travel_m": round(travel, 3), "peak_speed": round(peak, 3), "steps": steps}))
    return out


def _squats(s: Signals, th: Thresholds, exclude: list[tuple[int, int]]) -> list[DetectedEvent]:
    drop = s.drop.copy()
    for a, b in exclude:
        drop[a:b] = np.minimum(drop[a:b], 0.0)
    out = []
    for run in _hysteresis(drop, th.drop_on, th.drop_off):
        for a, b in _split_peaks(drop, run, 0.5):
            peak = float(np.max(drop[a:b]))
            if peak < th.drop_on or b - a < _frames(th.min_frames, s.fps):
                continue
            i = a + int(np.argmax(drop[a:b]))
            near = _frames(10, s.fps)
            if any(j0 - near <= i < j1 + near for j0, j1 in exclude):
                continue  # the crouch before a jump or the landing after it
            # Sitting goes lower, further back, and stays down; a squat turns at the bottom.
            back = float(np.max(s.hips_back[a:b])) / s.leg
            hold = float(np.sum(drop[a:b] >= 0.9 * peak)) / s.fps
            score = peak + 0.5 * back + 0.25 * hold
            event = "sit_down" if score >= th.sit_score else "squat"
            out.append(
                DetectedEvent(event, a, b, {"drop_legs": round(peak, 3), "hips_back_legs": round(back, 3), "hold_s": round(hold, 2)})
            )
    return out


def _bows(s: Signals, th: Thresholds, exclude: list[tuple[int, int]]) -> list[DetectedEvent]:
    pitch = np.degrees(s.trunk_pitch)
    out = []
    for run in _hysteresis(pitch, th.bow_on, th.bow_off):
        for a, b in _split_peaks(pitch, run, 0.5):
            if np.max(pitch[a:b]) < th.bow_on or b - a < _frames(th.min_frames, s.fps):
                continue
            if _covered((a, b), exclude, 0.3):
                continue
            i = a + int(np.argmax(pitch[a:b]))
            if s.drop[i] > th.bow_max_drop:
                continue  # leaning forward to sit or squat, not bowing
            out.append(DetectedEvent("bow", a, b, {"pitch_deg": round(float(pitch[i]), 1)}))
    return out


def _kicks(s: Signals, th: Thresholds, exclude: list[tuple[int, int]]) -> list[DetectedEvent]:
    out = []
    up = s.ankle_h / s.leg
    for f in (0, 1):
        planted = _gauss(s.foot_h[:, 1 - f], 2.0 * s.fps / 20.0) < 0.1 * s.leg
        runs = _hysteresis(np.where(planted, up[:, f], 0.0), th.kick_on, th.kick_off)
        # One kick is one lift of the leg: noise can break it into pieces, so rejoin them.
        for a, b in _merge(runs, _frames(6, s.fps)):
            if _covered((a, b), exclude, 0.5):
                continue
            i = a + int(np.argmax(up[a:b, f]))
            if s.foot_ahead[i, f] < th.kick_ahead * s.leg:
                continue
            out.append(DetectedEvent("kick", a, b, {"leg": "left" if f == 0 else "right", "height_legs": round(float(up[i, f]), 3)}))
    return out


def _arm_events(s: Signals, th: Thresholds) -> list[DetectedEvent]:
    out = []
    both_up = np.min(s.wrist_over_head, axis=1) / s.scale
    raised = _hysteresis(both_up, th.raise_on, th.raise_off)
    raised = [r for r in raised if r[1] - r[0] >= _frames(3, s.fps)]
    for a, b in raised:
        out.append(DetectedEvent("raise_arms", a, b))

    # A wave: one hand up above its shoulder while the other is down. How far it swings side to
    # side is reported, not required: a generator's blurred wave may barely swing.
    for h in (0, 1):
        other_down = s.wrist_up[:, 1 - h] < 0.0
        up = np.where(other_down, s.wrist_up[:, h] / s.scale, -1.0)
        for a, b in _hysteresis(up, th.wave_on, th.wave_off):
            if b - a < _frames(th.min_frames * 2, s.fps) or _covered((a, b), raised, 0.3):
                continue
            swing = float(np.ptp(s.wrist_lateral[a:b, h]))
            out.append(DetectedEvent("wave", a, b, {"hand": "left" if h == 0 else "right", "swing_m": round(swing, 3)}))

    # Claps: the wrists meet in front of the body and part again, once per clap. Each clap is a
    # minimum of the wrist gap that is deep (hands touch) and prominent (hands opened around it).
    gap = s.hand_gap / s.scale
    in_front = (np.max(s.wrist_over_head, axis=1) < 0.0) & (s.hands_ahead > 0.0)
    neg = np.where(in_front, -gap, -1.0)
    touches, _ = find_peaks(neg, height=-th.clap_gap, prominence=th.clap_open)
    kept = [int(i) for i in touches]
    if kept:
        half = _frames(5, s.fps)
        for k, i in enumerate(kept):
            a = (kept[k - 1] + i) // 2 if k > 0 and i - kept[k - 1] < 4 * half else max(0, i - half)
            b = (i + kept[k + 1]) // 2 if k + 1 < len(kept) and kept[k + 1] - i < 4 * half else min(s.n, i + half + 1)
            out.append(DetectedEvent("clap", a, b, {"gap_m": round(float(gap[i] * s.scale), 3)}))
    return out


def detect_events(joints: np.ndarray, fps: float = 20.0, thresholds: Thresholds = DEFAULT) -> list[DetectedEvent]:
    """Events performed in a motion, one entry per performance, ordered by start frame.

    joints: (T, 22, 3) HumanML3D-format positions (Y up, metres); any placement and facing.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    s = compute_signals(joints, fps)
    th = thresholds
    jumps = _jumps(s, th)
    jump_spans = [(d.start, d.end) for d in jumps]
    rotations = _rotations(s, th)
    rot_spans = [(d.start, d.end) for d in rotations]
    loco = _locomotion(s, th, jump_spans + rot_spans)
    squats = _squats(s, th, jump_spans)
    # Going down moves the hips back (and noisy feet may seem to step): a short "walk" inside a
    # squat or sit is that. A long stride can dip the pelvis like a shallow squat: a dip inside
    # real travel is that.
    squat_spans = [(d.start, d.end) for d in squats]
    loco = [d for d in loco if not (_covered((d.start, d.end), squat_spans, 0.5) and d.detail["travel_m"] < th.sit_travel * s.scale)]
    loco_spans = [(d.start, d.end) for d in loco]
    run_spans = [(d.start, d.end) for d in loco if d.event == "run"]
    squats = [d for d in squats if not _covered((d.start, d.end), loco_spans, 0.5)]
    squat_spans = [(d.start, d.end) for d in squats]
    bows = _bows(s, th, jump_spans + squat_spans)
    kicks = _kicks(s, th, jump_spans + run_spans + rot_spans)
    arms = _arm_events(s, th)
    # Arm events during jumps or runs are arm swings, not gestures.
    arms = [d for d in arms if not _covered((d.start, d.end), jump_spans + run_spans, 0.5)]
    found = jumps + rotations + squats + loco + bows + kicks + arms
    return sorted(found, key=lambda d: (d.start, d.end, d.event))


def summarize(detections: list[DetectedEvent]) -> list[EventLabel]:
    """Events in order with counts: consecutive performances of one event become one label.

    A non-countable event (walking, running, side-stepping) split by a pause stays count 1.
    """
    out: list[EventLabel] = []
    for d in sorted(detections, key=lambda d: (d.start, d.end)):
        if out and out[-1].event == d.event:
            if EVENTS[d.event].countable:
                out[-1] = EventLabel(d.event, out[-1].count + 1)
            continue
        out.append(EventLabel(d.event, 1))
    return out
