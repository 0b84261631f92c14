"""The judge's gRPC servicer: ComposePrompts and Score (streamed), kinematic or VLM per request.

VLM settings come from the environment so a deployment configures them once:
ATOM_JUDGE_BASE_URL (any OpenAI-compatible endpoint; empty = OpenAI), ATOM_JUDGE_MODEL,
ATOM_JUDGE_API_KEY / OPENAI_API_KEY / ATOM_JUDGE_API_KEY_FILE, ATOM_JUDGE_BUDGET_USD (lifetime
cap of this process), ATOM_JUDGE_CONCURRENCY, ATOM_JUDGE_USD_PER_1K_INPUT / _OUTPUT,
ATOM_JUDGE_ALLOW_NO_KEY (1: an endpoint without auth, e.g. vLLM), ATOM_JUDGE_RESPONSE_FORMAT
(json_schema | json_object | none | guided_json | structured_outputs), ATOM_JUDGE_VOTES and
ATOM_JUDGE_VOTE_TEMPERATURE (self-consistency; services/judge/votes.py).

The budget cap is per process: one ledger, in memory, shared by the judges of every model name this
server creates, counting from the process start. It is NOT shared across replicas: each replica
(each `atomctl serve judge`, each pod) holds its own cap, so N replicas can together spend N times
ATOM_JUDGE_BUDGET_USD, and a restart starts again from zero. A request's judge.budget_usd adds a
per-batch cap on top.

A refused key, permission or quota at the endpoint fails the whole call (UNAUTHENTICATED,
PERMISSION_DENIED, RESOURCE_EXHAUSTED), with a message naming what to set; see
services/judge/client.py.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from atom.settings import RenderSettings
from atom.motion.events import TASKS, EventLabel, LabelGroup, check_task
from atom.motion.record import MotionFormatError, MotionRecord
from atom.runtime import telemetry
from atom.runtime.errors import InvalidArgument, require, require_key
from atom.runtime.server import ServiceSpec, store_problem
from atom.store import open_store, sha256_hex
from atom.v1 import common_pb2, judge_pb2, judge_pb2_grpc
from services.judge.compose import compose_prompts
from services.judge.instructions import RESPONSE_FORMATS
from services.judge.kinematic import KinematicJudge
from services.judge.records import JudgeItem, Judgement, PromptRecord

if TYPE_CHECKING:
    from services.judge.vlm import VLMConfig, VLMJudge

log = logging.getLogger("atom.judge")
MAX_ITEMS = 10_000  # questions per Score call
MAX_IMAGES = 64  # renders per question (frame_by_frame at interval 8 of a 10 s motion is 25)
MAX_VOTES = 15
MAX_CALIBRATION_CASES = 2000
MAX_SETTINGS = 16  # (form, interval) settings per Calibrate call

JUDGE_CALLS = telemetry.counter("atom_judge_calls_total", "Judgements made (cache hits excluded)", ("judge",))
JUDGE_CACHE_HITS = telemetry.counter("atom_judge_cache_hits_total", "Judgements answered from the cache", ("judge",))
JUDGE_COST = telemetry.counter("atom_judge_cost_usd_total", "Judge spend in USD", ("judge",))
JUDGE_TOKENS = telemetry.counter("atom_judge_tokens_total", "Judge tokens", ("judge", "kind"))
JUDGE_ERRORS = telemetry.counter("atom_judge_errors_total", "Items with no score, by error kind", ("judge", "kind"))


def _budget_cap_usd() -> float:
    try:
        return float(os.environ.get("ATOM_JUDGE_BUDGET_USD") or "nan")
    except ValueError:
        return float("nan")


# The process's lifetime cap (ATOM_JUDGE_BUDGET_USD; NaN when uncapped), read at scrape time. With
# atom_judge_cost_usd_total, which also counts from the process start, it gives the share of the
# cap spent per replica (the AtomJudgeBudgetNearCap alert).
JUDGE_BUDGET_CAP = telemetry.gauge(
    "atom_judge_budget_cap_usd", "Lifetime judge budget cap of this process in USD (ATOM_JUDGE_BUDGET_USD; NaN when uncapped)"
)
JUDGE_BUDGET_CAP.set_function(_budget_cap_usd)
_RENDER = RenderSettings()  # the defaults of a request's unset form and interval


def _env(name: str, default: str = "") -> str:
    # An empty variable (as compose passes unset settings) means "not set".
    return os.environ.get(name) or default


def vlm_config_from_env(model: str, **overrides: Any) -> VLMConfig:
    """The VLM judge's settings for `model` from the ATOM_JUDGE_* variables (see the module doc);
    `overrides` (e.g. votes from a request) win over the environment."""
    from services.judge.budget import CostModel
    from services.judge.vlm import VLMConfig

    cost = CostModel(
        usd_per_1k_input=float(_env("ATOM_JUDGE_USD_PER_1K_INPUT", "0.0025")),
        usd_per_1k_output=float(_env("ATOM_JUDGE_USD_PER_1K_OUTPUT", "0.01")),
    )
    settings: dict[str, Any] = dict(
        model=model,
        base_url=_env("ATOM_JUDGE_BASE_URL") or None,
        concurrency=int(_env("ATOM_JUDGE_CONCURRENCY", "4")),
        cost=cost,
        allow_no_key=_env("ATOM_JUDGE_ALLOW_NO_KEY") in ("1", "true"),
        response_format=_env("ATOM_JUDGE_RESPONSE_FORMAT", "json_schema"),
        votes=int(_env("ATOM_JUDGE_VOTES", "1")),
        vote_temperature=float(_env("ATOM_JUDGE_VOTE_TEMPERATURE", "0.7")),
    )
    settings.update(overrides)
    return VLMConfig(**settings)


def requested_tasks(names) -> list[str]:
    """A request's `tasks` (all sub-tasks when empty), each checked; the error names the field."""
    tasks = list(names) or list(TASKS)
    for i, t in enumerate(tasks):
        try:
            check_task(t)
        except ValueError as exc:
            raise InvalidArgument(f"tasks[{i}]", str(exc)) from None
    return tasks


