import re

import pytest

from atom.motion.events import COUNTABLE_EVENTS, EVENTS, EVENT_TYPES, LabelGroup
from services.judge.compose import (
    ComposeError,
    compose_prompts,
    events_from_captions,
    gerund,
    label_groups,
)
from services.judge.llm_compose import mention_position
from services.judge.records import PromptRecord, prompt_id_for, read_prompts_jsonl, write_prompts_jsonl

TASKS = ["integrity", "temporal", "frequency"]


def test_seed_fixes_the_set_and_tasks_are_independent():
    a = compose_prompts(TASKS, 30, seed=7)
    b = compose_prompts(TASKS, 30, seed=7)
    c = compose_prompts(TASKS, 30, seed=8)
    assert a == b and a != c
    only_freq = compose_prompts(["frequency"], 30, seed=7)
    assert only_freq == [p for p in a if p.task == "frequency"]


def test_shapes_of_each_task():
    prompts = compose_prompts(TASKS, 200, seed=1)
    assert len(prompts) == 600
    assert len({p.text for p in prompts}) == 600  # duplicates removed
    for p in prompts:
        assert p.task == p.labels.task
        assert p.prompt_id == prompt_id_for(p.task, p.text) and len(p.prompt_id) == 16
        assert p.text[0].isupper() and p.text.endswith(".")
        names = p.labels.names()
        assert all(n in EVENTS for n in names)
        if p.task == "integrity":
            assert 2 <= len(names) <= 5 and len(set(names)) == len(names)
            assert all(e.count == 1 for e in p.labels.events)
        elif p.task == "temporal":
            assert len(names) == 3 and len(set(names)) == 3
        else:
            (e,) = p.labels.events
            assert e.event in COUNTABLE_EVENTS and 1 <= e.count <= 3
        for n in names:  # every event is said in the text
            assert mention_position(p.text, EVENTS[n]) is not None, (p.text, n)


def test_frequency_count_phrases_match_labels():
    words = {1: ("one time", "once"), 2: ("two times", "twice"), 3: ("three times",), 4: ("four times",)}
    for p in compose_prompts(["frequency"], 100, seed=3, max_count=4):
        assert any(p.text.endswith(w + ".") for w in words[p.labels.events[0].count]), p.text


def test_temporal_labels_keep_true_order_under_before_and_after():
    prompts = compose_prompts(["temporal"], 300, seed=2)
    fronted_before = [p for p in prompts if p.text.startswith("Before ")]
    fronted_after = [p for p in prompts if p.text.startswith("After ")]
    mid_after = [p for p in prompts if re.search(r" after \w+ing", p.text) and not p.text.startswith(("After", "Before"))]
    assert fronted_before and fronted_after and mid_after
    for p in fronted_before:  # "Before c-ing, S a ... b": c is said first but happens last
        pos = [mention_position(p.text, EVENTS[n]) for n in p.labels.names()]
        assert pos[2] < pos[0] < pos[1], p.text
    for p in fronted_after:  # "After a-ing, S b then c": said in the true order
        pos = [mention_position(p.text, EVENTS[n]) for n in p.labels.names()]
        assert pos == sorted(pos), p.text
    for p in mid_after:  # "S b after a-ing, then c"
        pos = [mention_position(p.text, EVENTS[n]) for n in p.labels.names()]
        assert pos[1] < pos[0] < pos[2], p.text
    for p in prompts:  # without a reordering word the surface order is the true order
        if not re.search(r"\bbefore\b|\bafter(?! that)\b", p.text, re.I):
            pos = [mention_position(p.text, EVENTS[n]) for n in p.labels.names()]
            assert pos == sorted(pos), p.text
        elif re.search(r"\bbefore\b", p.text) and not p.text.startswith("Before"):
            pos = [mention_position(p.text, EVENTS[n]) for n in p.labels.names()]
            assert pos == sorted(pos), p.text  # mid-sentence "a before b-ing" keeps the order


def test_conjunctions_vary():
    prompts = compose_prompts(["temporal"], 200, seed=4)
    used = {
        c
        for c in ("and then", "then", "followed by", "after that", "before", "after", "next", "and finally")
        if sum(f" {c} " in p.text.lower() or p.text.lower().startswith(c) for p in prompts) > 3
    }
    assert len(used) >= 6


def test_vocabulary_restriction_and_errors():
    prompts = compose_prompts(TASKS, 10, seed=0, vocabulary=["squat", "wave", "kick", "walk_forward"])
    assert all(set(p.labels.names()) <= {"squat", "wave", "kick", "walk_forward"} for p in prompts)
    with pytest.raises(ComposeError, match="unknown event"):
        compose_prompts(TASKS, 1, 0, vocabulary=["moonwalk"])
    with pytest.raises(ComposeError, match="at least 3"):
        compose_prompts(["temporal"], 1, 0, vocabulary=["squat", "wave"])
    with pytest.raises(ComposeError, match="countable"):
        compose_prompts(["frequency"], 1, 0, vocabulary=["walk_forward", "run"])
    with pytest.raises(ComposeError, match="distinct"):
        compose_prompts(["frequency"], 500, 0, vocabulary=["squat"])
    with pytest.raises(ValueError, match="unknown task"):
        compose_prompts(["speed"], 1, 0)


def test_label_groups_are_distinct():
    groups = label_groups("frequency", 36, seed=0)  # 12 countable events x 3 counts: all of them
    assert len(set(groups)) == 36
    with pytest.raises(ComposeError):
        label_groups("frequency", 37, seed=0)


def test_gerunds_of_the_vocabulary():
    assert gerund("sits down and stands up") == "sitting down and standing up"
    assert gerund("runs forward") == "running forward"
    assert gerund("waves a hand") == "waving a hand"
    assert gerund("side-steps left") == "side-stepping left"
    for e in EVENT_TYPES:
        for p in (e.phrase,) + e.paraphrases:
            g = gerund(p)
            assert g.split()[0].endswith("ing") and "inging" not in g and "eing" not in g


def test_jsonl_round_trip():
    prompts = compose_prompts(TASKS, 5, seed=0)
    assert read_prompts_jsonl(write_prompts_jsonl(prompts)) == prompts
    bad = b'{"text": "x", "task": "temporal", "labels": {"task": "frequency", "events": []}}\n'
    with pytest.raises(ValueError, match="line 1"):
        read_prompts_jsonl(bad)


def test_events_from_captions():
    caps = [
        "a person walks forward.#a/DET person/NOUN#0.0#0.0",
        "A man squats down",
        "someone walks in a circle",
        "the person is walking slowly",  # progressive: skipped
        "a man walks forward and then turns left",  # two actions: skipped
        "a person jumps up and down twice",
        "a person waves",  # duplicate event of the vocabulary
        "A man waves hello.",
        "a very long caption that describes a person doing many little things for a while",
    ]
    events = events_from_captions(caps)
    names = [e.name for e in events]
    assert names == ["walk_forward", "squat", "caption:walks_in_a_circle", "wave"]
    custom = events[2]
    assert custom.phrase == "walks in a circle" and not custom.countable
    prompts = compose_prompts(["integrity", "temporal"], 3, seed=0, vocabulary=events)
    assert any("walks in a circle" in p.text for p in prompts)
    assert all(isinstance(p, PromptRecord) for p in prompts)
    assert LabelGroup.from_dict(prompts[0].labels.to_dict()) == prompts[0].labels
