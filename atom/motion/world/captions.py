"""HumanML3D-style captions for composed clips.

Each clip gets several paraphrases that differ in subject ("a person", "a man", "someone",
"the figure", ...), in verb phrase (the event's phrase or one of its paraphrases), in how events
are joined ("and", "then", "after that", "followed by ...ing", "first ... and finally ...")
and in how counts are said ("twice", "two times", "three times"). Every caption states every
requested event, in order, with its count: captions are ground truth, not decoration.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from atom.motion.events import EVENTS, EventLabel, check_event

SUBJECTS = ("a person", "a man", "someone", "the figure", "a person", "the person", "a woman", "a man")

# More ways to say each event, beside the phrase and paraphrases in atom.motion.events.
EXTRA_PHRASES: dict[str, tuple[str, ...]] = {
    "walk_forward": ("walks straight ahead", "walks forwards"),
    "walk_backward": ("walks backwards slowly", "moves backward"),
    "run": ("runs", "runs straight ahead"),
    "turn_left": ("turns to his left",),
    "turn_right": ("turns to his right",),
    "sidestep_left": ("steps sideways to the left", "moves sideways to the left"),
    "sidestep_right": ("steps sideways to the right", "moves sideways to the right"),
    "jump_in_place": ("jumps", "jumps up"),
    "jump_forward": ("jumps ahead",),
    "squat": ("bends his knees and squats",),
    "sit_down": ("sits down and gets up again", "crouches low as if sitting, then stands up"),
    "wave": ("waves his hand",),
    "raise_arms": ("raises his hands above his head", "puts both arms up"),
    "kick": ("kicks his leg out", "kicks forward"),
    "clap": ("claps",),
    "bow": ("bends forward in a bow", "bows down"),
    "spin": ("spins", "turns all the way around"),
}

COUNT_PHRASES = {
    2: ("twice", "two times"),
    3: ("three times", "three times"),
    4: ("four times",),
    5: ("five times",),
}

# Third person -> gerund, for "followed by walking", "before squatting".
_GERUND = {
    "walks": "walking",
    "runs": "running",
    "jogs": "jogging",
    "turns": "turning",
    "steps": "stepping",
    "side-steps": "side-stepping",
    "shuffles": "shuffling",
    "jumps": "jumping",
    "hops": "hopping",
    "leaps": "leaping",
    "squats": "squatting",
    "does": "doing",
    "sits": "sitting",
    "gets": "getting",
    "stands": "standing",
    "waves": "waving",
    "raises": "raising",
    "lifts": "lifting",
    "kicks": "kicking",
    "claps": "clapping",
    "bows": "bowing",
    "takes": "taking",
    "spins": "spinning",
    "moves": "moving",
    "bends": "bending",
    "puts": "putting",
    "crouches": "crouching",
}


def gerund(phrase: str) -> str:
    """'sits down then gets back up' -> 'sitting down then getting back up'."""
    words = phrase.split()
    out = []
    for w in words:
        if w in _GERUND:
            out.append(_GERUND[w])
        else:
            out.append(w)
    if out == words:  # no known verb: make one of the first word
        w = words[0]
        stem = w[:-1] if w.endswith("s") else w
        stem = stem[:-1] if stem.endswith("e") and not stem.endswith("ee") else stem
        out[0] = stem + "ing"
    return " ".join(out)


def _phrases(event: str) -> tuple[str, ...]:
    et = check_event(event)
    return (et.phrase,) + tuple(et.paraphrases) + EXTRA_PHRASES.get(event, ())


def _event_phrase(label: EventLabel, rng: np.random.Generator, detail: str | None) -> str:
    options = _phrases(label.event)
    # The event's own phrase is the most common way, as in real captions.
    phrase = options[0] if rng.random() < 0.4 else options[int(rng.integers(len(options)))]
    if detail:  # "left hand" / "right leg"
        side, part = detail.split()
        if f"his {part}" in phrase or f"a {part}" in phrase:
            phrase = phrase.replace(f"his {part}", f"his {detail}").replace(f"a {part}", f"his {detail}")
        else:
            phrase = f"{phrase} with his {detail}"
    if label.count > 1:
        choices = COUNT_PHRASES[label.count]
        phrase = f"{phrase} {choices[int(rng.integers(len(choices)))]}"
    elif EVENTS[label.event].countable and rng.random() < 0.08:
        phrase = f"{phrase} once"
    return phrase


def _join(phrases: list[str], rng: np.random.Generator) -> str:
    if len(phrases) == 1:
        return phrases[0]
    if len(phrases) == 2:
        a, b = phrases
        style = int(rng.integers(7))
        return [
            f"{a} and {b}",
            f"{a} and then {b}",
            f"{a}, then {b}",
            f"{a}, after that {b}",
            f"{a}, followed by {gerund(b)}",
            f"first {a}, then {b}",
            f"{a} before {gerund(b)}",
        ][style]
    style = int(rng.integers(5))
    head, last = phrases[:-1], phrases[-1]
    if style == 0:
        return ", ".join(head) + f" and {last}"
    if style == 1:
        return ", then ".join(head) + f", and then {last}"
    if style == 2:
        return f"first {head[0]}, " + ", ".join(f"then {p}" for p in head[1:]) + f", and finally {last}"
    if style == 3:
        return ", ".join(head) + f", followed by {gerund(last)}"
    # Mixed: each join picks its own word, as people write.
    words = (", then ", " and then ", ", after that ", " and ")
    out = phrases[0]
    for p in phrases[1:]:
        out += words[int(rng.integers(len(words)))] + p
    return out


def _pronoun_fix(text: str, subject: str) -> str:
    if subject == "a woman":
        return text.replace(" his ", " her ")
    return text


def caption(events: Sequence[EventLabel], rng: np.random.Generator, details: Sequence[str | None] | None = None) -> str:
    """One caption stating every event in order with its count."""
    if not events:
        raise ValueError("caption needs at least one event")
    details = list(details) if details is not None else [None] * len(events)
    if len(details) != len(events):
        raise ValueError(f"got {len(details)} details for {len(events)} events")
    subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
    phrases = [_event_phrase(e, rng, d if rng.random() < 0.5 else None) for e, d in zip(events, details)]
    text = f"{subject} {_join(phrases, rng)}"
    text = _pronoun_fix(text, subject)
    if rng.random() < 0.85:
        text += "."
    return text


def captions(events: Sequence[EventLabel], rng: np.random.Generator, n: int = 3, details: Sequence[str | None] | None = None) -> list[str]:
    """n different captions for the same events (fewer only if the phrasing runs out)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out: list[str] = []
    for _ in range(20 * n):
        c = caption(events, rng, details)
        if c not in out:
            out.append(c)
        if len(out) == n:
            break
    return out


def details_from_occurrences(events: Sequence[EventLabel], occurrences) -> list[str | None]:
    """Optional modifiers that are true of the clip ("right hand", "left leg"), one per event."""
    out: list[str | None] = []
    for i, e in enumerate(events):
        params = [o.params for o in occurrences if o.label_index == i]
        detail = None
        if e.event == "wave":
            hands = {p.get("hand") for p in params}
            if len(hands) == 1 and None not in hands:
                detail = f"{hands.pop()} hand"
        elif e.event == "kick":
            legs = {p.get("leg") for p in params}
            if len(legs) == 1 and None not in legs:
                detail = f"{legs.pop()} leg"
        out.append(detail)
    return out
