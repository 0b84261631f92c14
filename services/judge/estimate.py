"""Estimate a judging run before spending: how many questions are not cached yet, how many images
they carry and how large, the input and output tokens they will take, and what that costs on the
synchronous path and on the Batch API.

Token rules (stated by `JudgeEstimate.format()` too):

- Images, GPT-4o-class models (gpt-4o, gpt-4-turbo; not gpt-4o-mini, whose tile costs differ, nor
  gpt-4.1, which counts 32-px patches): detail "low" costs 85 tokens. Detail "high" (and "auto",
  counted as high: an upper bound) first scales the image to fit within 2048 x 2048 keeping its
  aspect ratio, then scales it so its shortest side is 768 px, then costs 170 tokens per 512-px
  tile needed to cover it plus 85. Source: OpenAI, Vision guide, "Calculating costs"
  (https://platform.openai.com/docs/guides/vision#calculating-costs), as quoted verbatim with its
  worked examples (1024x1024 high = 765 tokens, 2048x4096 high = 1105) in
  https://v2ex.com/amp/t/1044688 and restated in docs.camel-ai.org (camel.utils.token_counting);
  found with the `search` tool, not fetched from openai.com. The guide does not say how scaled
  sizes are rounded: they are rounded down here. It also scales a small image UP to a 768-px
  shortest side when read literally (a 256x256 render = 4 tiles = 765 tokens); community reports
  suggest small images are not upscaled, in which case this is an upper bound.
- Text: the judge's CostModel rule, one token per `chars_per_token` UTF-8 bytes plus
  `message_overhead_tokens` per message and one more for the reply: an upper bound (a byte-level
  BPE tokenizer never makes more tokens than bytes), not an exact count.
- Output: the mean completion tokens of the cached answers among these questions when there are
  some (else `expected_output_tokens`, else the max_completion_tokens bound), and the bound itself.

Batch API price: `batch_price_factor` x the synchronous price (0.5: OpenAI's Batch API is billed
at half the synchronous price).

Pure apart from reading the cache (a lookup per question; nothing is written or asked).
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Iterable, Sequence

from services.judge.budget import CostModel
from services.judge.cache import JudgementCache
from services.judge.instructions import build_messages, text_bytes
from services.judge.records import JudgeInputError, JudgeItem
from services.judge.vlm import VLMConfig, question_key
from services.judge.votes import vote_plan

BATCH_PRICE_FACTOR = 0.5
RULE_SOURCE = "https://platform.openai.com/docs/guides/vision#calculating-costs"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise JudgeInputError("not a PNG image (no IHDR header)")
    return struct.unpack(">II", data[16:24])


@dataclass(frozen=True)
class ImageTokenRule:
    """Tile-based image tokens (OpenAI's rule for GPT-4o-class models by default)."""

    name: str = "OpenAI GPT-4o tiles"
    low_tokens: int = 85
    base_tokens: int = 85
    tile_tokens: int = 170
    tile_px: int = 512
    fit_px: int = 2048
    short_side_px: int = 768

    def scaled(self, width: int, height: int) -> tuple[int, int]:
        """The size the image is billed at (detail high): fit within fit_px, shortest side to short_side_px."""
        w, h = float(width), float(height)
        if max(w, h) > self.fit_px:
            f = self.fit_px / max(w, h)
            w, h = math.floor(w * f), math.floor(h * f)
        f = self.short_side_px / min(w, h)
        return math.floor(w * f), math.floor(h * f)

    def tokens(self, width: int, height: int, detail: str = "auto") -> int:
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        if detail == "low":
            return self.low_tokens
        w, h = self.scaled(width, height)
        return self.base_tokens + self.tile_tokens * math.ceil(w / self.tile_px) * math.ceil(h / self.tile_px)

    def describe(self) -> str:
        return (
            f"{self.name}: detail low = {self.low_tokens} tokens; high/auto = fit within "
            f"{self.fit_px}x{self.fit_px}, scale the shortest side to {self.short_side_px} px (rounded down), "
            f"then {self.base_tokens} + {self.tile_tokens} per {self.tile_px}-px tile ({RULE_SOURCE})"
        )


GPT4O_IMAGES = ImageTokenRule()


@dataclass(frozen=True)
class QuestionEstimate:
    item_id: str
    vote: int | None
    cache_key: str
    cached: bool
    image_sizes: tuple[tuple[int, int], ...]
    image_tokens: int
    text_tokens: int  # an upper bound (bytes), overheads included

    @property
    def input_tokens(self) -> int:
        return self.image_tokens + self.text_tokens


@dataclass
class JudgeEstimate:
    model: str
    detail: str
    votes: int
    items: int
    invalid: int  # items that would be refused as input errors (never asked)
    questions: int  # items x votes, duplicates once
    cached: int
    to_ask: int
    images: int  # over the questions to ask
    images_per_question: tuple[int, int, float]  # min, max, mean over the questions to ask
    image_sizes: dict[str, int]  # "WxH" -> images, over the questions to ask
    image_tokens: int
    text_tokens: int  # upper bound
    output_tokens_expected: int  # per question
    output_tokens_bound: int  # per question
    output_basis: str
    sync_usd: float  # expected
    sync_usd_bound: float
    batch_usd: float
    batch_usd_bound: float
    batch_price_factor: float
    image_rule: str
    text_rule: str
    cached_answers: int = 0  # cached answers with a completion-token count, among the questions ...
    cached_output_tokens: int = 0  # ... and their completion tokens (the expected output is their mean)
    per_question: list[QuestionEstimate] = field(default_factory=list, repr=False)

    @property
    def input_tokens(self) -> int:
        return self.image_tokens + self.text_tokens

    @property
    def output_tokens(self) -> int:
        return self.output_tokens_expected * self.to_ask

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("per_question")
        d.update(input_tokens=self.input_tokens, output_tokens=self.output_tokens)
        return d

    def format(self) -> str:
        lo, hi, mean = self.images_per_question
        per_q = self.input_tokens / self.to_ask if self.to_ask else 0.0
        sizes = ", ".join(f"{k} x{v}" for k, v in sorted(self.image_sizes.items(), key=lambda kv: -kv[1])) or "none"
        lines = [
            f"Judge estimate for {self.model} ({self.votes} vote(s) per item, image detail {self.detail})",
            f"  questions         {self.questions} from {self.items} items: {self.cached} cached, "
            f"{self.to_ask} to ask" + (f"; {self.invalid} items with bad images are never asked" if self.invalid else ""),
            f"  images            {self.images} ({lo}..{hi} per question, mean {mean:.1f}); sizes: {sizes}",
            f"  input tokens      {self.input_tokens:,} (images {self.image_tokens:,} exact by the rule + text "
            f"<= {self.text_tokens:,}); {per_q:,.0f} per question",
            f"  output tokens     {self.output_tokens_expected} per question ({self.output_basis}); bound {self.output_tokens_bound}",
            f"  cost, synchronous ${self.sync_usd:,.4f} expected, ${self.sync_usd_bound:,.4f} at the output bound",
            f"  cost, Batch API   ${self.batch_usd:,.4f} expected, ${self.batch_usd_bound:,.4f} at the output bound "
            f"({self.batch_price_factor:g} x synchronous)",
            f"  image rule: {self.image_rule}",
            f"  text rule:  {self.text_rule}",
        ]
        return "\n".join(lines)


def estimate(
    items: Iterable[JudgeItem],
    config: VLMConfig,
    cache: JudgementCache | None = None,
    *,
    rule: ImageTokenRule = GPT4O_IMAGES,
    batch_price_factor: float = BATCH_PRICE_FACTOR,
    expected_output_tokens: int | None = None,
) -> JudgeEstimate:
    """What judging `items` with `config` would ask and cost (config.votes questions per item)."""
    if not 0 < batch_price_factor <= 1:
        raise ValueError(f"batch_price_factor must be within (0, 1], got {batch_price_factor}")
    cost = config.cost
    votes = [None] if config.votes == 1 else vote_plan(config.votes, config.vote_temperature, config.vote_seed)
    items = list(items)
    seen: set[str] = set()
    per_q: list[QuestionEstimate] = []
    cached_completion: list[int] = []
    invalid = 0
    for it in items:
        try:
            it.check_images()
            sizes = tuple(png_size(bytes(img)) for img in it.images)
        except JudgeInputError:
            invalid += 1
            continue
        msgs = build_messages(it.prompt.task, it.prompt.text, it.images, it.form, it.interval, config.image_detail)
        text = cost.estimate_prompt_tokens(text_bytes(msgs), 0, len(msgs))
        image = sum(rule.tokens(w, h, config.image_detail) for w, h in sizes)
        for v in votes:
            key = question_key(config.model, it, v)
            if key in seen:
                continue
            seen.add(key)
            rec = cache.get(key) if cache is not None else None
            if rec is not None and isinstance(rec.get("completion_tokens"), int):
                cached_completion.append(rec["completion_tokens"])
            per_q.append(QuestionEstimate(it.item_id, None if v is None else v.index, key, rec is not None, sizes, image, text))
    ask = [q for q in per_q if not q.cached]
    n_images = [len(q.image_sizes) for q in ask]
    est = JudgeEstimate(
        model=config.model,
        detail=config.image_detail,
        votes=config.votes,
        items=len(items),
        invalid=invalid,
        questions=len(per_q),
        cached=len(per_q) - len(ask),
        to_ask=len(ask),
        images=sum(n_images),
        images_per_question=(min(n_images, default=0), max(n_images, default=0), sum(n_images) / len(n_images) if n_images else 0.0),
        image_sizes=dict(Counter(f"{w}x{h}" for q in ask for w, h in q.image_sizes)),
        image_tokens=sum(q.image_tokens for q in ask),
        text_tokens=sum(q.text_tokens for q in ask),
        output_tokens_expected=0,
        output_tokens_bound=0,
        output_basis="",
        sync_usd=0.0,
        sync_usd_bound=0.0,
        batch_usd=0.0,
        batch_usd_bound=0.0,
        batch_price_factor=batch_price_factor,
        image_rule=rule.describe(),
        text_rule=(
            "an upper bound: one token per "
            + ("UTF-8 byte" if cost.chars_per_token == 1 else f"{cost.chars_per_token:g} UTF-8 bytes")
            + f" of text, plus {cost.message_overhead_tokens} per message and per reply (CostModel)"
        ),
        cached_answers=len(cached_completion),
        cached_output_tokens=sum(cached_completion),
        per_question=per_q,
    )
    return _priced(est, cost, expected_output_tokens)


def _priced(est: JudgeEstimate, cost: CostModel, expected_output_tokens: int | None = None) -> JudgeEstimate:
    """Fill in the expected output per question and the four costs from the counts."""
    bound = cost.max_completion_tokens
    if est.cached_answers:
        expected = min(bound, math.ceil(est.cached_output_tokens / est.cached_answers))
        basis = f"mean of {est.cached_answers} cached answers"
    elif expected_output_tokens is not None:
        expected, basis = min(bound, int(expected_output_tokens)), "as given"
    else:
        expected, basis = bound, "no cached answers: the max_completion_tokens bound"
    sync = cost.cost(est.input_tokens, expected * est.to_ask)
    sync_bound = cost.cost(est.input_tokens, bound * est.to_ask)
    return replace(
        est,
        output_tokens_expected=expected,
        output_tokens_bound=bound,
        output_basis=basis,
        sync_usd=sync,
        sync_usd_bound=sync_bound,
        batch_usd=sync * est.batch_price_factor,
        batch_usd_bound=sync_bound * est.batch_price_factor,
    )


def merge(a: JudgeEstimate, b: JudgeEstimate, cost: CostModel) -> JudgeEstimate:
    """The estimate of two sets of items judged with the same config (counts added, costs recomputed
    at `cost`'s prices). A question in both sets is counted twice: estimate them together to avoid it."""
    if (a.model, a.detail, a.votes) != (b.model, b.detail, b.votes):
        raise ValueError(f"cannot merge estimates for different configs: {(a.model, a.detail, a.votes)} and {(b.model, b.detail, b.votes)}")
    asked = [e for e in (a, b) if e.to_ask]
    to_ask = a.to_ask + b.to_ask
    images = a.images + b.images
    est = replace(
        b,
        items=a.items + b.items,
        invalid=a.invalid + b.invalid,
        questions=a.questions + b.questions,
        cached=a.cached + b.cached,
        to_ask=to_ask,
        images=images,
        images_per_question=(
            min((e.images_per_question[0] for e in asked), default=0),
            max((e.images_per_question[1] for e in asked), default=0),
            images / to_ask if to_ask else 0.0,
        ),
        image_sizes=dict(Counter(a.image_sizes) + Counter(b.image_sizes)),
        image_tokens=a.image_tokens + b.image_tokens,
        text_tokens=a.text_tokens + b.text_tokens,
        cached_answers=a.cached_answers + b.cached_answers,
        cached_output_tokens=a.cached_output_tokens + b.cached_output_tokens,
        per_question=a.per_question + b.per_question,
    )
    return _priced(est, cost)


def question_input_tokens(item: JudgeItem, config: VLMConfig, rule: ImageTokenRule = GPT4O_IMAGES) -> tuple[int, int]:
    """(image tokens, text tokens upper bound) of asking one item once."""
    sizes: Sequence[tuple[int, int]] = [png_size(bytes(img)) for img in item.images]
    msgs = build_messages(item.prompt.task, item.prompt.text, item.images, item.form, item.interval, config.image_detail)
    return (
        sum(rule.tokens(w, h, config.image_detail) for w, h in sizes),
        config.cost.estimate_prompt_tokens(text_bytes(msgs), 0, len(msgs)),
    )
