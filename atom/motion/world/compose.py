"""Compose events into one clip: durations, pauses, placement, and the labelled joints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from atom.motion.events import EventLabel, check_event
from atom.motion.skeleton import FPS, MAX_FRAMES
from atom.motion.world.body import Body, random_body
from atom.motion.world.primitives import PRIMITIVES, idle
from atom.motion.world.track import Track, concat, pose_track, random_style, smooth

MIN_FRAMES = 40  # HumanML3D evaluation keeps motions of at least 40 frames
MAX_COUNT = 5
CLAP_OVERHEAD = (12, 18)  # frames to bring the hands up and down around a run of claps


class CompositionError(ValueError):
    """The requested events cannot be composed into one clip (unknown, bad count, too long)."""


@dataclass(frozen=True)
class Occurrence:
    """One performance of an event: frames [start, end) of the clip."""

    event: str
    start: int
    end: int
    label_index: int  # which requested EventLabel it belongs to
    params: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {"event": self.event, "start": self.start, "end": self.end, "label_index": self.label_index, "params": self.params}


@dataclass
class WorldClip:
    """A composed clip. joints: (T, 22, 3) float32, HumanML3D axes; contacts: (T, 2) planted feet."""

    joints: np.ndarray
    events: tuple[EventLabel, ...]
    occurrences: tuple[Occurrence, ...]
    contacts: np.ndarray
    body: Body
    fps: int = FPS

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    def labels_dict(self) -> dict:
        """The structured labels, JSON-ready (events in order with counts, frame spans)."""
        return {
            "fps": self.fps,
            "num_frames": self.num_frames,
            "events": [{"event": e.event, "count": e.count} for e in self.events],
            "occurrences": [o.to_dict() for o in self.occurrences],
            "body": {"height_scale": round(self.body.height_scale, 4), "stand_height": round(self.body.stand_height, 4)},
        }


def _check(events: Iterable) -> tuple[EventLabel, ...]:
    out = []
    for e in events:
        if isinstance(e, str):
            e = EventLabel(e)
        if not isinstance(e, EventLabel):
            raise CompositionError(f"expected EventLabel or event name, got {e!r}")
        try:
            et = check_event(e.event)
        except ValueError as exc:
            raise CompositionError(str(exc)) from None
        if not (1 <= e.count <= MAX_COUNT):
            raise CompositionError(f"count {e.count} for {e.event!r} is outside 1..{MAX_COUNT}")
        if e.count > 1 and not et.countable:
            raise CompositionError(f"{e.event!r} is not countable; ask for it once (count=1), not {e.count} times")
        out.append(e)
    if not out:
        raise CompositionError("compose needs at least one event")
    return tuple(out)


@dataclass
class _Plan:
    pre: int
    post: int
    between: list[int]  # idle frames before label i (i >= 1)
    rep_gap: list[int]  # idle frames between repetitions of label i
    frames: list[list[int]]  # per label: frames per performance (one entry for a grouped run)
    minimum: list[list[int]]


def _plan(labels: tuple[EventLabel, ...], rng: np.random.Generator, tempo: float, max_frames: int) -> _Plan:
    frames, minimum, rep_gap = [], [], []
    for lab in labels:
        prim = PRIMITIVES[lab.event]
        if prim.grouped:
            per = [prim.frames(rng, tempo) for _ in range(lab.count)]
            over = int(rng.integers(CLAP_OVERHEAD[0], CLAP_OVERHEAD[1] + 1))
            frames.append([over + sum(per)])
            minimum.append([10 + prim.minimum * lab.count])
        else:
            frames.append([prim.frames(rng, tempo) for _ in range(lab.count)])
            minimum.append([prim.minimum] * lab.count)
        rep_gap.append(int(rng.integers(2, 6)))
    plan = _Plan(
        pre=int(rng.integers(2, 11)),
        post=int(rng.integers(2, 11)),
        between=[0] + [int(rng.integers(0, 7)) for _ in labels[1:]],
        rep_gap=rep_gap,
        frames=frames,
        minimum=minimum,
    )

    def idle_total(p: _Plan) -> int:
        return p.pre + p.post + sum(p.between) + sum(g * (len(f) - 1) for g, f in zip(p.rep_gap, p.frames))

    nat = sum(sum(f) for f in frames)
    if nat + idle_total(plan) > max_frames:
        # Too long: shrink pauses to their floor first, then speed every event up evenly.
        plan.pre, plan.post = 1, 1
        plan.between = [0] * len(labels)
        plan.rep_gap = [2] * len(labels)
        budget = max_frames - idle_total(plan)
        mins = sum(sum(m) for m in minimum)
        if mins > budget:
            names = ", ".join(f"{e.event} x{e.count}" for e in labels)
            raise CompositionError(
                f"{names} needs at least {mins + idle_total(plan)} frames, more than the {max_frames} allowed; "
                "ask for fewer events or smaller counts"
            )
        alpha = (budget - mins) / max(nat - mins, 1)
        plan.frames = [[int(np.floor(m + alpha * (f - m))) for f, m in zip(fs, ms)] for fs, ms in zip(frames, minimum)]
    total = sum(sum(f) for f in plan.frames) + idle_total(plan)
    if total < MIN_FRAMES:
        plan.post += MIN_FRAMES - total
    return plan


def _liveliness(track: Track, rng: np.random.Generator) -> None:
    """Slow, small wandering of the trunk, head and hands, so no two clips are rigidly alike."""
    n = track.n

    def wander(shape, amp, width):
        x = smooth(rng.standard_normal((n + 2 * width,) + shape), width)[width:-width]
        return amp * x / max(float(np.std(x)), 1e-9)

    track.spine[:, :2] += wander((2,), np.radians(1.0), 15)
    track.head[:, :2] += wander((2,), np.radians(2.0), 15)
    track.wrist += wander((2, 3), 0.01, 11)


def compose(events, rng: np.random.Generator, body: Body | None = None, max_frames: int = MAX_FRAMES) -> WorldClip:
    """Compose the events, in order, into one clip of at most `max_frames` frames.

    events: EventLabels (or names); a count above 1 becomes separate, consecutive performances.
    The same generator state gives the same clip.
    """
    labels = _check(events)
    if max_frames < MIN_FRAMES:
        raise CompositionError(f"max_frames must be at least {MIN_FRAMES}, got {max_frames}")
    body = random_body(rng) if body is None else body
    style = random_style(body, rng)
    plan = _plan(labels, rng, style.tempo, max_frames)

    pieces: list[Track] = []
    occurrences: list[Occurrence] = []
    cursor = 0
    x = z = yaw = 0.0

    def add(track: Track) -> int:
        nonlocal cursor, x, z, yaw
        placed = track.moved(x, z, yaw)
        pieces.append(placed)
        start = cursor
        cursor += track.n
        x, z, yaw = placed.end_state()
        return start

    add(idle(style, rng, plan.pre))
    for i, lab in enumerate(labels):
        if plan.between[i] > 0:
            add(idle(style, rng, plan.between[i]))
        prim = PRIMITIVES[lab.event]
        if prim.grouped:
            tr = prim.build(style, rng, plan.frames[i][0], count=lab.count)
            start = add(tr)
            for a, b in tr.spans:
                occurrences.append(Occurrence(lab.event, start + a, start + b, i, dict(tr.params)))
        else:
            for k, n in enumerate(plan.frames[i]):
                if k > 0:
                    add(idle(style, rng, plan.rep_gap[i]))
                tr = prim.build(style, rng, n)
                start = add(tr)
                occurrences.append(Occurrence(lab.event, start, start + n, i, dict(tr.params)))
    add(idle(style, rng, plan.post))

    track = concat(pieces)
    _liveliness(track, rng)
    joints, _, _ = pose_track(track, body)
    if joints.shape[0] > max_frames:  # a bug, not a user error: the plan must fit
        raise AssertionError(f"composed {joints.shape[0]} frames, over {max_frames}")
    return WorldClip(
        joints=joints.astype(np.float32),
        events=labels,
        occurrences=tuple(occurrences),
        contacts=track.contact.copy(),
        body=body,
    )


__all__ = ["compose", "WorldClip", "Occurrence", "CompositionError", "MIN_FRAMES", "MAX_COUNT"]
