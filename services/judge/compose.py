"""AToM stage 1, offline: event-level prompts with their label groups, from the event vocabulary.

Per sub-task (the AToM paper, Han et al., CVPR 2025):
- integrity: 2-5 distinct events in one sentence ("A man walks forward, walks backward, and squats.");
- temporal: exactly 3 distinct events joined by ordered conjunctions picked at random. Some joins
  put the events out of surface order ("Before waving, a man walks forward and then squats." is
  walk -> squat -> wave); the label group always holds the true temporal order;
- frequency: one countable event with a count phrase ("A person jumps forward three times.").

`compose_prompts(tasks, per_task, seed)` is deterministic in its arguments. Labels can also come
from caption strings (`events_from_captions`), the paper's source of meta labels.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from atom.motion.events import EVENT_TYPES, EVENTS, EventLabel, EventType, LabelGroup, check_task

from services.judge.records import PromptRecord


class ComposeError(ValueError):
    """The composer cannot produce what was asked (e.g. more distinct prompts than exist)."""


# Subjects with the possessive that replaces "his" in paraphrases ("raises his arms overhead").
SUBJECTS: tuple[tuple[str, str], ...] = (
    ("a man", "his"),
    ("a person", "their"),
    ("a woman", "her"),
    ("someone", "their"),
    ("the person", "their"),
    ("a figure", "its"),
    ("the man", "his"),
    ("a human", "their"),
)

# count -> the phrases that say it
COUNT_PHRASES: dict[int, tuple[str, ...]] = {
    1: ("one time", "once"),
    2: ("two times", "twice"),
    3: ("three times",),
    4: ("four times",),
    5: ("five times",),
}

# Gerunds of the verbs in the vocabulary; the rule below covers the rest (drop a final e, add ing).
_GERUND = {
    "runs": "running",
    "squats": "squatting",
    "sits": "sitting",
    "spins": "spinning",
    "claps": "clapping",
    "jogs": "jogging",
    "steps": "stepping",
    "hops": "hopping",
    "gets": "getting",
    "side-steps": "side-stepping",
    "does": "doing",
    "shuffles": "shuffling",
    "takes": "taking",
    "waves": "waving",
    "raises": "raising",
    "lifts": "lifting",
    "leaps": "leaping",
    "stands": "standing",
    "is": "being",
    "goes": "going",
}
_JOINERS = {"and", "then"}  # a verb follows these inside one phrase ("sits down and stands up")


def _gerund_word(verb: str) -> str:
    if verb in _GERUND:
        return _GERUND[verb]
    stem = verb[:-1] if verb.endswith("s") else verb
    if stem.endswith("e") and not stem.endswith("ee"):
        stem = stem[:-1]
    return stem + "ing"


def gerund(phrase: str) -> str:
    """'sits down and stands up' -> 'sitting down and standing up' (third-person verbs only)."""
    words = phrase.split()
    out = []
    for i, w in enumerate(words):
        verb_slot = i == 0 or words[i - 1] in _JOINERS
        out.append(_gerund_word(w) if verb_slot and w.endswith("s") else w)
    return " ".join(out)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _sentence(s: str) -> str:
    s = re.sub(r"\s+", " ", s).strip()
    return _cap(s) + ("" if s.endswith(".") else ".")


@dataclass(frozen=True)
class _Vocab:
    events: dict[str, EventType]

    @property
    def names(self) -> list[str]:
        return list(self.events)

    @property
    def countable(self) -> list[str]:
        return [n for n, e in self.events.items() if e.countable]


def _vocab(vocabulary) -> _Vocab:
    if vocabulary is None:
        return _Vocab({e.name: e for e in EVENT_TYPES})
    events: dict[str, EventType] = {}
    for v in vocabulary:
        if isinstance(v, EventType):
            events[v.name] = v
        elif isinstance(v, str):
            if v not in EVENTS:
                raise ComposeError(f"unknown event {v!r} in vocabulary; known: {', '.join(EVENTS)}")
            events[v] = EVENTS[v]
        else:
            raise ComposeError(f"vocabulary entries must be event names or EventType, got {type(v).__name__}")
    if not events:
        raise ComposeError("the vocabulary is empty")
    return _Vocab(events)


def _phrase(rng: random.Random, et: EventType, possessive: str) -> str:
    p = rng.choice((et.phrase,) + tuple(et.paraphrases))
    return re.sub(r"\bhis\b", possessive, p)


# -- integrity ---------------------------------------------------------------------------------


def _join_list(rng: random.Random, parts: list[str]) -> str:
    if len(parts) == 2:
        return rng.choice((f"{parts[0]} and {parts[1]}", f"{parts[0]}, and {parts[1]}", f"{parts[0]} and also {parts[1]}"))
    head = ", ".join(parts[:-1])
    return rng.choice((f"{head}, and {parts[-1]}", f"{head} and {parts[-1]}"))


def _integrity(rng: random.Random, vocab: _Vocab, min_events: int, max_events: int) -> PromptRecord:
    n = rng.randint(min_events, min(max_events, len(vocab.names)))
    names = rng.sample(vocab.names, n)
    subject, poss = rng.choice(SUBJECTS)
    parts = [_phrase(rng, vocab.events[e], poss) for e in names]
    text = _sentence(f"{subject} {_join_list(rng, parts)}")
    return PromptRecord.make(text, LabelGroup("integrity", tuple(EventLabel(e) for e in names)))


# -- temporal ----------------------------------------------------------------------------------

# Forward connectors put the next event after the previous one in the surface text too.
FORWARD_CONNECTORS = (
    ", and then ",
    " and then ",
    ", then ",
    " then ",
    ", after that ",
    ", and after that ",
    " and ",
    ", and ",
    ", next ",
    ", afterwards ",
    ", and finally ",
)
_LAST_ONLY = {", and finally "}


def _forward_clause(rng: random.Random, first: str, second: str, last: bool) -> str:
    choices = [c for c in FORWARD_CONNECTORS if last or c not in _LAST_ONLY]
    # "followed by" and "before" need a gerund on the right-hand side
    style = rng.randrange(len(choices) + 2)
    if style == len(choices):
        return f"{first}, followed by {gerund(second)}"
    if style == len(choices) + 1:
        return f"{first} before {gerund(second)}"
    return f"{first}{choices[style]}{second}"


def _temporal(rng: random.Random, vocab: _Vocab) -> PromptRecord:
    if len(vocab.names) < 3:
        raise ComposeError("temporal prompts need at least 3 events in the vocabulary")
    names = rng.sample(vocab.names, 3)  # the true temporal order
    subject, poss = rng.choice(SUBJECTS)
    a, b, c = (_phrase(rng, vocab.events[e], poss) for e in names)
    template = rng.randrange(4)
    if template == 0:  # a <conj> b <conj> c
        body = f"{subject} {_forward_clause(rng, _forward_clause(rng, a, b, False), c, True)}"
    elif template == 1:  # "b after a-ing, then c": 'after' swaps the first pair on the surface
        body = f"{subject} {b} after {gerund(a)}{rng.choice((', and then ', ', then ', ' and then '))}{c}"
    elif template == 2:  # "Before c-ing, S a and then b": c is said first but happens last
        body = f"before {gerund(c)}, {subject} {_forward_clause(rng, a, b, False)}"
    else:  # "After a-ing, S b and then c"
        body = f"after {gerund(a)}, {subject} {_forward_clause(rng, b, c, True)}"
    return PromptRecord.make(_sentence(body), LabelGroup("temporal", tuple(EventLabel(e) for e in names)))


# -- frequency ---------------------------------------------------------------------------------


def _frequency(rng: random.Random, vocab: _Vocab, max_count: int) -> PromptRecord:
    if not vocab.countable:
        raise ComposeError("frequency prompts need at least one countable event in the vocabulary")
    name = rng.choice(vocab.countable)
    count = rng.randint(1, max_count)
    subject, poss = rng.choice(SUBJECTS)
    phrase = _phrase(rng, vocab.events[name], poss)
    text = _sentence(f"{subject} {phrase} {rng.choice(COUNT_PHRASES[count])}")
    return PromptRecord.make(text, LabelGroup("frequency", (EventLabel(name, count),)))


def _draw(task: str, rng: random.Random, vocab: _Vocab, min_events: int, max_events: int, max_count: int) -> PromptRecord:
    if task == "integrity":
        if len(vocab.names) < min_events:
            raise ComposeError(f"integrity prompts need at least {min_events} events in the vocabulary")
        return _integrity(rng, vocab, min_events, max_events)
    if task == "temporal":
        return _temporal(rng, vocab)
    return _frequency(rng, vocab, max_count)


def _check_args(per_task: int, min_events: int, max_events: int, max_count: int) -> None:
    if per_task < 0:
        raise ComposeError(f"per_task must be >= 0, got {per_task}")
    if not 2 <= min_events <= max_events:
        raise ComposeError(f"need 2 <= min_events <= max_events, got {min_events}, {max_events}")
    if not 1 <= max_count <= max(COUNT_PHRASES):
        raise ComposeError(f"max_count must be in 1..{max(COUNT_PHRASES)}, got {max_count}")


def _distinct(
    task: str, n: int, seed: int, vocab: _Vocab, min_events: int, max_events: int, max_count: int, max_tries_per_item: int, key
) -> list[PromptRecord]:
    check_task(task)
    # One stream per task: adding a task does not change another task's prompts.
    rng = random.Random(f"{seed}:{task}")
    seen: set = set()
    out: list[PromptRecord] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries_per_item * max(n, 1):
            raise ComposeError(f"found only {len(out)} distinct {task} items of the {n} asked; ask for fewer or widen the vocabulary")
        rec = _draw(task, rng, vocab, min_events, max_events, max_count)
        k = key(rec)
        if k not in seen:
            seen.add(k)
            out.append(rec)
    return out


def compose_prompts(
    tasks: Sequence[str],
    per_task: int,
    seed: int,
    vocabulary=None,
    *,
    min_events: int = 2,
    max_events: int = 5,
    max_count: int = 3,
    max_tries_per_prompt: int = 50,
) -> list[PromptRecord]:
    """`per_task` distinct prompts (by text) for each task, in task order; the same arguments give
    the same list. `vocabulary`: event names or EventType objects (default: the whole vocabulary).
    `max_count`: the largest count a frequency prompt asks for (1..5)."""
    _check_args(per_task, min_events, max_events, max_count)
    vocab = _vocab(vocabulary)
    out: list[PromptRecord] = []
    for task in tasks:
        out += _distinct(task, per_task, seed, vocab, min_events, max_events, max_count, max_tries_per_prompt, key=lambda r: r.text)
    return out


def label_groups(
    task: str,
    n: int,
    seed: int,
    vocabulary=None,
    *,
    min_events: int = 2,
    max_events: int = 5,
    max_count: int = 3,
    max_tries_per_group: int = 200,
) -> list[LabelGroup]:
    """n distinct label groups for `task` (what an LLM backend turns into sentences)."""
    _check_args(n, min_events, max_events, max_count)
    recs = _distinct(task, n, seed, _vocab(vocabulary), min_events, max_events, max_count, max_tries_per_group, key=lambda r: r.labels)
    return [r.labels for r in recs]


def vocabulary_dict(vocabulary=None) -> dict[str, EventType]:
    """Event name -> EventType for a vocabulary given as names and/or EventTypes (None: all)."""
    return dict(_vocab(vocabulary).events)


# -- meta labels from captions -------------------------------------------------------------------

_CAPTION_SUBJECT = re.compile(
    r"^(a|the|one)?\s*(man|woman|person|human|figure|guy|individual|character|someone|somebody|"
    r"he|she|they)\s+",
    re.I,
)
_MULTI_ACTION = re.compile(r",|;|\b(and|then|while|before|after|again|twice|times)\b", re.I)
_NORM = re.compile(r"[^a-z\- ]+")


def _norm_phrase(s: str) -> str:
    return re.sub(r"\s+", " ", _NORM.sub(" ", s.lower())).strip()


def _vocab_lookup() -> dict[str, str]:
    table = {}
    for e in EVENT_TYPES:
        for p in (e.phrase,) + tuple(e.paraphrases):
            table[_norm_phrase(p)] = e.name
            table[_norm_phrase(re.sub(r"\bhis\b", "their", p))] = e.name
    return table


def caption_event_name(phrase: str) -> str:
    return "caption:" + re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def events_from_captions(captions: Iterable[str], max_words: int = 6) -> list[EventType]:
    """Meta labels from caption strings (HumanML3D style: "a person walks forward.").

    Keeps short single-action captions whose verb is third-person present ("walks", not "is
    walking"), strips the subject and returns them as events, deduplicated, in first-seen order.
    A caption that says exactly a vocabulary phrase becomes that vocabulary event (scorable by
    the kinematic judge); others are named 'caption:<slug>' and only a VLM judge can score them.
    """
    lookup = _vocab_lookup()
    out: dict[str, EventType] = {}
    for cap in captions:
        text = cap.split("#", 1)[0].strip().rstrip(".!").strip()  # HumanML3D lines carry '#' fields
        m = _CAPTION_SUBJECT.match(text)
        if not m:
            continue
        phrase = _norm_phrase(text[m.end() :])
        words = phrase.split()
        if not words or len(words) > max_words or _MULTI_ACTION.search(phrase):
            continue
        if not words[0].endswith("s") or words[0] in ("is", "was", "has", "does"):
            continue
        name = lookup.get(phrase)
        if name:
            out.setdefault(name, EVENTS[name])
        else:
            key = caption_event_name(phrase)
            out.setdefault(key, EventType(key, phrase, countable=False))
    return list(out.values())
