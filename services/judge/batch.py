"""The VLM judge through OpenAI's Batch API: the same questions, the same strict parser and the
same cache as the synchronous path, at the batch price (half the synchronous one, by default).

    run = BatchJudge(judge).run(items)      # judge: a VLMJudge with a store
    run.judgements                          # one per item, in input order
    print(run.format())

What happens:
1. Each item's questions (one, or one per vote) that are not cached are collected; the custom_id
   of a line is the question's cache key.
2. Submissions already recorded in the store (judge-batches/<key>.json) that carry any of these
   questions are picked up: a process killed mid-wait resumes the same batches instead of paying
   again. Only questions no recorded batch is working on are submitted.
3. A submission is recorded BEFORE anything is uploaded, again with the input file id, again with
   the batch id. A crash between creating a batch and recording its id is covered: before
   creating, the account's batches are listed (newest first, back to the submission's time) and
   one whose metadata names the submission is adopted rather than created twice.
4. Batches are polled (GET /v1/batches/{id}) with exponential backoff. When one ends, its output
   and error files are read line by line: a 200 line goes through the strict parser and into the
   judgement cache (judgements/<key>.json, as the synchronous path writes it, plus batch_id and
   price "batch"), costed from the line's usage x price_factor. Each line's outcome is recorded.
5. Lines that failed with a retryable status (429, 5xx, 408, 409, or a failed/cancelled batch) are
   resubmitted in a new batch, at most max_retry_rounds times each; lines an expired batch never
   ran are resubmitted at most max_expired_resubmits times. 4xx lines are final ('request'), an
   unreadable reply is final ('reply', kept for audit: the sync path does not re-ask it either).

Budget: each line reserves its estimate x price_factor on the judge's ledger (and on budget_usd's,
if given) before it is submitted; a line that does not fit is not submitted ('budget'). Lines of a
batch submitted by an earlier process are charged when collected.

Not handled: two processes judging the same questions at the same moment may both submit them.
max_wait_s bounds one run's waiting; batches still running then are left recorded, their items get
error_kind 'pending', and the next run resumes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Final, Iterable, Literal, Sequence, TypeGuard

from atom.store import ArtifactNotFound, StoreError
from services.judge.budget import BudgetExceeded, BudgetLedger, Reservation
from services.judge.client import JudgeConfigError, MalformedReply
from services.judge.records import JudgeInputError, JudgeItem, Judgement
from services.judge.vlm import VLMJudge
from services.judge.votes import Vote

log = logging.getLogger(__name__)

PREFIX = "judge-batches"
ENDPOINT: Final = "/v1/chat/completions"
ACTIVE = ("preparing", "uploaded", "validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("completed", "expired", "failed", "cancelled")


@dataclass(frozen=True)
class BatchConfig:
    prefix: str = PREFIX  # where submission records live in the store
    price_factor: float = 0.5  # batch price / synchronous price
    poll_initial_s: float = 10.0
    poll_max_s: float = 600.0
    poll_factor: float = 2.0
    max_retry_rounds: int = 2  # new batches for a line that failed (429, 5xx, failed batch)
    max_expired_resubmits: int = 3  # new batches for a line an expired batch never ran
    max_lines_per_batch: int = 50_000  # the Batch API's limit
    max_bytes_per_batch: int = 190 * 2**20  # the limit is 200 MB
    max_wait_s: float | None = None  # None: wait until every batch ends
    completion_window: Literal["24h"] = "24h"  # the only window the Batch API offers

    def __post_init__(self) -> None:
        if not 0 < self.price_factor <= 1:
            raise JudgeConfigError(f"price_factor must be within (0, 1], got {self.price_factor}")
        if self.poll_initial_s < 0 or self.poll_max_s < self.poll_initial_s or self.poll_factor < 1:
            raise JudgeConfigError("poll settings: 0 <= poll_initial_s <= poll_max_s, poll_factor >= 1")
        if self.max_retry_rounds < 0 or self.max_expired_resubmits < 0 or self.max_lines_per_batch < 1:
            raise JudgeConfigError("max_retry_rounds and max_expired_resubmits >= 0, max_lines_per_batch >= 1")


@dataclass
class Submission:
    """One batch job as recorded in the store: judge-batches/<key>.json."""

    key: str
    model: str
    custom_ids: list[str]
    reason: str  # new | retry | expired
    created_unix: float
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str = "preparing"  # preparing | uploaded | the batch's status | abandoned
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list = field(default_factory=list)  # a failed batch's validation errors
    # custom_id -> ok | reply | retry:<why> | expired | final:<kind>:<why>
    outcome: dict[str, str] = field(default_factory=dict)
    cost_usd: float = 0.0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Submission":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Question:
    custom_id: str  # the question's cache key
    item: JudgeItem
    vote: Vote | None
    body: dict  # the chat request, extra_body merged in
    est_usd: float  # the synchronous-price estimate

    def line(self) -> bytes:
        return (
            json.dumps({"custom_id": self.custom_id, "method": "POST", "url": ENDPOINT, "body": self.body}, separators=(",", ":")).encode()
            + b"\n"
        )


@dataclass
class BatchRun:
    judgements: list[Judgement]
    created: list[str] = field(default_factory=list)  # batch ids this run created
    resumed: list[str] = field(default_factory=list)  # batch ids recorded by an earlier run
    lines_ok: int = 0
    lines_failed: int = 0  # failed lines, each retried or final
    lines_expired: int = 0
    cached: int = 0  # questions answered from the cache before anything was submitted
    cost_usd: float = 0.0
    pending: int = 0  # questions still in running batches when max_wait_s passed

    def format(self) -> str:
        ok = sum(j.ok for j in self.judgements)
        return "\n".join(
            [
                f"Batch API judging: {len(self.judgements)} items, {ok} scored, {len(self.judgements) - ok} without a score",
                f"  batches         {len(self.created)} created, {len(self.resumed)} resumed from an earlier run",
                f"  lines           {self.lines_ok} answered, {self.lines_failed} failed, {self.lines_expired} expired; "
                f"{self.cached} questions were cached",
                f"  cost            ${self.cost_usd:.6f} (batch price)" + (f"; {self.pending} still pending" if self.pending else ""),
            ]
        )


def reply_of(body) -> tuple[str | None, tuple[int, int] | None]:
    """(message text, (prompt tokens, completion tokens) or None) of a batch line's response body."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise MalformedReply(f"the line's body is not a chat completion: {str(body)[:200]!r}")
    usage = body.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")

    def count(v: object) -> TypeGuard[int]:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    tokens = (p, c if count(c) else 0) if count(p) else None
    if not body["choices"]:
        return None, tokens
    message = body["choices"][0].get("message") if isinstance(body["choices"][0], dict) else None
    if not isinstance(message, dict):
        raise MalformedReply(f"the line's first choice has no message: {str(body['choices'][0])[:100]!r}")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedReply(f"the line's message content is not text: {str(content)[:100]!r}")
    return content, tokens


