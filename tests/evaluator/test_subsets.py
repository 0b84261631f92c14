import numpy as np
import pytest

from atom.motion.humanml3d import Caption, Clip, write_clip, write_split
from services.evaluator.subsets import (
    SubsetError,
    build_subsets,
    caption_tasks,
    event_sequence,
    label_tasks,
)


def labels(*events):
    return {"task": "x", "events": [{"event": e, "count": c} for e, c in events]}


def test_label_tasks():
    assert label_tasks(labels(("walk_forward", 1), ("squat", 1), ("wave", 1))) == {"integrity", "temporal"}
    assert label_tasks(labels(("walk_forward", 1), ("squat", 1))) == {"integrity"}
    assert label_tasks(labels(("walk_forward", 1), ("squat", 1), ("walk_forward", 1))) == {"integrity"}
    assert label_tasks(labels(("jump_in_place", 3))) == {"frequency"}
    assert label_tasks(labels(("jump_in_place", 1))) == set()
    assert label_tasks(labels(("walk_forward", 2))) == set()  # not a countable event
    # per-instance events collapse into counts
    assert event_sequence({"events": ["squat", "squat", "wave"]}) == [("squat", 2), ("wave", 1)]
    assert label_tasks({"group": labels(("squat", 2), ("wave", 1))}) == {"integrity", "frequency"}
    with pytest.raises(SubsetError, match="'events' list"):
        label_tasks({"foo": 1})
    with pytest.raises(SubsetError, match="count"):
        label_tasks(labels(("squat", 0)))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a person walks forward then sits down.", {"temporal", "integrity"}),
        ("a man jumps and waves his arms.", {"integrity"}),
        ("a person jumps twice.", {"frequency"}),
        ("someone kicks three times with the left leg, then walks away.", {"frequency", "temporal", "integrity"}),
        ("a person is walking in a circle.", set()),
    ],
)
def test_caption_tasks(text, expected):
    assert caption_tasks(Caption.from_text(text)) == expected


def test_world_subsets_from_labels(synthetic_corpus):
    subsets = build_subsets(synthetic_corpus, "test", min_len=8)
    assert len(subsets["general"]) == 64
    assert 0 < len(subsets["temporal"]) <= len(subsets["integrity"]) < 64
    assert len(subsets["frequency"]) > 0
    for r in subsets["temporal"]:
        assert len(event_sequence(r.tags["labels"])) == 3
    # tagged text by default, the dataset's own tokens
    assert all("/" in t for t in subsets["general"][0].texts[0].split())
    plain = build_subsets(synthetic_corpus, "test", tagged=False, min_len=8)
    assert "/" not in plain["general"][0].texts[0]


def test_real_style_subsets_from_captions(tmp_path):
    f = np.zeros((60, 263), np.float32)
    caps = {
        "a": ["a person walks forward then squats.", "someone walks and then squats down."],
        "b": ["a person jumps twice.", "a man hops in place."],
        "c": ["a person stands still."],
    }
    for cid, texts in caps.items():
        write_clip(tmp_path, Clip(cid, None, f, tuple(Caption.from_text(t) for t in texts)))
    write_split(tmp_path, "test", list(caps))
    subsets = build_subsets(tmp_path, "test")
    assert [r.clip_id for r in subsets["temporal"]] == ["a"]
    assert [r.clip_id for r in subsets["frequency"]] == ["b"]
    assert len(subsets["frequency"][0].texts) == 1  # only the caption with the count phrase
    assert len(subsets["general"]) == 3
    with pytest.raises(SubsetError, match="no captioned clips"):
        build_subsets(tmp_path, "test", min_len=100)


def test_world_repeat_kind_is_frequency_even_once():
    assert label_tasks({"kind": "repeat", "events": [{"event": "jump_forward", "count": 1}]}) == {"frequency"}
