"""Strict reading of a judge's reply. A score is read only when the reply states exactly one
score in the task's allowed set; anything else raises JudgeReplyError (never a guess)."""

from __future__ import annotations

import json
import re

from services.judge.rules import ALLOWED_SCORES


class JudgeReplyError(ValueError):
    """The judge's reply holds no single valid score; `reply` keeps (a prefix of) the raw text."""

    def __init__(self, message: str, reply: str = ""):
        super().__init__(message)
        self.reply = reply[:2000]


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S | re.I)
# "score: 4", "Score = 4", "**Score**: 4", "score of 4", "rating: 4/5" (a bare "4/5" is not read)
_KEYWORD = re.compile(r"\b(?:score|rating)\b\W{0,6}(?:is|of|=|:)?\W{0,4}(-?\d+(?:\.\d+)?)", re.I)
_BARE = re.compile(r"^\s*(-?\d+)\s*\.?\s*$")


def _as_int(value, reply: str) -> int:
    if isinstance(value, bool):
        raise JudgeReplyError(f"score is a boolean ({value}), not an integer", reply)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise JudgeReplyError(f"score {value!r} is not an integer", reply)


def _check(task: str, score: int, reply: str) -> int:
    allowed = ALLOWED_SCORES[task]
    if score not in allowed:
        raise JudgeReplyError(f"score {score} is not allowed for {task} (allowed: {list(allowed)})", reply)
    return score


def _json_objects(text: str) -> list[dict]:
    """Every top-level JSON object embedded in the text."""
    dec = json.JSONDecoder()
    found, i = [], 0
    while (i := text.find("{", i)) != -1:
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = end
    return found


def parse_reply(text: str | None, task: str) -> tuple[int, str]:
    """(score, rationale) from a reply; JudgeReplyError when it is missing, out of range or ambiguous."""
    if task not in ALLOWED_SCORES:
        raise ValueError(f"unknown task {task!r}")
    if text is None or not text.strip():
        raise JudgeReplyError("empty reply", text or "")
    body = text.strip()
    m = _FENCE.match(body)
    if m:
        body = m.group(1)
    # 1) a JSON object (what the instruction asks for)
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return _from_object(obj, task, text)
    objs = [o for o in _json_objects(body) if "score" in o]
    if objs:
        scores = {_as_int(o["score"], text) for o in objs}
        if len(scores) > 1:
            raise JudgeReplyError(f"reply holds JSON objects with different scores {sorted(scores)}", text)
        return _from_object(objs[0], task, text)
    # 2) a bare integer reply ("4")
    m = _BARE.match(body)
    if m:
        return _check(task, int(m.group(1)), text), ""
    # 3) prose with an explicit "score: N"; only one distinct value may be stated
    values = set()
    for v in _KEYWORD.findall(body):
        if "." in v and not float(v).is_integer():
            raise JudgeReplyError(f"score {v} is not an integer", text)
        values.add(int(float(v)))
    if len(values) == 1:
        return _check(task, values.pop(), text), body
    if len(values) > 1:
        raise JudgeReplyError(f"reply states several scores {sorted(values)}; ambiguous", text)
    raise JudgeReplyError('reply states no score (expected JSON {"score": int, "rationale": str})', text)


def _from_object(obj: dict, task: str, reply: str) -> tuple[int, str]:
    if "score" not in obj:
        raise JudgeReplyError(f"reply JSON has no 'score' field (keys: {sorted(obj)})", reply)
    score = _check(task, _as_int(obj["score"], reply), reply)
    rationale = obj.get("rationale", "")
    return score, rationale if isinstance(rationale, str) else json.dumps(rationale)