def prompt_from_proto(p: common_pb2.Prompt, field: str) -> PromptRecord:
    require(bool(p.text.strip()), f"{field}.text", "is empty")
    try:
        check_task(p.labels.task or p.task)
    except ValueError as exc:
        raise InvalidArgument(f"{field}.labels.task", str(exc)) from None
    require(len(p.labels.events) > 0, f"{field}.labels.events", "a prompt needs its label group to be judged")
    labels = LabelGroup(p.labels.task or p.task, tuple(EventLabel(e.event, max(1, e.count)) for e in p.labels.events))
    return PromptRecord(p.prompt_id, p.text, p.task or labels.task, labels)


def prompt_to_proto(p: PromptRecord) -> common_pb2.Prompt:
    return common_pb2.Prompt(
        prompt_id=p.prompt_id,
        text=p.text,
        task=p.task,
        labels=common_pb2.LabelGroup(
            task=p.labels.task, events=[common_pb2.EventLabel(event=e.event, count=e.count) for e in p.labels.events]
        ),
    )


def judgement_to_proto(j: Judgement) -> judge_pb2.Judgement:
    return judge_pb2.Judgement(
        item_id=j.item_id,
        ok=j.ok,
        score=float(j.score) if j.ok and j.score is not None else 0.0,
        rationale=j.rationale,
        judge_id=j.judge_id,
        prompt_tokens=j.prompt_tokens,
        completion_tokens=j.completion_tokens,
        cost_usd=j.cost_usd,
        cache_hit=j.cache_hit,
        error=j.error,
        record=common_pb2.ArtifactRef(key=j.record_key) if j.record_key else None,
        agreement=float(j.extra.get("agreement", 1.0)),
        vote_entropy=float(j.extra.get("entropy", 0.0)),
        votes=[-1 if v is None else int(v) for v in j.extra.get("votes", [])],
    )


