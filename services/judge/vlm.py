"""The VLM judge: rendered frames + prompt + task rules to any OpenAI-compatible chat endpoint,
one strict score back.

Per question: cache lookup (judgements/<key>.json; a hit costs nothing) -> budget reservation of
the call's estimated cost (refused with BudgetExceeded before anything is sent if it could pass
the cap) -> rate limits (requests and tokens per minute) -> concurrency limit -> the HTTP call,
with our own counted retries on 429 / 5xx / timeouts -> strict reply parsing -> cache record.

Every call's reservation is settled in a `finally`, whatever comes back: the usage the provider
reports, else the estimate for a timeout (charge_timeouts) or a readable answer without usage,
else nothing. A reply that is not a chat completion (an HTML error page, cut-off or other JSON) fails
its own item (error_kind 'reply'). A refused key, permission or quota (JudgeAccountError) raises
instead: every other item would be refused the same way.

The lifetime cap is a BudgetLedger: the judge's own (config.budget_usd), or one passed in and
shared with other judges (the judge service shares one across all models). `score_batch` yields
judgements in input order (workers run ahead concurrently; a slow first item delays what is
yielded, not what is computed). A batch that runs out of budget yields what finished plus
error_kind='budget' judgements for the rest.

Self-consistency (config.votes > 1): each question is asked `votes` times, vote i at
vote_temperature with seed vote_seed + i in the request, each vote its own cached question; the
item's judgement is the majority score with its agreement and entropy (services/judge/votes.py),
recorded under an aggregate key. Structured output: response_format json_schema / json_object /
none (OpenAI), or guided_json / structured_outputs (vLLM's extra request fields).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, Sequence, TypedDict

import openai

from atom.store import ArtifactStore, StoreError
from services.judge.budget import BudgetExceeded, BudgetLedger, CostModel, Reservation, TokenBucket
from services.judge.cache import JudgementCache, cache_key, frame_hashes
from services.judge.client import (
    JudgeAccountError,
    JudgeConfigError,
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
    reply_usage,
    resolve_api_key,
)
from services.judge.instructions import (
    INSTRUCTION_VERSION,
    RESPONSE_FORMATS,
    build_messages,
    extra_body,
    response_format,
    text_bytes,
)
from services.judge.parse import JudgeReplyError, parse_reply
from services.judge.records import JudgeInputError, JudgeItem, Judgement
from services.judge.rules import ALLOWED_SCORES
from services.judge.votes import Vote, majority, vote_plan

log = logging.getLogger(__name__)

_FORMAT_FALLBACK = {"json_schema": "json_object", "json_object": "none", "guided_json": "json_object", "structured_outputs": "json_object"}
# What a 400 names when the endpoint refuses the structured-output mode.
_FORMAT_FIELD = {
    "json_schema": "response_format",
    "json_object": "response_format",
    "guided_json": "guided_json",
    "structured_outputs": "structured_outputs",
}

Progress = Callable[[int, int, Judgement], None]


class _Usage(TypedDict):
    """The usage fields of a Judgement, passed as keywords."""

    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    attempts: int


class _Answered(_Usage):
    """A paid answer's fields of a Judgement, passed as keywords."""

    judge_id: str
    cache_key: str


