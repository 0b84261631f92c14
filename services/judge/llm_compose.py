"""AToM stage 1 with an LLM (the paper used GPT-4): label group in, one natural sentence out.

Any OpenAI-compatible endpoint works. The label groups come from the offline composer (so the
structured labels are exact); the LLM only writes the sentence. Each sentence is checked: it
must mention every event (and, for frequency, the count); a sentence that fails is asked again,
and after `max_attempts` the group is recorded as an error instead of a prompt. So is a reply
that is not a chat completion at all. A refused key, permission or quota (JudgeAccountError:
401, 403, 429 insufficient_quota) is raised instead, failing the whole composition: every later
group would be refused the same way.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, field
from typing import Sequence

import openai

from atom.motion.events import EVENTS, EventType, LabelGroup

from services.judge.client import (
    JudgeRequestError,
    JudgeUnavailable,
    MalformedReply,
    Retrier,
    RetryPolicy,
    create_completion,
    endpoint_name,
    install_log_redaction,
    make_client,
    redact,
    remove_log_redaction,
    reply_text,
    resolve_api_key,
)
from services.judge.compose import COUNT_PHRASES, ComposeError, label_groups, vocabulary_dict
from services.judge.records import PromptRecord

log = logging.getLogger(__name__)

COMPOSE_INSTRUCTION_VERSION = "atom-compose-v1"
CONJUNCTIONS = ("and then", "then", "followed by", "after that", "before", "after", "and", "next", "afterwards", "once done", "and finally")

SYSTEM = """You write prompts for a text-to-motion model. You get a group of motion labels (events) and a \
sub-task. Join the events into ONE natural English sentence that describes one person performing them.
Rules:
- Start with a subject such as "A man", "A person", "A woman" or "Someone".
- Mention every event, keeping its meaning (you may rephrase the wording); add no other actions.
- integrity: describe all the events in one sentence.
- temporal: the events must happen in the given order. Join them with ordered conjunctions; pick them at \
random, not always the same one (for example: {conj}). If you use "before" or "after", the sentence must \
still state the given temporal order.
- frequency: state exactly how many times the event is performed ("once", "twice", "three times", ...).
Reply with a JSON object only: {{"sentence": "<the sentence>"}}."""

_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "atom_prompt",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"sentence": {"type": "string"}},
            "required": ["sentence"],
            "additionalProperties": False,
        },
    },
}


class ComposeReplyError(ValueError):
    """The LLM's sentence is unusable (not JSON, misses an event or the count)."""


# -- validation --------------------------------------------------------------------------------

_STOP = {
    "a",
    "an",
    "the",
    "his",
    "her",
    "their",
    "its",
    "to",
    "of",
    "on",
    "in",
    "at",
    "few",
    "and",
    "then",
    "do",
    "does",
    "doing",
    "take",
    "takes",
    "taking",
    "both",
    "get",
    "gets",
    "getting",
    "back",
    "with",
}


def _stem(w: str) -> str:
    for suf in ("ing", "es", "ed", "s"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            w = w[: -len(suf)]
            break
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower().replace("-", ""))


def _keysets(et: EventType) -> list[list[str]]:
    """Per alternative wording: its content-word stems, in order."""
    phrases = [et.phrase, *et.paraphrases, et.name.replace("_", " ")]
    return [[_stem(w) for w in _words(p) if w not in _STOP] for p in phrases]


def _match_at(content: list[str], j: int, keys: list[str], inserts: int) -> bool:
    """Do the keys follow in order from content[j], with at most `inserts` extra words between?"""
    pos = j
    for k in keys[1:]:
        for step in range(1, inserts + 2):
            if pos + step < len(content) and content[pos + step] == k:
                inserts -= step - 1
                pos += step
                break
        else:
            return False
    return True


def mention_position(sentence: str, et: EventType) -> int | None:
    """Index (in words) of the earliest place the sentence mentions the event, or None.

    A mention is one alternative wording's content words in order, with at most one extra content
    word between them ("walks slowly backward"); contiguity keeps "turns left after turning right"
    from reading as "turns ... right" at the first verb."""
    words = _words(sentence)
    content = [(i, _stem(w)) for i, w in enumerate(words) if w not in _STOP]
    stems = [c for _, c in content]
    best = None
    for keys in _keysets(et):
        if not keys:
            continue
        for j, w in enumerate(stems):
            if w == keys[0] and _match_at(stems, j, keys, 1):
                i = content[j][0]
                best = i if best is None else min(best, i)
                break
    return best


def count_phrases(count: int) -> tuple[str, ...]:
    return COUNT_PHRASES.get(count, ()) + (f"{count} times",) + (("a single time", "1 time") if count == 1 else ())


def validate_sentence(sentence: str, labels: LabelGroup, vocabulary: dict[str, EventType]) -> None:
    if not sentence or not sentence.strip():
        raise ComposeReplyError("empty sentence")
    positions = []
    for e in labels.events:
        pos = mention_position(sentence, vocabulary[e.event])
        if pos is None:
            raise ComposeReplyError(f"sentence does not mention {vocabulary[e.event].phrase!r}: {sentence!r}")
        positions.append(pos)
    low = sentence.lower()
    if labels.task == "frequency":
        c = labels.events[0].count
        if not any(p in low for p in count_phrases(c)):
            raise ComposeReplyError(f"sentence does not say the count ({count_phrases(c)[0]}): {sentence!r}")
    if labels.task == "temporal" and not re.search(r"\b(before|after|prior|once)\b", low):
        # Without a reordering word the surface order must be the temporal order.
        if positions != sorted(positions):
            raise ComposeReplyError(f"sentence states the events out of order: {sentence!r}")