class JudgeServicer(judge_pb2_grpc.JudgeServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)
        self.kinematic = KinematicJudge(self.store)
        self._vlm: dict[tuple[str, tuple[tuple[str, int | float | str], ...]], VLMJudge] = {}
        self._ledger = None  # the process-wide budget ledger, made with the first VLM judge
        self._lock = threading.Lock()

    # -- prompts ------------------------------------------------------------------------------
    def ComposePrompts(self, request, context):
        tasks = requested_tasks(request.tasks)
        require(0 < request.per_task <= 10_000, "per_task", f"must be within 1..10000, got {request.per_task}")
        backend = request.backend or "offline"
        if backend == "offline":
            prompts = compose_prompts(tasks, request.per_task, request.seed)
        elif backend == "llm":
            from services.judge.llm_compose import LLMComposeConfig, LLMComposer

            # Closed after use: it holds an HTTP client and a log-redaction filter. A refused
            # key, permission or quota raises out of compose() and fails the call.
            with LLMComposer(
                LLMComposeConfig(
                    model=request.llm_model or _env("ATOM_JUDGE_MODEL", "gpt-4o"), base_url=_env("ATOM_JUDGE_BASE_URL") or None
                )
            ) as composer:
                prompts = composer.compose(tasks, request.per_task, request.seed).prompts
        else:
            raise InvalidArgument("backend", f"unknown backend {backend!r}; use 'offline' or 'llm'")
        return judge_pb2.ComposePromptsResponse(prompts=[prompt_to_proto(p) for p in prompts])

    # -- scoring ------------------------------------------------------------------------------
    def _budget_ledger(self):
        """The one ledger of this process (call with self._lock held): every model's judge spends
        against it, so a second model name cannot spend past ATOM_JUDGE_BUDGET_USD."""
        from services.judge.budget import BudgetLedger

        if self._ledger is None:
            budget = _env("ATOM_JUDGE_BUDGET_USD")
            self._ledger = BudgetLedger(float(budget) if budget else None)
        return self._ledger

    def _vlm_judge(self, model: str, cfg: judge_pb2.JudgeConfig):
        """The VLM judge for this model and these request settings (the environment's where unset);
        one per combination, all spending against the process's one ledger."""
        from services.judge.vlm import VLMJudge

        overrides: dict[str, int | float | str] = {}
        if cfg.votes:
            require(1 <= cfg.votes <= MAX_VOTES, "judge.votes", f"must be within 1..{MAX_VOTES}, got {cfg.votes}")
            overrides["votes"] = cfg.votes
        if cfg.vote_temperature:
            require(0 < cfg.vote_temperature <= 2, "judge.vote_temperature", f"must be within (0, 2], got {cfg.vote_temperature}")
            overrides["vote_temperature"] = cfg.vote_temperature
        if cfg.response_format:
            require(
                cfg.response_format in RESPONSE_FORMATS,
                "judge.response_format",
                f"unknown {cfg.response_format!r}; use one of {', '.join(RESPONSE_FORMATS)}",
            )
            overrides["response_format"] = cfg.response_format
        key = (model, tuple(sorted(overrides.items())))
        with self._lock:
            if key not in self._vlm:
                self._vlm[key] = VLMJudge(vlm_config_from_env(model, **overrides), self.store, ledger=self._budget_ledger())
            return self._vlm[key]

    def _load_joints(self, key: str, field: str):
        try:
            return MotionRecord.from_bytes(self.store.get_bytes(key), key).joints
        except MotionFormatError as exc:
            raise InvalidArgument(field, str(exc)) from None

    @staticmethod
    def _backend(cfg: judge_pb2.JudgeConfig) -> str:
        backend = cfg.backend or "kinematic"
        require(backend in ("kinematic", "vlm"), "judge.backend", f"unknown judge {backend!r}; use kinematic or vlm")
        return backend

    def _images(self, refs, field: str) -> list[bytes]:
        require(
            0 < len(refs) <= MAX_IMAGES,
            field,
            f"the VLM judge needs 1..{MAX_IMAGES} renders (Renderer.Render) of the motion, got {len(refs)}",
        )
        for k, ref in enumerate(refs):
            require_key(ref.key, f"{field}[{k}].key", "name a render, e.g. renders/<sha>/.../frame-00000.png")
        return [self.store.get_bytes(ref.key) for ref in refs]

    def _items(self, request, backend: str) -> list[JudgeItem]:
        """The request's items as the judges take them (Score and Estimate): joints for the
        kinematic judge, the renders' bytes for the VLM judge."""
        cfg = request.judge
        require(len(request.items) > 0, "items", "no items to judge")
        require(len(request.items) <= MAX_ITEMS, "items", f"at most {MAX_ITEMS} per request, got {len(request.items)}; split the request")
        form = (cfg.form or _RENDER.form).replace("_", "-")  # the judge's records spell forms with hyphens
        items = []
        for i, it in enumerate(request.items):
            field = f"items[{i}]"
            require(bool(it.item_id), f"{field}.item_id", "is empty")
            prompt = prompt_from_proto(it.prompt, f"{field}.prompt")
            if backend == "kinematic":
                require_key(it.motion.key, f"{field}.motion.key", "the kinematic judge needs the motion")
                joints = self._load_joints(it.motion.key, f"{field}.motion")
                items.append(JudgeItem(it.item_id, prompt, joints=joints))
            else:
                images = self._images(it.images, f"{field}.images")
                items.append(JudgeItem(it.item_id, prompt, images=images, form=form, interval=cfg.interval or _RENDER.interval))
        return items

    def Score(self, request, context):
        cfg = request.judge
        backend = self._backend(cfg)
        items = self._items(request, backend)
        if backend == "kinematic":
            results = self.kinematic.score_batch(items)
            judge_name = "kinematic"
        else:
            judge = self._vlm_judge(cfg.model or _env("ATOM_JUDGE_MODEL", "gpt-4o"), cfg)
            if cfg.batch_api:
                from services.judge.batch import BatchConfig, BatchJudge

                # Wait for the batch at most until shortly before the call's deadline; what is not
                # back then comes as "pending", and the next call resumes the same batch.
                remaining = context.time_remaining()
                wait = None if remaining is None else max(0.0, remaining - 30.0)
                results = iter(BatchJudge(judge, BatchConfig(max_wait_s=wait)).run(items, budget_usd=cfg.budget_usd or None).judgements)
            else:
                results = judge.score_batch(items, budget_usd=cfg.budget_usd or None)
            judge_name = judge.judge_id
        try:
            for j in results:
                if not context.is_active():
                    return  # cancelled or past its deadline: stop paying for answers nobody reads
                if j.cache_hit:
                    JUDGE_CACHE_HITS.labels(judge_name).inc()
                elif j.ok:
                    JUDGE_CALLS.labels(judge_name).inc()
                if not j.ok:
                    JUDGE_ERRORS.labels(judge_name, j.error_kind or "unknown").inc()
                JUDGE_COST.labels(judge_name).inc(0 if j.cache_hit else j.cost_usd)
                JUDGE_TOKENS.labels(judge_name, "prompt").inc(j.prompt_tokens)
                JUDGE_TOKENS.labels(judge_name, "completion").inc(j.completion_tokens)
                yield judgement_to_proto(j)
        finally:
            close = getattr(results, "close", None)
            if close:
                close()

    # -- before and around scoring --------------------------------------------------------------
    def Estimate(self, request, context):
        """What Score would ask and cost for these items; nothing is asked or written."""
        from services.judge.estimate import estimate, merge

        backend = self._backend(request.judge)
        if backend == "kinematic":
            n = len(request.items) + request.so_far.items
            return judge_pb2.JudgeEstimate(
                backend="kinematic",
                items=n,
                text=(f"Judge estimate for the kinematic judge: {n} items, nothing to ask, no cost (it reads the joints on this machine)"),
            )
        judge = self._vlm_judge(request.judge.model or _env("ATOM_JUDGE_MODEL", "gpt-4o"), request.judge)
        est = estimate(self._items(request, backend), judge.config, judge.cache)
        if request.HasField("so_far"):
            try:
                est = merge(estimate_from_proto(request.so_far), est, judge.config.cost)
            except ValueError as exc:
                raise InvalidArgument("so_far", str(exc)) from None
        return estimate_to_proto(est)

    def CalibrationCases(self, request, context):
        """Motions with known scores: world clips (written to the store for the renderer) or the
        motions of a human-label file in the store."""
        from services.judge.calibrate import world_cases
        from services.judge.human import HumanLabelError, load_human_labels, load_motion

        if request.human_labels:
            require_key(request.human_labels, "human_labels", "name a human-label JSONL file in the store")
            try:
                labels = load_human_labels(self.store.get_bytes(request.human_labels))
                found = [
                    (lab.label_id, lab.prompt, lab.score, load_motion(lab.motion, None, self.store), f"human:{lab.annotator}")
                    for lab in labels
                ]
            except HumanLabelError as exc:
                # One line: the file's problems, each with its line number.
                head, *problems = str(exc).splitlines()
                raise InvalidArgument("human_labels", " ".join([head, "; ".join(p.strip() for p in problems)])) from None
        else:
            tasks = requested_tasks(request.tasks)
            require(0 < request.n <= MAX_CALIBRATION_CASES, "n", f"must be within 1..{MAX_CALIBRATION_CASES}, got {request.n}")
            found = [(c.item_id, p, c.truth, c.joints, f"world:{c.variant}") for p, c in world_cases(tasks, request.n, request.seed)]
        cases = []
        for item_id, prompt, truth, joints, source in found:
            info = self.store.put_content_addressed("motions", MotionRecord(joints=joints).to_bytes(), ".npz", "application/x-npz")
            cases.append(
                judge_pb2.CalibrationCase(
                    item_id=item_id, prompt=prompt_to_proto(prompt), truth=truth, motion=common_pb2.ArtifactRef(key=info.key), source=source
                )
            )
        return judge_pb2.CalibrationCasesResponse(cases=cases)

    def Calibrate(self, request, context):
        """Score the cases in every setting; agreement with the truth and with the kinematic judge.
        The table is kept in the store under judge/calibration/<key>.json (the key: the request's
        content), and judge/calibration/latest.json names the newest."""
        from services.judge.calibrate import BatchScorer, CalibrationItem, Setting, calibrate

        cfg = request.judge
        backend = self._backend(cfg)
        require(0 < len(request.cases) <= MAX_CALIBRATION_CASES, "cases", f"1..{MAX_CALIBRATION_CASES} cases, got {len(request.cases)}")
        if backend == "kinematic":
            require(not request.settings, "settings", "the kinematic judge reads joints: give no settings")
            settings = []
        else:
            require(
                0 < len(request.settings) <= MAX_SETTINGS,
                "settings",
                f"1..{MAX_SETTINGS} (form, interval) settings for the VLM judge, got {len(request.settings)}",
            )
            try:
                settings = [Setting(s.form, s.interval) for s in request.settings]
            except ValueError as exc:
                raise InvalidArgument("settings", str(exc)) from None
            require(len(set(settings)) == len(settings), "settings", "a (form, interval) setting is repeated")
        items = []
        for i, case in enumerate(request.cases):
            field = f"cases[{i}]"
            require(bool(case.item_id), f"{field}.item_id", "is empty")
            require_key(case.motion.key, f"{field}.motion.key", "name the case's motion")
            prompt = prompt_from_proto(case.prompt, f"{field}.prompt")
            renders = {Setting(r.form, r.interval): r.images for r in case.renders}
            missing = [s.label() for s in settings if s not in renders]
            require(not missing, f"{field}.renders", f"no renders for {', '.join(missing)}")
            items.append(
                CalibrationItem(
                    case.item_id,
                    prompt,
                    case.truth,
                    self._load_joints(case.motion.key, field),
                    {s: self._images(renders[s], f"{field}.renders") for s in settings},
                    case.source,
                )
            )
        if backend == "kinematic":
            judge, kinematic = self.kinematic, None
        else:
            vlm = self._vlm_judge(cfg.model or _env("ATOM_JUDGE_MODEL", "gpt-4o"), cfg)
            if cfg.batch_api:
                from services.judge.batch import BatchJudge

                judge = BatchScorer(BatchJudge(vlm))
            else:
                judge = _Capped(vlm, cfg.budget_usd or None)
            kinematic = self.kinematic
        result = calibrate(items, judge, settings, kinematic=kinematic)
        table = result.to_dict()
        key = f"judge/calibration/{sha256_hex(request.SerializeToString(deterministic=True))[:32]}.json"
        self.store.put_json(
            key,
            {
                **table,
                "created": time.time(),
                "cases": len(items),
                "sources": sorted({it.source.split(":")[0] for it in items}),
                "settings": [s.label() for s in settings],
                "text": result.format(),
            },
        )
        self.store.put_json("judge/calibration/latest.json", {"key": key, "created": time.time()})
        return judge_pb2.CalibrateResponse(
            judge_id=result.judge_id,
            kinematic_id=result.kinematic_id,
            text=result.format(),
            cost_usd=sum(r.cost_usd for r in result.rows),
            record=common_pb2.ArtifactRef(key=key),
            rows=[
                judge_pb2.CalibrationRow(
                    task=r.task,
                    setting=r.setting,
                    n=r.n,
                    scored=r.scored,
                    errors=r.errors,
                    exact=r.exact,
                    within_one=r.within_one,
                    kappa=r.kappa,
                    labels=r.labels,
                    confusion=[v for row in r.confusion for v in row],
                    cost_usd=r.cost_usd,
                    kinematic_exact=r.kinematic_exact,
                    kinematic_truth=r.kinematic_truth,
                )
                for r in result.rows
            ],
        )


