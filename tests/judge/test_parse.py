import pytest

from services.judge.parse import JudgeReplyError, parse_reply


@pytest.mark.parametrize(
    "reply,task,score",
    [
        ('{"score": 4, "rationale": "wrong order"}', "temporal", 4),
        ('```json\n{"score": 5, "rationale": "ok"}\n```', "integrity", 5),
        ('{"score": 3.0, "rationale": "ok"}', "frequency", 3),
        ('{"score": "2", "rationale": "ok"}', "frequency", 2),
        ('Here you go: {"score": 1, "rationale": "none"} Hope that helps.', "temporal", 1),
        ("4", "temporal", 4),
        ("0.", "integrity", 0),
        ("Score: 3\nThe motion waves three times.", "frequency", 3),
        ("**Score**: 5 - all motions appear.", "integrity", 5),
        ("The final score is 2 because a squat is missing.", "temporal", 2),
        ("Rating: 4/5", "temporal", 4),
        ("Score: 4. I repeat, score: 4.", "temporal", 4),  # repeated but unambiguous
    ],
)
def test_reads_unambiguous_scores(reply, task, score):
    assert parse_reply(reply, task)[0] == score


@pytest.mark.parametrize(
    "reply,task,why",
    [
        ("", "temporal", "empty"),
        (None, "temporal", "empty"),
        ("   ", "temporal", "empty"),
        ('{"score": 6, "rationale": "x"}', "temporal", "not allowed"),
        ('{"score": 3, "rationale": "x"}', "integrity", "not allowed"),  # integrity is 0 or 5
        ('{"score": 0}', "frequency", "not allowed"),
        ('{"score": 4.5}', "temporal", "not an integer"),
        ('{"score": true}', "temporal", "boolean"),
        ('{"score": null}', "temporal", "not an integer"),
        ('{"rationale": "fine"}', "temporal", "no 'score'"),
        ('{"score": 4} and later {"score": 5}', "temporal", "different scores"),
        ("Score: 4 or maybe score: 5", "temporal", "several scores"),
        ("I would give it 4 or 5.", "temporal", "no score"),
        ("The person walks forward 3 times.", "frequency", "no score"),  # a number is not a score
        ("Score: 3.5", "temporal", "not an integer"),
        ("score: 9", "frequency", "not allowed"),
    ],
)
def test_rejects_missing_out_of_range_or_ambiguous(reply, task, why):
    with pytest.raises(JudgeReplyError, match=why) as info:
        parse_reply(reply, task)
    assert info.value.reply == (reply or "")[:2000]


def test_rationale_is_returned():
    assert parse_reply('{"score": 5, "rationale": "all three seen"}', "temporal") == (5, "all three seen")


def test_unknown_task():
    with pytest.raises(ValueError):
        parse_reply("4", "speed")