def is_retryable_status(status: int | None) -> bool:
    return status is None or status in (408, 409, 429) or status >= 500


class BatchJudge:
    """Judges through the Batch API with `judge`'s model, endpoint, key, cache and ledger."""

    def __init__(
        self,
        judge: VLMJudge,
        config: BatchConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if judge.cache is None:
            raise JudgeConfigError("the Batch API path needs a judge with a store: batch state and answers live there")
        self.judge = judge
        self.config = config or BatchConfig()
        self.store = judge.cache.store
        self._sleep, self._clock = sleep, clock

    # -- the store's records ----------------------------------------------------------------
    def record_key(self, key: str) -> str:
        return f"{self.config.prefix}/{key}.json"

    def _save(self, sub: Submission) -> None:
        self.store.put_json(self.record_key(sub.key), sub.to_dict())

    def submissions(self) -> list[Submission]:
        """Every recorded submission of this judge's model, oldest first."""
        out = []
        for key in self.store.list(self.config.prefix + "/"):
            if not key.endswith(".json"):
                continue
            try:
                sub = Submission.from_dict(self.store.get_json(key))
            except (ArtifactNotFound, StoreError, TypeError) as exc:
                log.warning("ignoring unreadable batch record %s: %s", key, exc)
                continue
            if sub.model == self.judge.config.model:
                out.append(sub)
        return sorted(out, key=lambda s: s.created_unix)

    # -- the run ----------------------------------------------------------------------------
    def run(self, items: Iterable[JudgeItem], budget_usd: float | None = None) -> BatchRun:
        judge, cfg = self.judge, self.config
        items = list(items)
        self._ledgers = [judge.ledger] + ([BudgetLedger(budget_usd)] if budget_usd is not None else [])
        self._held: dict[str, list[tuple[BudgetLedger, Reservation]]] = {}
        run = BatchRun([])
        self._run = run
        votes = judge.votes()
        plan: list[tuple[JudgeItem, list[str] | Judgement]] = []
        questions: dict[str, Question] = {}
        answers: dict[str, Judgement] = {}
        for it in items:
            try:
                it.check_images()
            except JudgeInputError as exc:
                plan.append((it, judge._fail(it, "input", str(exc))))
                continue
            cids = []
            for v in votes:
                cid = judge.key_for(it, v)
                cids.append(cid)
                if cid in answers or cid in questions:
                    continue
                hit = judge.cached(it, v, cid)
                if hit is not None:
                    answers[cid] = hit
                    run.cached += 1
                    continue
                kwargs, _p, _c, est = judge.build_request(it, v)
                body = {k: val for k, val in kwargs.items() if k != "extra_body"}
                body.update(kwargs.get("extra_body") or {})
                questions[cid] = Question(cid, it, v, body, est)
            plan.append((it, cids))

        mine = [s for s in self.submissions() if not set(s.custom_ids).isdisjoint(questions)]
        tries: Counter[str] = Counter()
        expiries: Counter[str] = Counter()
        for s in mine:
            self._count_outcomes(s, questions, tries, expiries)
            if s.batch_id and s.batch_id not in run.resumed:
                run.resumed.append(s.batch_id)

        delay = cfg.poll_initial_s
        started = self._clock()
        while True:
            for s in [s for s in mine if s.active]:
                self._advance(s, questions)
            for s in mine:
                if s.status in TERMINAL:
                    self._collect(s, questions, answers, tries, expiries)
            busy = {cid for s in mine if s.active for cid in s.custom_ids}
            todo = [cid for cid in questions if cid not in answers and cid not in busy]
            todo = self._give_up(todo, questions, answers, tries, expiries)
            new = self._submit_all([questions[c] for c in todo], tries, expiries, answers)
            if new:  # look at them right away (an adopted batch may have ended already)
                mine += new
                delay = cfg.poll_initial_s
                continue
            if not any(s.active for s in mine):
                break
            if cfg.max_wait_s is not None and self._clock() - started >= cfg.max_wait_s:
                break
            self._sleep(delay)
            delay = min(cfg.poll_max_s, max(delay, 1e-3) * cfg.poll_factor)

        for cid in questions:
            if cid not in answers:  # still in a running batch
                run.pending += 1
                q = questions[cid]
                answers[cid] = judge._fail(
                    q.item,
                    "pending",
                    "the batch holding this question is still running; run again to collect it (judge-batches/ in the store)",
                    cache_key=cid,
                )
        self._release_unused()
        run.judgements = self._assemble(plan, answers, votes)
        return run

    # -- steps --------------------------------------------------------------------------------
    @staticmethod
    def _count_outcomes(s: Submission, questions, tries: Counter, expiries: Counter) -> None:
        for cid, o in s.outcome.items():
            if cid in questions:
                if o.startswith("retry:"):
                    tries[cid] += 1
                elif o == "expired":
                    expiries[cid] += 1

    def _advance(self, s: Submission, questions: dict[str, Question]) -> None:
        """Bring an active submission forward: finish its launch, or poll its batch."""
        if s.status == "preparing":  # killed before the upload finished
            if not set(s.custom_ids) <= set(questions):
                s.status = "abandoned"  # its lines cannot be rebuilt here; whoever asks them submits anew
                self._save(s)
                return
            self._upload(s, [questions[c] for c in s.custom_ids])
        if s.status == "uploaded":  # killed after the upload: adopt the batch if it was created
            self._create(s, check_first=True)
            return
        batch_id = s.batch_id
        if batch_id is None:  # past "uploaded" a submission has its batch (_take records both)
            raise RuntimeError(f"submission {s.key}: status {s.status!r} but no batch id")
        b, _ = self.judge.retrier.run(lambda n: self.judge.client.batches.retrieve(batch_id))
        if b.status != s.status:
            log.info("batch %s: %s -> %s", s.batch_id, s.status, b.status)
        self._take(s, b)

    def _take(self, s: Submission, b) -> None:
        """Record what the API says about the submission's batch."""
        s.batch_id, s.status = b.id, b.status
        s.output_file_id, s.error_file_id = b.output_file_id, b.error_file_id
        if b.status == "failed" and b.errors is not None:
            s.errors = [e.model_dump() if hasattr(e, "model_dump") else e for e in (b.errors.data or [])]
        self._save(s)

    def _give_up(self, todo, questions, answers, tries, expiries) -> list[str]:
        """Questions that ran out of resubmissions get their final failure; the rest go on."""
        cfg, keep = self.config, []
        for cid in todo:
            q = questions[cid]
            if tries[cid] > cfg.max_retry_rounds:
                answers[cid] = self.judge._fail(
                    q.item,
                    "unavailable",
                    f"the Batch API line failed {tries[cid]} times (retry rounds {cfg.max_retry_rounds})",
                    cache_key=cid,
                )
            elif expiries[cid] > cfg.max_expired_resubmits:
                answers[cid] = self.judge._fail(
                    q.item, "unavailable", f"{expiries[cid]} batches expired before running this question", cache_key=cid
                )
            else:
                keep.append(cid)
        return keep

    def _reserve(self, q: Question) -> bool:
        held = []
        try:
            for led in self._ledgers:
                held.append((led, led.reserve(q.est_usd * self.config.price_factor)))
        except BudgetExceeded:
            for led, res in held:
                led.release(res)
            return False
        self._held[q.custom_id] = held
        return True

    def _settle(self, cid: str, usd: float) -> None:
        held = self._held.pop(cid, None)
        if held is None:  # submitted by an earlier process: billed all the same
            if usd > 0:
                for led in self._ledgers:
                    led.charge(usd)
            return
        for led, res in held:
            led.settle(res, usd)

    def _release_unused(self) -> None:
        for cid in list(self._held):
            for led, res in self._held.pop(cid):
                led.release(res)

    def _submit_all(self, qs: Sequence[Question], tries, expiries, answers) -> list[Submission]:
        """New submissions for `qs`, grouped by why they are sent, split by the API's limits."""
        cfg, out = self.config, []
        groups: dict[str, list[Question]] = {}
        for q in qs:
            if not self._reserve(q):
                self.judge._count(budget_refusals=1)
                answers[q.custom_id] = self.judge._fail(
                    q.item,
                    "budget",
                    f"budget cap reached: this line could cost up to ${q.est_usd * cfg.price_factor:.4f} at the batch price",
                    cache_key=q.custom_id,
                )
                continue
            reason = "retry" if tries[q.custom_id] else "expired" if expiries[q.custom_id] else "new"
            groups.setdefault(reason, []).append(q)
        for reason, group in groups.items():
            chunk: list[Question] = []
            size = 0
            for q in group:
                n = len(q.line())
                if chunk and (len(chunk) >= cfg.max_lines_per_batch or size + n > cfg.max_bytes_per_batch):
                    out.append(self._launch(chunk, reason))
                    chunk, size = [], 0
                chunk.append(q)
                size += n
            if chunk:
                out.append(self._launch(chunk, reason))
        return out

    def _launch(self, qs: Sequence[Question], reason: str) -> Submission:
        cids = [q.custom_id for q in qs]
        now = time.time()
        digest = hashlib.sha256(json.dumps([self.judge.config.model, reason, sorted(cids)]).encode()).hexdigest()
        sub = Submission(f"{int(now * 1000):014d}-{digest[:24]}", self.judge.config.model, cids, reason, now)
        self._save(sub)  # first: whatever happens next, the next run knows these lines were sent
        self._upload(sub, qs)
        self._create(sub, check_first=False)
        return sub

    def _upload(self, sub: Submission, qs: Sequence[Question]) -> None:
        data = b"".join(q.line() for q in qs)
        name = f"atom-judge-{sub.key}.jsonl"
        f, _ = self.judge.retrier.run(lambda n: self.judge.client.files.create(file=(name, data, "application/jsonl"), purpose="batch"))
        sub.input_file_id, sub.status = f.id, "uploaded"
        self._save(sub)

    def _find(self, sub: Submission):
        """The batch already made for this submission (its metadata names it), or None."""
        for b in self.judge.client.batches.list(limit=100):
            if (b.metadata or {}).get("atom_submission") == sub.key or b.input_file_id == sub.input_file_id:
                return b
            if b.created_at < sub.created_unix - 3600:  # newest first: older ones cannot be ours
                return None
        return None

    def _create(self, sub: Submission, check_first: bool) -> None:
        input_file_id = sub.input_file_id
        if input_file_id is None:  # only an uploaded submission is created (_upload sets it)
            raise RuntimeError(f"submission {sub.key}: no input file to create its batch from")

        def attempt(n: int):
            # A retried create (or a resumed one) first looks for the batch an earlier try made:
            # the create may have succeeded with its reply lost.
            found = self._find(sub) if (check_first or n > 1) else None
            if found is not None:
                log.info("adopting batch %s made for submission %s", found.id, sub.key)
                return found, True
            return self.judge.client.batches.create(
                input_file_id=input_file_id,
                endpoint=ENDPOINT,
                completion_window=self.config.completion_window,
                metadata={"atom_submission": sub.key},
            ), False

        (b, adopted), _ = self.judge.retrier.run(attempt)
        self._take(sub, b)
        (self._run.resumed if adopted else self._run.created).append(b.id)

    def _lines(self, file_id: str | None) -> dict[str, dict]:
        if not file_id:
            return {}
        resp, _ = self.judge.retrier.run(lambda n: self.judge.client.files.content(file_id))
        out = {}
        for n, text in enumerate(resp.content.decode("utf-8", "replace").splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                out[str(line["custom_id"])] = line
            except (ValueError, KeyError, TypeError):
                log.warning("batch file %s line %d is not a batch result line; ignored", file_id, n)
        return out

    def _collect(self, s: Submission, questions, answers, tries, expiries) -> None:
        """Read an ended batch's lines for the questions of this run that are still open."""
        judge, cfg, run = self.judge, self.config, self._run
        # Lines without an outcome yet, and answered lines whose cache record is missing (read
        # again). A failed or unreadable line of an earlier run is not read again: it is resubmitted.
        mine = [c for c in s.custom_ids if c in questions and c not in answers and (c not in s.outcome or s.outcome[c] == "ok")]
        if not mine:
            return
        lines = {**self._lines(s.error_file_id), **self._lines(s.output_file_id)}
        why_failed = "; ".join(str(e.get("message", e)) for e in s.errors)[:300] if s.errors else ""
        for cid in mine:
            q, line = questions[cid], lines.get(cid)
            response = (line or {}).get("response") or {}
            error = (line or {}).get("error") or {}
            status = response.get("status_code")
            if line is not None and status == 200:
                run.lines_ok += 1
                try:
                    content, tokens = reply_of(response.get("body"))
                except MalformedReply as exc:
                    answers[cid] = judge._fail(q.item, "reply", f"malformed batch line: {exc}", cache_key=cid)
                    s.outcome[cid] = "reply"
                    judge._count(reply_errors=1)
                    self._settle(cid, 0.0)
                    continue
                if tokens is None:  # an answer without usage: assume the bound was spent
                    _kwargs, p, c, _usd = judge.build_request(q.item, q.vote)
                    tokens = (p, c)
                usd = judge.config.cost.cost(*tokens) * cfg.price_factor
                j = judge.record_answer(
                    q.item, q.vote, content, tokens, usd, attempts=1, batch_id=s.batch_id, price="batch", price_factor=cfg.price_factor
                )
                judge._count(prompt_tokens=tokens[0], completion_tokens=tokens[1], spent_usd=usd)
                self._settle(cid, usd)
                s.cost_usd += usd
                run.cost_usd += usd
                answers[cid] = j
                s.outcome[cid] = "ok" if j.ok else "reply"
                continue
            self._settle(cid, 0.0)
            if error.get("code") == "batch_expired" or (line is None and s.status in ("expired", "cancelled")):
                run.lines_expired += 1
                expiries[cid] += 1
                s.outcome[cid] = "expired"
                continue
            run.lines_failed += 1
            message = ((response.get("body") or {}).get("error") or {}).get("message") if isinstance(response.get("body"), dict) else None
            message = str(message or error.get("message") or why_failed or f"no result line (batch {s.status})")[:300]
            if line is not None and not is_retryable_status(status):
                answers[cid] = judge._fail(q.item, "request", f"Batch API line refused (HTTP {status}): {message}", cache_key=cid)
                s.outcome[cid] = f"final:request:{status}"
            else:
                tries[cid] += 1
                s.outcome[cid] = f"retry:{status or s.status}: {message}"
        self._save(s)

    def _assemble(self, plan, answers: dict[str, Judgement], votes) -> list[Judgement]:
        out: list[Judgement] = []
        owner: dict[str, str] = {}
        for it, cids in plan:
            if isinstance(cids, Judgement):
                out.append(cids)
                continue
            js = []
            for cid in cids:
                j = replace(answers[cid], item_id=it.item_id)
                if cid in owner:  # the same question in another item: asked once, a free copy here
                    j = replace(
                        j,
                        cache_hit=j.ok,
                        cost_usd=0.0,
                        prompt_tokens=0,
                        completion_tokens=0,
                        attempts=0,
                        extra=dict(j.extra, duplicate_of=owner[cid]),
                    )
                else:
                    owner[cid] = it.item_id
                js.append(j)
            out.append(js[0] if votes == [None] else self.judge.aggregate(it, js))
        return out