@dataclass(frozen=True)
class VLMConfig:
    model: str = "gpt-4o"
    base_url: str | None = None  # None: OpenAI; else any OpenAI-compatible endpoint (vLLM, Ollama, ...)
    key_file: str | None = None
    allow_no_key: bool = False  # self-hosted endpoints without auth
    timeout_s: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    seed: int = 0  # seeds the backoff jitter
    concurrency: int = 4
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    cost: CostModel = field(default_factory=CostModel)
    budget_usd: float | None = None  # cap over this judge's lifetime (or pass a shared ledger); a batch can add its own
    response_format: str = "json_schema"  # json_schema | json_object | none | guided_json | structured_outputs
    image_detail: str = "auto"
    temperature: float | None = 0.0
    max_tokens_param: str = "max_completion_tokens"  # older servers only know "max_tokens"
    charge_timeouts: bool = True  # a timed-out call may still be billed: count its estimate
    votes: int = 1  # self-consistency: ask each question this many times, keep the majority
    vote_temperature: float = 0.7  # the sampling temperature of every vote (votes > 1)
    vote_seed: int = 0  # vote i sends seed vote_seed + i

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise JudgeConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.timeout_s <= 0:
            raise JudgeConfigError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.response_format not in RESPONSE_FORMATS:
            raise JudgeConfigError(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, got {self.response_format!r}")
        if self.votes < 1:
            raise JudgeConfigError(f"votes must be >= 1, got {self.votes}")
        if self.vote_temperature < 0:
            raise JudgeConfigError(f"vote_temperature must be >= 0, got {self.vote_temperature}")
        if self.max_tokens_param not in ("max_completion_tokens", "max_tokens"):
            raise JudgeConfigError("max_tokens_param must be max_completion_tokens or max_tokens")


def question_key(model: str, item: JudgeItem, vote: Vote | None = None, extra: dict | None = None) -> str:
    """The cache key of asking `item` (one vote of it, with `vote`)."""
    fields = dict(vote.key_fields() if vote is not None else {}, **(extra or {}))
    return cache_key(
        model, INSTRUCTION_VERSION, item.prompt.task, item.prompt.text, frame_hashes(item.images), item.form, item.interval, fields or None
    )


@dataclass
class JudgeStats:
    http_calls: int = 0
    retries: int = 0
    cache_hits: int = 0
    reply_errors: int = 0
    budget_refusals: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    spent_usd: float = 0.0


class VLMJudge:
    """`ledger`: a lifetime cap shared with other judges (the judge service passes one per
    process, so a second model name cannot spend past it); without it the judge keeps its own
    from config.budget_usd. Giving both is refused rather than silently ignoring one."""

    def __init__(
        self,
        config: VLMConfig,
        store: ArtifactStore | None = None,
        *,
        client: openai.OpenAI | None = None,
        env: dict | None = None,
        sleep: Callable[[float], None] | None = None,
        ledger: BudgetLedger | None = None,
    ):
        if ledger is not None and config.budget_usd is not None:
            raise JudgeConfigError("give the judge a shared budget ledger or its own budget_usd, not both")
        self.config = config
        self._secret = resolve_api_key(config.key_file, env, required=not config.allow_no_key)
        self._log_filter = install_log_redaction(self._secret)
        self._client = client or make_client(config.base_url, self._secret, config.timeout_s)
        self.cache = JudgementCache(store) if store is not None else None
        self.ledger = ledger if ledger is not None else BudgetLedger(config.budget_usd)
        # The buckets always wait in real time (`sleep` only replaces the retry backoff's waits).
        self.rpm = TokenBucket(config.requests_per_minute)
        self.tpm = TokenBucket(config.tokens_per_minute)
        self._sem = threading.BoundedSemaphore(config.concurrency)
        self.retrier = Retrier(
            config.retry,
            config.seed,
            sleep,
            self._secret,
            on_retry=lambda: self._count(retries=1),
            endpoint=f"the judge endpoint {endpoint_name(config.base_url)} (model {config.model})",
        )
        self.stats = JudgeStats()
        self._lock = threading.Lock()
        self._format_mode = config.response_format

    @property
    def judge_id(self) -> str:
        return f"vlm:{self.config.model}:{INSTRUCTION_VERSION}"

    def __repr__(self) -> str:
        return f"VLMJudge(model={self.config.model!r}, base_url={self.config.base_url!r}, key=***)"

    @property
    def client(self) -> openai.OpenAI:
        """The endpoint's client (the Batch API path uses its files and batches resources)."""
        return self._client

    def close(self) -> None:
        remove_log_redaction(self._log_filter)
        self._client.close()

    def __enter__(self) -> "VLMJudge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- keys -------------------------------------------------------------------------------
    def key_for(self, item: JudgeItem, vote: Vote | None = None) -> str:
        """The cache key of one question (of one vote of it)."""
        return question_key(self.config.model, item, vote)

    def votes(self) -> list[Vote | None]:
        """The questions asked per item: [None] (one answer) or one Vote per vote."""
        cfg = self.config
        return [None] if cfg.votes == 1 else list(vote_plan(cfg.votes, cfg.vote_temperature, cfg.vote_seed))

    def aggregate_key(self, item: JudgeItem) -> str:
        """The key of an item's majority-vote record (votes > 1)."""
        cfg = self.config
        return question_key(
            cfg.model, item, extra={"votes": cfg.votes, "vote_temperature": float(cfg.vote_temperature), "vote_seed": cfg.vote_seed}
        )

    def build_request(self, item: JudgeItem, vote: Vote | None = None, mode: str | None = None):
        """(create() keyword arguments, estimated prompt tokens, completion tokens, usd) of one
        question. vLLM's structured-output fields travel in kwargs["extra_body"]."""
        cfg = self.config
        mode = mode or self._format_mode
        messages = build_messages(item.prompt.task, item.prompt.text, item.images, item.form, item.interval, cfg.image_detail)
        est_p, est_c, est_usd = cfg.cost.estimate(text_bytes(messages), len(item.images), len(messages))
        kwargs: dict = {"model": cfg.model, "messages": messages, cfg.max_tokens_param: est_c}
        temperature = vote.temperature if vote is not None else cfg.temperature
        if temperature is not None:
            kwargs["temperature"] = temperature
        if vote is not None:
            kwargs["seed"] = vote.seed
        rf = response_format(item.prompt.task, mode)
        if rf is not None:
            kwargs["response_format"] = rf
        extra = extra_body(item.prompt.task, mode)
        if extra is not None:
            kwargs["extra_body"] = extra
        return kwargs, est_p, est_c, est_usd

    # -- one question -----------------------------------------------------------------------
    def _count(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def _fail(self, item: JudgeItem, kind: str, message: str, **kw) -> Judgement:
        return Judgement(item.item_id, None, "", self.judge_id, error=redact(message, self._secret), error_kind=kind, **kw)

    def score(self, item: JudgeItem, ledgers: Sequence[BudgetLedger] | None = None, vote: Vote | None = None) -> Judgement:
        """Judge one item: one question (or, with `vote`, that one vote of it). A failure of this
        item is a Judgement whose error says why; only a JudgeAccountError (key, permission or
        quota refused: every item would fail) raises."""
        ledgers = list(ledgers) if ledgers is not None else [self.ledger]
        try:
            item.check_images()
        except JudgeInputError as exc:
            return self._fail(item, "input", str(exc))
        key = self.key_for(item, vote)
        hit = self.cached(item, vote, key)
        if hit is not None:
            self._count(cache_hits=1)
            return hit
        try:
            reply, usage, attempts, spent = self._ask(item, ledgers, vote)
        except BudgetExceeded as exc:
            self._count(budget_refusals=1)
            return self._fail(
                item, "budget", str(exc), cache_key=key, attempts=getattr(exc, "attempts", 0), cost_usd=getattr(exc, "spent", 0.0)
            )
        except JudgeUnavailable as exc:
            return self._fail(item, "unavailable", str(exc), attempts=exc.attempts, cache_key=key, cost_usd=getattr(exc, "spent", 0.0))
        except JudgeRequestError as exc:
            return self._fail(item, "request", str(exc), attempts=exc.attempts, cache_key=key, cost_usd=getattr(exc, "spent", 0.0))
        except MalformedReply as exc:  # the endpoint's fault, for this question only
            self._count(reply_errors=1)
            return self._fail(
                item,
                "reply",
                f"malformed reply: {exc}",
                attempts=getattr(exc, "attempts", 0),
                cache_key=key,
                cost_usd=getattr(exc, "spent", 0.0),
            )
        return self.record_answer(item, vote, reply, usage, spent, attempts)

    def record_answer(
        self, item: JudgeItem, vote: Vote | None, reply: str | None, usage: tuple[int, int], spent: float, attempts: int = 1, **record_extra
    ) -> Judgement:
        """Parse a paid reply strictly, cache it (judgements/<key>.json) and return the judgement.
        Shared by the synchronous path and the Batch API path (record_extra: e.g. batch_id)."""
        key = self.key_for(item, vote)
        record_key = self.cache.record_key(key) if self.cache else ""
        p_tok, c_tok = usage
        base = _Answered(
            judge_id=self.judge_id, prompt_tokens=p_tok, completion_tokens=c_tok, cost_usd=spent, attempts=attempts, cache_key=key
        )
        record = {
            "key": key,
            "judge_id": self.judge_id,
            "model": self.config.model,
            "instruction_version": INSTRUCTION_VERSION,
            "task": item.prompt.task,
            "prompt_id": item.prompt.prompt_id,
            "prompt_text": item.prompt.text,
            "labels": item.prompt.labels.to_dict(),
            "form": item.form,
            "interval": item.interval,
            "frame_hashes": frame_hashes(item.images),
            "prompt_tokens": p_tok,
            "completion_tokens": c_tok,
            "cost_usd": spent,
            "reply": redact(reply or "", self._secret)[:4000],
            "created_unix": time.time(),
            **({"vote": vote.key_fields()} if vote is not None else {}),
            **record_extra,
        }
        try:
            score, rationale = parse_reply(reply, item.prompt.task)
        except JudgeReplyError as exc:
            self._count(reply_errors=1)
            record.update(score=None, rationale="", error=str(exc))
            self._save(key, record)  # kept for audit; a record without a score is re-asked next time
            return Judgement(
                item.item_id,
                None,
                "",
                error=redact(f"unreadable reply: {exc}", self._secret),
                error_kind="reply",
                record_key=record_key,
                extra={"reply": record["reply"][:500]},
                **base,
            )
        record.update(score=score, rationale=rationale, error="")
        self._save(key, record)
        return Judgement(item.item_id, score, rationale, record_key=record_key, **base)

    def cached(self, item: JudgeItem, vote: Vote | None = None, key: str | None = None) -> Judgement | None:
        """The cached answer to this question as a cache-hit Judgement, or None."""
        if self.cache is None:
            return None
        key = key or self.key_for(item, vote)
        rec = self.cache.get(key)
        if rec is None:
            return None
        return Judgement(
            item.item_id,
            int(rec["score"]),
            rec.get("rationale", ""),
            self.judge_id,
            cache_hit=True,
            cache_key=key,
            record_key=self.cache.record_key(key),
            extra={"original_cost_usd": rec.get("cost_usd", 0.0)},
        )

    def aggregate(self, item: JudgeItem, votes: Sequence[Judgement]) -> Judgement:
        """One item's judgement from its votes (in vote order): the majority score, its agreement
        and entropy, every vote's score; recorded under `aggregate_key` (the votes stay their own
        records). No vote with a score: the first failed vote's error."""
        res = majority([v.score if v.ok else None for v in votes], ALLOWED_SCORES[item.prompt.task])
        totals = _Usage(
            prompt_tokens=sum(v.prompt_tokens for v in votes),
            completion_tokens=sum(v.completion_tokens for v in votes),
            cost_usd=sum(v.cost_usd for v in votes),
            attempts=sum(v.attempts for v in votes),
        )
        extra = {**res.to_dict(), "vote_keys": [v.cache_key for v in votes], "vote_errors": [v.error_kind for v in votes if not v.ok]}
        del extra["score"]
        if res.score is None:
            first = next(v for v in votes if not v.ok)
            return replace(first, item_id=item.item_id, extra=extra, **totals)
        key = self.aggregate_key(item)
        rationale = next(v.rationale for v in votes if v.ok and v.score == res.score)
        record_key = ""
        if self.cache is not None:
            record_key = self.cache.record_key(key)
            self._save(
                key,
                {
                    "key": key,
                    "judge_id": self.judge_id,
                    "model": self.config.model,
                    "task": item.prompt.task,
                    "prompt_id": item.prompt.prompt_id,
                    "prompt_text": item.prompt.text,
                    "form": item.form,
                    "interval": item.interval,
                    "score": res.score,
                    "rationale": rationale,
                    "aggregate": "majority",
                    **extra,
                    "created_unix": time.time(),
                },
            )
        return Judgement(
            item.item_id,
            res.score,
            rationale,
            self.judge_id,
            cache_hit=all(v.cache_hit for v in votes),
            cache_key=key,
            record_key=record_key,
            extra=extra,
            **totals,
        )

    def score_votes(self, item: JudgeItem, ledgers: Sequence[BudgetLedger] | None = None) -> Judgement:
        """Judge one item with every configured vote (one by one); see `aggregate`."""
        plan = self.votes()
        if plan == [None]:
            return self.score(item, ledgers)
        return self.aggregate(item, [self.score(item, ledgers, v) for v in plan])

    def _save(self, key: str, record: dict) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(key, record)
        except StoreError as exc:  # the answer is still good; only the reuse is lost
            log.warning("could not cache judgement %s: %s", key, exc)

    def _reserve(self, ledgers: Sequence[BudgetLedger], usd: float) -> list[tuple[BudgetLedger, Reservation]]:
        held = []
        try:
            for led in ledgers:
                held.append((led, led.reserve(usd)))
        except BudgetExceeded:
            for led, res in held:
                led.release(res)
            raise
        return held

    def _ask(self, item: JudgeItem, ledgers: Sequence[BudgetLedger], vote: Vote | None = None):
        """(reply text, (prompt tokens, completion tokens), HTTP calls made, usd spent) or raises;
        raised errors carry .attempts and .spent."""
        cfg = self.config
        spent = 0.0
        made = 0  # HTTP calls for this item, over retries and format fallbacks
        while True:
            mode = self._format_mode
            kwargs, est_p, est_c, est_usd = self.build_request(item, vote, mode)

            def attempt(n: int):
                nonlocal spent, made
                held = self._reserve(ledgers, est_usd)
                charged = 0.0  # what the call cost, as far as we can tell; set before any raise
                try:
                    self.rpm.acquire(1)
                    self.tpm.acquire(est_p + est_c)
                    with self._sem:
                        self._count(http_calls=1)
                        made += 1
                        try:
                            resp = create_completion(self._client, **kwargs)
                        except openai.APITimeoutError:
                            # We stopped waiting; the provider may still have run (and billed) it.
                            charged = est_usd if cfg.charge_timeouts else 0.0
                            raise
                    tokens = reply_usage(resp)  # what the provider billed, even for an unusable reply
                    if tokens is not None:
                        charged = cfg.cost.cost(*tokens)
                    # Not a chat completion (an HTML error page, cut-off or other JSON):
                    # MalformedReply, charged only what a usage block said (else nothing).
                    content = reply_text(resp)
                    if tokens is None:  # a real answer without usage: assume the bound was spent
                        tokens, charged = (est_p, est_c), est_usd
                    self.tpm.give_back(est_p + est_c - sum(tokens))
                    self._count(prompt_tokens=tokens[0], completion_tokens=tokens[1])
                    return content, tokens
                finally:
                    # Whatever happened (an error of any type included), the reservation ends
                    # here: one left open would count against the cap until the process ends.
                    for led, res in held:
                        led.settle(res, charged)
                    spent += charged
                    self._count(spent_usd=charged)

            try:
                (content, usage), _ = self.retrier.run(attempt)
            except (BudgetExceeded, JudgeUnavailable, JudgeRequestError, MalformedReply) as exc:
                exc.attempts, exc.spent = made, spent  # type: ignore[union-attr]
                if not isinstance(exc, JudgeRequestError):
                    raise
                fallback = _FORMAT_FALLBACK.get(mode)
                if exc.status == 400 and fallback and _FORMAT_FIELD[mode] in str(exc):
                    # The endpoint does not support this structured-output mode: step down once
                    # for the whole judge and ask again; the strict parser still guards the score.
                    log.warning("endpoint refused response_format=%s; falling back to %s", mode, fallback)
                    with self._lock:
                        if self._format_mode == mode:
                            self._format_mode = fallback
                    continue
                raise
            return content, usage, made, spent

    # -- batches ----------------------------------------------------------------------------
    def score_batch(
        self, items: Iterable[JudgeItem], progress: Progress | None = None, budget_usd: float | None = None
    ) -> Iterator[Judgement]:
        """Judge many items concurrently; yields one Judgement per item, in input order.

        budget_usd caps this batch's new spend (on top of the judge's lifetime cap). Items that
        ask the same question (same cache key) are asked once; the others get a copy marked as a
        cache hit with no cost. Closing the iterator early cancels the items not yet started.
        With config.votes > 1 every vote of every item is its own concurrent question, and each
        item yields its majority judgement (`aggregate`).

        A JudgeAccountError (key, permission or quota refused) from any item raises from here as
        soon as it happens, and the items not yet sent are never sent."""
        items = list(items)
        ledgers = [self.ledger] + ([BudgetLedger(budget_usd)] if budget_usd is not None else [])
        pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="vlm-judge")
        abort = _FirstError()
        votes = self.votes()
        plan: list[tuple[bool, list[Future]]] = []
        first: dict[str, list[Future]] = {}
        try:
            for it in items:
                try:
                    key = self.key_for(it)
                except Exception:  # bad images: score() reports it as an input error
                    key = None
                if key is not None and key in first:
                    plan.append((True, first[key]))
                    continue
                futs = [pool.submit(self._score_unless_aborted, it, ledgers, abort, v) for v in votes]
                if key is not None:
                    first[key] = futs
                plan.append((False, futs))
            for i, ((dup, futs), it) in enumerate(zip(plan, items), 1):
                for fut in futs:
                    wait([fut, abort.future], return_when=FIRST_COMPLETED)
                    abort.raise_if_set()
                results = [f.result() for f in futs]
                answers = [a for a in results if a is not None]
                if len(answers) < len(results):  # a vote is skipped only after an account error, raised above
                    raise RuntimeError("a vote was skipped without an account error")
                j = answers[0] if votes == [None] else self.aggregate(it, answers)
                if dup:
                    j = replace(
                        j,
                        item_id=it.item_id,
                        cache_hit=j.ok,
                        cost_usd=0.0,
                        prompt_tokens=0,
                        completion_tokens=0,
                        attempts=0,
                        extra=dict(j.extra, duplicate_of=j.item_id),
                    )
                if progress is not None:
                    progress(i, len(items), j)
                yield j
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _score_unless_aborted(
        self, item: JudgeItem, ledgers: Sequence[BudgetLedger], abort: "_FirstError", vote: Vote | None = None
    ) -> Judgement | None:
        if abort.is_set():  # the account was refused for an earlier item: don't ask again
            return None
        try:
            return self.score(item, ledgers, vote)
        except JudgeAccountError as exc:
            abort.set(exc)
            raise


class _FirstError:
    """The first JudgeAccountError of a batch, as a Future the batch's reader can wait on next to
    the item it is waiting for (so a refusal is not held up behind a slow first item)."""

    def __init__(self):
        self.future: Future = Future()
        self._lock = threading.Lock()

    def set(self, exc: BaseException) -> None:
        with self._lock:
            if not self.future.done():
                self.future.set_exception(exc)

    def is_set(self) -> bool:
        return self.future.done()

    def raise_if_set(self) -> None:
        if self.future.done():
            self.future.result()  # raises the error