def parse_sentence(reply: str | None) -> str:
    if not reply:
        raise ComposeReplyError("empty reply")
    body = reply.strip()
    m = re.match(r"^```(?:json)?\s*(.*?)\s*```$", body, re.S)
    body = m.group(1) if m else body
    try:
        obj = json.loads(body)
    except ValueError:
        raise ComposeReplyError(f"reply is not JSON: {reply[:200]!r}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("sentence"), str):
        raise ComposeReplyError(f"reply JSON has no 'sentence' string: {reply[:200]!r}")
    return re.sub(r"\s+", " ", obj["sentence"]).strip()


# -- the composer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LLMComposeConfig:
    model: str = "gpt-4o"
    base_url: str | None = None
    key_file: str | None = None
    allow_no_key: bool = False
    timeout_s: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_attempts: int = 3  # asks per label group until a sentence passes validation
    temperature: float = 1.0
    response_format: str = "json_schema"  # json_schema | json_object | none
    max_completion_tokens: int = 200


@dataclass
class ComposeResult:
    prompts: list[PromptRecord]
    errors: list[dict]  # {"labels": ..., "error": ...} for groups with no valid sentence
    calls: int = 0


class LLMComposer:
    def __init__(self, config: LLMComposeConfig, *, client: openai.OpenAI | None = None, env: dict | None = None, sleep=None):
        self.config = config
        self._secret = resolve_api_key(config.key_file, env, required=not config.allow_no_key)
        self._log_filter = install_log_redaction(self._secret)
        self._client = client or make_client(config.base_url, self._secret, config.timeout_s)
        self._sleep = sleep
        self.calls = 0

    def __repr__(self) -> str:
        return f"LLMComposer(model={self.config.model!r}, base_url={self.config.base_url!r}, key=***)"

    def close(self) -> None:
        remove_log_redaction(self._log_filter)
        self._client.close()

    def __enter__(self) -> "LLMComposer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, labels: LabelGroup, vocabulary: dict[str, EventType], rng: random.Random) -> str:
        # LLMs pick "random" conjunctions poorly: suggest a seeded sample per request.
        conj = ", ".join(f'"{c}"' for c in rng.sample(CONJUNCTIONS, 4))
        group = {"task": labels.task, "events": [{"event": vocabulary[e.event].phrase, "count": e.count} for e in labels.events]}
        kwargs = dict(
            model=self.config.model,
            temperature=self.config.temperature,
            max_completion_tokens=self.config.max_completion_tokens,
            messages=[{"role": "system", "content": SYSTEM.format(conj=conj)}, {"role": "user", "content": json.dumps(group)}],
        )
        if self.config.response_format == "json_schema":
            kwargs["response_format"] = _SCHEMA
        elif self.config.response_format == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        retrier = Retrier(
            self.config.retry,
            rng.randrange(2**31),
            self._sleep,
            self._secret,
            endpoint=f"the prompt-writing endpoint {endpoint_name(self.config.base_url)} (model {self.config.model})",
        )

        def attempt(n):
            self.calls += 1
            try:
                return reply_text(create_completion(self._client, **kwargs))
            except MalformedReply as exc:  # like an unusable sentence: ask again, then record it
                raise ComposeReplyError(f"malformed reply: {redact(str(exc), self._secret)}") from None

        content, _ = retrier.run(attempt)
        return content

    def sentence_for(self, labels: LabelGroup, vocabulary: dict[str, EventType] | None = None, rng: random.Random | None = None) -> str:
        vocabulary = vocabulary or EVENTS
        rng = rng or random.Random(0)
        last: Exception | None = None
        for _ in range(self.config.max_attempts):
            try:
                sentence = parse_sentence(self._request(labels, vocabulary, rng))
                validate_sentence(sentence, labels, vocabulary)
                return sentence
            except ComposeReplyError as exc:
                last = exc
                log.info("LLM sentence rejected: %s", exc)
        raise ComposeReplyError(f"no valid sentence after {self.config.max_attempts} attempts; last: {last}")

    def compose(self, tasks: Sequence[str], per_task: int, seed: int, vocabulary=None, max_count: int = 3) -> ComposeResult:
        """per_task prompts per task from distinct label groups. A group's errors are collected, not
        raised; a JudgeAccountError (key, permission or quota refused) is raised."""
        vocab = vocabulary_dict(vocabulary)
        result = ComposeResult([], [])
        seen: set[str] = set()
        for task in tasks:
            rng = random.Random(f"{seed}:{task}:llm")
            for labels in label_groups(task, per_task, seed, list(vocab.values()), max_count=max_count):
                try:
                    sentence = self.sentence_for(labels, vocab, rng)
                except (ComposeReplyError, JudgeUnavailable, JudgeRequestError) as exc:
                    result.errors.append({"labels": labels.to_dict(), "error": redact(str(exc), self._secret)})
                    continue
                if sentence in seen:
                    result.errors.append({"labels": labels.to_dict(), "error": f"duplicate sentence {sentence!r}"})
                    continue
                seen.add(sentence)
                result.prompts.append(PromptRecord.make(sentence, labels))
        result.calls = self.calls
        return result


__all__ = [
    "ComposeError",
    "ComposeReplyError",
    "ComposeResult",
    "LLMComposeConfig",
    "LLMComposer",
    "validate_sentence",
    "mention_position",
    "parse_sentence",
]
