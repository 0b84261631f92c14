"""The judgement cache in the artifact store: judgements/<key>.json, key = sha256 of the question.

The question is everything that decides the answer: judge model, instruction version, task,
prompt text, the sha256 of every image in order, injection form and sampling interval (and, for
self-consistency votes, the vote's index, temperature and seed: services/judge/votes.py). The same
question is never paid for twice, across runs and processes (the store's writes are atomic).
Only answered questions are reused; a record of a failed reply is kept for audit but is a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Sequence

from atom.store import ArtifactNotFound, ArtifactStore, StoreError

log = logging.getLogger(__name__)

PREFIX = "judgements"


def frame_hashes(images: Sequence[bytes]) -> list[str]:
    return [hashlib.sha256(bytes(img)).hexdigest() for img in images]


def cache_key(
    model: str,
    instruction_version: str,
    task: str,
    prompt_text: str,
    hashes: Sequence[str],
    form: str,
    interval: int,
    extra: dict | None = None,
) -> str:
    """`extra`: more fields that decide the answer (a vote's index, temperature and seed; the
    number of votes of an aggregate record). Without it the key is the one-answer question's."""
    question = {
        "model": model,
        "instruction_version": instruction_version,
        "task": task,
        "prompt": prompt_text,
        "frames": list(hashes),
        "form": form,
        "interval": int(interval),
    }
    if extra:
        clash = sorted(set(extra) & set(question))
        if clash:
            raise ValueError(f"extra key fields {clash} would overwrite the question's own")
        question.update(extra)
    return hashlib.sha256(json.dumps(question, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class JudgementCache:
    def __init__(self, store: ArtifactStore, prefix: str = PREFIX):
        self.store = store
        self.prefix = prefix.rstrip("/")

    def record_key(self, key: str) -> str:
        return f"{self.prefix}/{key}.json"

    def get(self, key: str) -> dict | None:
        """The cached answered record, or None (missing, unanswered or unreadable)."""
        try:
            rec = self.store.get_json(self.record_key(key))
        except ArtifactNotFound:
            return None
        except StoreError as exc:  # a corrupt record is re-asked, and overwritten
            log.warning("ignoring unreadable judgement record %s: %s", self.record_key(key), exc)
            return None
        if not isinstance(rec, dict) or rec.get("score") is None:
            return None
        return rec

    def put(self, key: str, record: dict) -> str:
        rk = self.record_key(key)
        self.store.put_json(rk, record)
        return rk
