"""MotionPrefer records: JSONL in the store, validation by line and field, Table 3 statistics."""

import json

import numpy as np
import pytest

from atom.motion.record import MotionRecord
from services.trainer.motionprefer import (
    MotionPreferFormatError,
    PreferenceRecord,
    load_records,
    parse_records,
    record_tokens,
    records_to_jsonl,
    save_records,
)
from services.trainer.pairs import dataset_stats, format_stats


def rec(i, score, task="integrity", prompt="A man walks forward and squats.", tokens=(3, 4, 5)):
    labels = {"task": task, "events": [{"event": "walk_forward", "count": 1}, {"event": "squat", "count": 1}]}
    return PreferenceRecord(
        f"p-{prompt[:6]}",
        prompt,
        task,
        labels,
        f"motions/m{i}.npz",
        score,
        "kinematic-v1",
        "all events present" if score else "squat missing",
        tokens,
    )


def test_roundtrip_through_the_store(store):
    records = [rec(0, 5), rec(1, 0, tokens=None), rec(2, 4.5, task="temporal")]
    info = save_records(store, "datasets/r/motionprefer.jsonl", records)
    assert info.size > 0
    assert load_records(store, "datasets/r/motionprefer.jsonl") == records


def line(**changes):
    d = rec(0, 5).to_dict()
    for k, v in changes.items():
        if v is ...:
            del d[k]
        else:
            d[k] = v
    return json.dumps(d)


@pytest.mark.parametrize(
    "bad, pattern",
    [
        ("{not json", r"f\.jsonl line 2: not valid JSON"),
        (line(score="five"), r"f\.jsonl line 2: field 'score': expected a finite number"),
        (line(score=float("nan")), r"line 2: field 'score'"),
        (line(score=True), r"line 2: field 'score'"),
        (line(task="dance"), r"line 2: field 'task': expected one of"),
        (line(motion_key=...), r"line 2: missing field\(s\) \['motion_key'\]"),
        (line(prompt=""), r"line 2: field 'prompt': expected a non-empty string"),
        (line(tokens=[1, -2]), r"line 2: field 'tokens': item 1 must be an integer code >= 0"),
        (line(labels={"task": "temporal", "events": [{"event": "squat"}]}), r"line 2: field 'labels': labels.task"),
        (line(labels={"task": "integrity", "events": [{"event": "squat", "count": 0}]}), r"count must be an integer"),
        (line(extra=1), r"line 2: unknown field\(s\) \['extra'\]"),
        ("[1, 2]", r"line 2: expected a JSON object"),
    ],
)
def test_corrupt_lines_name_line_and_field(bad, pattern):
    data = (line() + "\n" + bad + "\n").encode()
    with pytest.raises(MotionPreferFormatError, match=pattern):
        parse_records(data, source="f.jsonl")


def test_blank_lines_are_skipped_and_line_numbers_stay_true():
    data = ("\n" + line() + "\n\n" + line(score="x") + "\n").encode()
    with pytest.raises(MotionPreferFormatError, match="line 4"):
        parse_records(data, "f.jsonl")
    assert len(parse_records(("\n" + line() + "\n\n").encode())) == 1


def test_not_utf8_is_a_clear_error():
    with pytest.raises(MotionPreferFormatError, match="not UTF-8"):
        parse_records(b"\xff\xfe\x00", "f.jsonl")


def test_tokens_come_from_the_motion_artifact_when_not_inline(store):
    joints = np.zeros((8, 22, 3), np.float32)
    store.put_bytes("motions/m1.npz", MotionRecord(joints, tokens=np.array([7, 8, 9])).to_bytes())
    assert record_tokens(store, rec(1, 5, tokens=None)) == (7, 8, 9)
    assert record_tokens(store, rec(1, 5, tokens=(1,))) == (1,)
    store.put_bytes("motions/m2.npz", MotionRecord(joints).to_bytes())
    with pytest.raises(MotionPreferFormatError, match="no VQ tokens"):
        record_tokens(store, rec(2, 5, tokens=None))


def test_stats_like_table_3():
    records = (
        [rec(i, s, "integrity", "p1") for i, s in enumerate([5, 5, 0])]  # 2 pairs
        + [rec(10 + i, s, "temporal", "p2") for i, s in enumerate([5, 4, 3, 1])]  # 5 + 4 = 5 pairs? see below
        + [rec(20 + i, s, "temporal", "p3") for i, s in enumerate([2, 1])]  # filtered: 0 pairs
    )
    rows = {r.task: r for r in dataset_stats(records)}
    # temporal p2: sorted 5 4 3 1; chosen 5 -> 3 pairs, chosen 4 -> 2 pairs, chosen 3 filtered
    assert (rows["integrity"].prompts, rows["integrity"].motions, rows["integrity"].pairs) == (1, 3, 2)
    assert (rows["temporal"].prompts, rows["temporal"].motions, rows["temporal"].pairs) == (2, 6, 5)
    assert "frequency" not in rows
    assert (rows["total"].prompts, rows["total"].motions, rows["total"].pairs) == (3, 9, 7)
    table = format_stats(dataset_stats(records))
    assert "| temporal | 2 | 6 | 5 |" in table and "| total | 3 | 9 | 7 |" in table


def test_jsonl_is_stable_bytes():
    records = [rec(0, 5), rec(1, 0)]
    assert records_to_jsonl(records) == records_to_jsonl(parse_records(records_to_jsonl(records)))