class _Capped:
    """The VLM judge with the request's budget cap on each batch (calibrate calls score_batch(items))."""

    def __init__(self, judge, budget_usd: float | None):
        self.judge, self.budget_usd, self.judge_id = judge, budget_usd, judge.judge_id

    def score_batch(self, items):
        return self.judge.score_batch(items, budget_usd=self.budget_usd)


_ESTIMATE_COUNTS = (
    "model",
    "detail",
    "votes",
    "items",
    "invalid",
    "questions",
    "cached",
    "to_ask",
    "images",
    "image_tokens",
    "text_tokens",
    "output_tokens_expected",
    "output_tokens_bound",
    "output_basis",
    "sync_usd",
    "sync_usd_bound",
    "batch_usd",
    "batch_usd_bound",
    "batch_price_factor",
    "image_rule",
    "text_rule",
    "cached_answers",
    "cached_output_tokens",
)


def estimate_to_proto(est) -> judge_pb2.JudgeEstimate:
    lo, hi, _ = est.images_per_question
    return judge_pb2.JudgeEstimate(
        backend="vlm",
        images_min=lo,
        images_max=hi,
        image_sizes=est.image_sizes,
        input_tokens=est.input_tokens,
        output_tokens=est.output_tokens,
        text=est.format(),
        **{k: getattr(est, k) for k in _ESTIMATE_COUNTS},
    )


def estimate_from_proto(msg: judge_pb2.JudgeEstimate):
    from services.judge.estimate import JudgeEstimate

    return JudgeEstimate(
        images_per_question=(msg.images_min, msg.images_max, msg.images / msg.to_ask if msg.to_ask else 0.0),
        image_sizes=dict(msg.image_sizes),
        **{k: getattr(msg, k) for k in _ESTIMATE_COUNTS},
    )


def build_spec(store_url: str) -> ServiceSpec:
    servicer = JudgeServicer(store_url)
    return ServiceSpec(
        name="judge",
        servicer=servicer,
        add_to_server=judge_pb2_grpc.add_JudgeServicer_to_server,
        full_name="atom.v1.Judge",
        ready=lambda: store_problem(servicer.store),
    )
