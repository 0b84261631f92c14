"""Task instructions for the VLM judge and the chat messages that carry a question.

Any change to the wording here changes what the judge is asked, so it must bump
INSTRUCTION_VERSION: the version is part of the cache key, and old answers stay valid only for
the old wording.
"""

from __future__ import annotations

import base64
from typing import Sequence

from atom.settings import RESPONSE_FORMATS
from services.judge.rules import ALLOWED_SCORES

INSTRUCTION_VERSION = "atom-judge-v1"

_COMMON = (
    "You are an expert evaluator of human motion. You are shown a motion of one person rendered as a "
    "stick-figure skeleton, and the text prompt the motion was generated from. Judge only whether the "
    "motion performs the events the prompt describes, as the rules below define; ignore rendering style, "
    "body shape and smoothness. Look at every image before you decide."
)

_RULES = {
    "integrity": (
        "Task: event integrity. The prompt describes several motions.\n"
        "Score 5: every described motion appears in the motion, each completely.\n"
        "Score 0: at least one described motion is missing or incomplete.\n"
        "Only 5 and 0 are valid scores. Order does not matter for this task."
    ),
    "temporal": (
        "Task: temporal order. The prompt describes exactly three motions in a temporal order (mind words "
        "such as 'before' and 'after', which can state events out of their order).\n"
        "Score 5: all three motions appear, in the described order.\n"
        "Score 4: all three motions appear, but not in the described order.\n"
        "Score 3: one of the three motions is missing.\n"
        "Score 2: two of the three motions are missing.\n"
        "Score 1: all three motions are missing."
    ),
    "frequency": (
        "Task: frequency. The prompt describes one motion performed a number of times.\n"
        "Score 3: the motion is performed, and exactly the described number of times.\n"
        "Score 2: the motion is performed, but a different number of times.\n"
        "Score 1: the described motion is not performed."
    ),
}

_FORMS = {
    "frame-by-frame": "The motion is given as {n} images: frames sampled every {k} frames of a 20 fps clip, "
    "in time order (first image = start).",
    "full-image": "The motion is given as one image: frames sampled every {k} frames of a 20 fps clip, tiled "
    "5 per row, read left to right and top to bottom in time order.",
    "trajectory-image": "The motion is given as one image: poses sampled every {k} frames of a 20 fps clip, "
    "drawn together as skeletons along the path the person travels.",
}

_REPLY = (
    'Reply with a JSON object only: {{"score": <one of {allowed}>, "rationale": "<one or two sentences '
    'naming which described motions you saw and in what order or how many times>"}}.'
)


def system_instruction(task: str) -> str:
    allowed = ", ".join(str(s) for s in ALLOWED_SCORES[task])
    return "\n\n".join((_COMMON, _RULES[task], _REPLY.format(allowed=allowed)))


# How a request asks for structured output. The first three are OpenAI's response_format; the
# last two are vLLM's extra request fields (sent through the openai client's extra_body):
# guided_json up to vLLM 0.11 (deprecated in 0.10.2, removed in 0.12), structured_outputs from
# vLLM 0.10.2 on. The strict parser guards the score whichever mode is used. The modes are listed
# once, in atom.settings (RESPONSE_FORMATS), which the pipeline's config validates against.


def judgement_schema(task: str) -> dict:
    """The JSON schema of a reply: {"score": one of the task's scores, "rationale": text}."""
    return {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "enum": list(ALLOWED_SCORES[task])},
            "rationale": {"type": "string"},
        },
        "required": ["score", "rationale"],
        "additionalProperties": False,
    }


def response_format(task: str, mode: str) -> dict | None:
    """The request's response_format for `mode`: 'json_schema' (structured outputs, strict),
    'json_object' (JSON mode) or 'none'; None also for the vLLM modes (see `extra_body`)."""
    if mode in ("none", "guided_json", "structured_outputs"):
        return None
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": f"atom_{task}_judgement", "strict": True, "schema": judgement_schema(task)}}
    raise ValueError(f"unknown response format mode {mode!r}; use one of {', '.join(RESPONSE_FORMATS)}")


def extra_body(task: str, mode: str) -> dict | None:
    """vLLM's structured-output fields for `mode` (merged into the request body), else None."""
    if mode == "guided_json":
        return {"guided_json": judgement_schema(task)}
    if mode == "structured_outputs":
        return {"structured_outputs": {"json": judgement_schema(task)}}
    return None


def image_part(png: bytes, detail: str) -> dict:
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


def build_messages(task: str, prompt_text: str, images: Sequence[bytes], form: str, interval: int, detail: str = "auto") -> list[dict]:
    """The chat messages for one question: the task's rules as the system message; the prompt, a
    description of how the motion is shown, and the images (one part per image) as the user message."""
    if form not in _FORMS:
        raise ValueError(f"unknown injection form {form!r}; use one of {tuple(_FORMS)}")
    intro = f'Prompt: "{prompt_text}"\n\n' + _FORMS[form].format(n=len(images), k=interval) + "\n\nScore the motion against the prompt."
    content: list[dict] = [{"type": "text", "text": intro}]
    content += [image_part(img, detail) for img in images]
    return [{"role": "system", "content": system_instruction(task)}, {"role": "user", "content": content}]


def text_bytes(messages: list[dict]) -> int:
    """UTF-8 bytes of text in the messages (for the token upper-bound estimate)."""
    n = 0
    for m in messages:
        c = m["content"]
        if isinstance(c, str):
            n += len(c.encode())
        else:
            n += sum(len(p.get("text", "").encode()) for p in c if p.get("type") == "text")
    return n
