"""Records that cross the judge's boundaries: prompts, items to judge, judgements.

Plain dataclasses with dict round-trips so the servicer, the store and JSONL files can carry them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from atom.motion.events import LabelGroup, check_task
from atom.store.jsonl import encode_jsonl, iter_jsonl

FORMS = ("frame-by-frame", "full-image", "trajectory-image")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class JudgeInputError(ValueError):
    """An item, prompt or file given to the judge is malformed; the message says what to fix."""


def prompt_id_for(task: str, text: str) -> str:
    """Short stable id of a prompt: the first 16 hex digits of sha256(task, text)."""
    return hashlib.sha256(f"{task}\x1f{text}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PromptRecord:
    prompt_id: str
    text: str
    task: str
    labels: LabelGroup

    @classmethod
    def make(cls, text: str, labels: LabelGroup) -> "PromptRecord":
        check_task(labels.task)
        return cls(prompt_id_for(labels.task, text), text, labels.task, labels)

    def to_dict(self) -> dict:
        return {"prompt_id": self.prompt_id, "text": self.text, "task": self.task, "labels": self.labels.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "PromptRecord":
        try:
            labels = LabelGroup.from_dict(d["labels"])
            text, task = str(d["text"]), str(d.get("task", labels.task))
        except (KeyError, TypeError, ValueError) as exc:
            raise JudgeInputError(f"not a prompt record ({exc!r}); expected keys text, task, labels") from None
        check_task(task)
        if task != labels.task:
            raise JudgeInputError(f"prompt {text!r}: task {task!r} differs from its labels' task {labels.task!r}")
        return cls(str(d.get("prompt_id") or prompt_id_for(task, text)), text, task, labels)


def write_prompts_jsonl(prompts: Iterable[PromptRecord]) -> bytes:
    return encode_jsonl(p.to_dict() for p in prompts)


def read_prompts_jsonl(data: bytes | str | Path) -> list[PromptRecord]:
    if isinstance(data, Path):
        data = data.read_bytes()
    out = []
    for where, obj in iter_jsonl(data.encode() if isinstance(data, str) else data, "prompts", JudgeInputError):
        if not isinstance(obj, dict):
            raise JudgeInputError(
                f"{where}: not a prompt record (a JSON {type(obj).__name__}); expected an object with keys text, task, labels"
            )
        try:
            out.append(PromptRecord.from_dict(obj))
        except (ValueError, JudgeInputError) as exc:
            raise JudgeInputError(f"{where}: {exc}") from None
    return out


@dataclass(frozen=True)
class JudgeItem:
    """One motion to judge against one prompt.

    images: PNG bytes from the renderer. Frame-by-frame: one image per sampled frame, in time
    order; full-image and trajectory-image: exactly one composite image.
    joints: (T, 22, 3) array for the kinematic judge (the VLM judge ignores it).
    """

    item_id: str
    prompt: PromptRecord
    images: Sequence[bytes] = ()
    form: str = "frame-by-frame"
    interval: int = 8
    joints: object = None

    def check_images(self) -> None:
        if self.form not in FORMS:
            raise JudgeInputError(f"item {self.item_id}: unknown injection form {self.form!r}; use one of {FORMS}")
        if not self.images:
            raise JudgeInputError(f"item {self.item_id}: no images; render the motion first (renderer.Render)")
        if self.form != "frame-by-frame" and len(self.images) != 1:
            raise JudgeInputError(f"item {self.item_id}: form {self.form!r} takes exactly one composite image, got {len(self.images)}")
        for i, img in enumerate(self.images):
            if not isinstance(img, (bytes, bytearray)) or not bytes(img[:8]) == PNG_SIGNATURE:
                raise JudgeInputError(f"item {self.item_id}: image {i} is not PNG bytes")


@dataclass
class Judgement:
    """A judge's verdict on one item. score is None when there is no verdict; `error` says why
    (a score is never guessed)."""

    item_id: str
    score: int | None
    rationale: str
    judge_id: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    error: str = ""
    # "" when ok; else one of: reply (unreadable score or malformed reply), budget, unavailable
    # (retries exhausted), request (the endpoint refused the request), input (bad item), pending
    # (Batch API: its batch was still running when the run stopped waiting). A refused
    # key, permission or quota is no item's error: it fails the whole call (JudgeAccountError).
    error_kind: str = ""
    attempts: int = 0
    cache_key: str = ""
    record_key: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.score is not None and not self.error

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Judgement":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})
