"""The event vocabulary shared by the world, the detector, the prompt composer and the judges.

An *event* is one motion primitive ("squat"). A *label group* is what a prompt asks for: events
in order, each with a count (how many times it is performed, 1 unless said otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EventType:
    name: str
    phrase: str  # third-person verb phrase: "walks forward"
    countable: bool  # can a prompt ask for it N times ("jumps forward three times")?
    paraphrases: tuple[str, ...] = ()


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("walk_forward", "walks forward", False, ("walks ahead", "takes a few steps forward")),
    EventType("walk_backward", "walks backward", False, ("walks backwards", "steps back a few paces")),
    EventType("run", "runs forward", False, ("jogs forward", "runs ahead")),
    EventType("turn_left", "turns left", True, ("turns to the left", "turns around to the left")),
    EventType("turn_right", "turns right", True, ("turns to the right", "turns around to the right")),
    EventType("sidestep_left", "steps to the left", False, ("side-steps left", "shuffles to the left")),
    EventType("sidestep_right", "steps to the right", False, ("side-steps right", "shuffles to the right")),
    EventType("jump_in_place", "jumps in place", True, ("jumps up and down", "hops on the spot")),
    EventType("jump_forward", "jumps forward", True, ("leaps forward", "hops forward")),
    EventType("squat", "squats", True, ("squats down", "does a squat")),
    EventType("sit_down", "sits down and stands up", True, ("sits down then gets back up",)),
    EventType("wave", "waves", True, ("waves a hand", "waves hello")),
    EventType("raise_arms", "raises both arms", True, ("lifts both arms up", "raises his arms overhead")),
    EventType("kick", "kicks", True, ("kicks a leg forward", "does a kick")),
    EventType("clap", "claps", True, ("claps his hands", "claps hands together")),
    EventType("bow", "bows", True, ("bows forward", "takes a bow")),
    EventType("spin", "spins around", True, ("does a full spin", "spins in a circle")),
)

EVENTS: dict[str, EventType] = {e.name: e for e in EVENT_TYPES}
EVENT_NAMES: tuple[str, ...] = tuple(EVENTS)
COUNTABLE_EVENTS: tuple[str, ...] = tuple(e.name for e in EVENT_TYPES if e.countable)

TASKS = ("integrity", "temporal", "frequency")
COUNT_WORDS = {1: "one time", 2: "two times", 3: "three times", 4: "four times", 5: "five times"}


@dataclass(frozen=True)
class EventLabel:
    event: str
    count: int = 1


@dataclass(frozen=True)
class LabelGroup:
    """What a prompt asks for. `events` is in the order the prompt states them."""

    task: str
    events: tuple[EventLabel, ...] = field(default_factory=tuple)

    def names(self) -> list[str]:
        return [e.event for e in self.events]

    def to_dict(self) -> dict:
        return {"task": self.task, "events": [{"event": e.event, "count": e.count} for e in self.events]}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelGroup":
        return cls(d["task"], tuple(EventLabel(e["event"], int(e.get("count", 1))) for e in d["events"]))


def check_event(name: str) -> EventType:
    """Look an event up, with an error that lists the valid names."""
    try:
        return EVENTS[name]
    except KeyError:
        raise ValueError(f"unknown event {name!r}; known events: {', '.join(EVENT_NAMES)}") from None


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")
    return task
