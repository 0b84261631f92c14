"""The trainer's gRPC servicer: BuildPairs, and jobs (StartTraining, WatchJob streamed, CancelJob,
GetJob) of three kinds: LoRA preference training, pretraining the tiny base model, and training
the embedded evaluator. Jobs live in the store, so a restarted trainer knows them, and starting
the same request again returns the finished job or runs it again (preference training from its
last checkpoint)."""

from __future__ import annotations

import logging
import math
import threading

from atom.settings import TrainSettings
from atom.runtime.device import resolve_compute
from atom.mgpt.bundle import load_bundle
from atom.runtime import telemetry
from atom.runtime.errors import InvalidArgument, require, require_key
from atom.runtime.server import ServiceSpec, store_problem
from atom.store import ArtifactNotFound, open_store
from atom.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc
from services.trainer.config import LoraSettings, TrainConfig, TrainConfigError
from services.trainer.jobs import JobManager, JobNotFound, JobStatus
from services.trainer.model_jobs import PRESETS, EvaluatorSpec, ModelJobError, PretrainSpec
from services.trainer.pairs import PairConfig, build_pair_sets

log = logging.getLogger("atom.trainer")

# Per-job series carry `train_job` (a `job` label would clash with the scrape target's own and
# arrive as `exported_job`); they are removed when the job ends, so finished jobs do not pile up.
TRAIN_LOSS = telemetry.gauge("atom_train_loss", "Loss of the latest training step (NaN or Inf if it diverged)", ("train_job",))
TRAIN_STEP = telemetry.gauge("atom_train_step", "Latest training step", ("train_job",))
TRAIN_MARGIN = telemetry.gauge("atom_train_margin", "Mean chosen-minus-rejected log-ratio margin", ("train_job",))
TRAIN_JOBS_FINISHED = telemetry.counter("atom_train_jobs_finished_total", "Training jobs that ended, by final state", ("state",))
TRAIN_LOSS_NONFINITE = telemetry.counter(
    "atom_train_loss_nonfinite_total", "Training jobs stopped because the loss became NaN or infinite", ()
)
PAIRS_BUILT = telemetry.counter("atom_pairs_built_total", "Preference pairs built", ("task",))
_TRAIN_SERIES = (TRAIN_LOSS, TRAIN_STEP, TRAIN_MARGIN)
_finished_lock = threading.Lock()
_finished: set[str] = set()  # jobs whose end was counted (several watchers see the same end)


def _export_job_metrics(status) -> None:
    """A watched job's figures while it runs; at its end, count it once and drop its series."""
    if not status.terminal:
        with _finished_lock:
            _finished.discard(status.job_id)  # started again (resumed): its next end counts
        if status.loss is not None:
            TRAIN_LOSS.labels(status.job_id).set(float(status.loss))
            TRAIN_MARGIN.labels(status.job_id).set(_num(status.margin))
        TRAIN_STEP.labels(status.job_id).set(status.step)
        return
    with _finished_lock:
        if status.job_id in _finished:
            return
        _finished.add(status.job_id)
    TRAIN_JOBS_FINISHED.labels(status.state).inc()
    if status.state == "FAILED" and "loss became" in (status.error or ""):  # train.py's non-finite loss stop
        TRAIN_LOSS_NONFINITE.inc()
    for metric in _TRAIN_SERIES:
        metric.remove(status.job_id)


_STATES = {
    "PENDING": common_pb2.JOB_STATE_PENDING,
    "RUNNING": common_pb2.JOB_STATE_RUNNING,
    "SUCCEEDED": common_pb2.JOB_STATE_SUCCEEDED,
    "FAILED": common_pb2.JOB_STATE_FAILED,
    "CANCELLED": common_pb2.JOB_STATE_CANCELLED,
}


def _num(x) -> float:
    return float(x) if x is not None and math.isfinite(x) else 0.0


def job_to_proto(s: JobStatus) -> trainer_pb2.Job:
    return trainer_pb2.Job(
        job_id=s.job_id,
        state=_STATES.get(s.state, common_pb2.JOB_STATE_UNSPECIFIED),
        metrics=trainer_pb2.TrainingMetrics(
            step=s.step,
            total_steps=s.total_steps,
            epoch=s.epoch,
            loss=_num(s.loss),
            margin=_num(s.margin),
            accuracy=_num(s.accuracy),
            learning_rate=_num(s.lr),
        ),
        adapter=common_pb2.ArtifactRef(key=s.adapter_prefix) if s.adapter_prefix else None,
        error=s.error,
        resumed=s.resumed_from_step > 0,
        kind=s.kind,
        output=common_pb2.ArtifactRef(key=s.output_prefix) if s.output_prefix else None,
        figures={k: float(v) for k, v in s.figures.items()},
    )


# TrainingConfig.logprobs -> TrainConfig.average_logprobs ("" leaves it to the loss's convention).
LOGPROBS = {"": None, "sum": False, "mean": True}


def config_from_request(req: trainer_pb2.StartTrainingRequest) -> TrainConfig:
    c = req.config
    require_key(req.base.base, "base.base", "name the base model bundle (a store prefix such as models/base-tiny)")
    require(not req.base.adapter, "base.adapter", "training starts from a base model without an adapter")
    require_key(req.pairs.key, "pairs.key", "build pairs first (Trainer.BuildPairs)")
    require_key(req.output_prefix, "output_prefix", "e.g. models/run-1")
    d = TrainSettings()  # the one place the defaults are written

    def get(name: str, default):
        return getattr(c, name) if c.HasField(name) else default

    try:
        lora = LoraSettings(
            r=get("lora_r", d.lora_r),
            alpha=get("lora_alpha", d.lora_alpha),
            dropout=get("lora_dropout", d.lora_dropout),
            target_modules=tuple(c.target_modules) or tuple(d.target_modules),
        )
        require(c.logprobs in LOGPROBS, "config.logprobs", f"must be 'sum', 'mean' or empty, got {c.logprobs!r}")
        return TrainConfig(
            pairs_key=req.pairs.key,
            output_prefix=req.output_prefix.rstrip("/"),
            base_model=req.base.base,
            loss=c.algorithm or d.algorithm,
            beta=get("beta", d.beta),
            lr=get("learning_rate", d.learning_rate),
            batch_size=get("batch_size", d.batch_size),
            epochs=get("epochs", d.epochs),
            max_steps=get("max_steps", 0) or None,
            schedule=c.scheduler or "cosine",
            warmup_ratio=get("warmup_ratio", 0.0),
            seed=c.seed,
            lora=lora,
            average_logprobs=LOGPROBS[c.logprobs or d.logprobs],
            rpo_alpha=get("rpo_alpha", d.rpo_alpha),
        )
    except TrainConfigError as exc:
        raise InvalidArgument("config", str(exc)) from None


def model_job_from_request(req: trainer_pb2.StartTrainingRequest) -> PretrainSpec | EvaluatorSpec:
    """A pretrain or evaluator job's spec from a request whose `kind` is set."""
    kind = req.WhichOneof("kind")
    job = getattr(req, kind)
    require(
        not req.base.base and not req.base.adapter and not req.pairs.key and not req.HasField("config"),
        "base",
        f"a {kind} job takes no base model, pairs or training config; leave them empty",
    )
    require_key(job.dataset.key, f"{kind}.dataset.key", "name the HumanML3D-layout dataset's store prefix")
    require_key(req.output_prefix, "output_prefix", f"e.g. models/{'base-tiny' if kind == 'pretrain' else 'evaluator'}")
    common = {
        "dataset": job.dataset.key.rstrip("/"),
        "dataset_sha256": job.dataset.sha256,
        "output_prefix": req.output_prefix.rstrip("/"),
        "seed": job.seed,
    }
    try:
        if kind == "pretrain":
            preset = job.preset or "default"
            require(preset in PRESETS, "pretrain.preset", f"must be one of {', '.join(PRESETS)}, got {job.preset!r}")
            require(
                not job.HasField("time_budget_s") or (math.isfinite(job.time_budget_s) and job.time_budget_s > 0),
                "pretrain.time_budget_s",
                f"must be a positive number of seconds, got {job.time_budget_s}",
            )
            return PretrainSpec(preset=preset, time_budget_s=job.time_budget_s if job.HasField("time_budget_s") else None, **common)
        require(not job.HasField("steps") or job.steps >= 1, "evaluator.steps", f"must be >= 1, got {job.steps}")
        return EvaluatorSpec(steps=job.steps if job.HasField("steps") else None, **common)
    except ModelJobError as exc:
        raise InvalidArgument(kind, str(exc)) from None


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)
        self.compute = resolve_compute()  # jobs with device "auto" / dtype "" train here
        # A preference job takes all the CPU threads this service was given, one-thread model jobs
        # share them (services/trainer/admission.py).
        self.jobs = JobManager(self.store, self._load_model)
        resumed = self.jobs.resume_interrupted()
        if resumed:
            log.info("resuming %d interrupted jobs: %s", len(resumed), resumed)

    def _load_model(self, config: TrainConfig):
        # A fresh copy per job: LoRA is attached to it in place.
        return load_bundle(self.store, config.base_model).lm

    def BuildPairs(self, request, context):
        require_key(request.dataset.key, "dataset.key", "write the MotionPrefer JSONL first")
        require_key(request.output_prefix, "output_prefix", "e.g. datasets/run-1")
        require(request.mixed_size >= 0, "mixed_size", f"must be >= 0 (0 = all pairs), got {request.mixed_size}")
        require(request.theta >= 0, "theta", f"must be >= 0, got {request.theta}")
        if not self.store.exists(request.dataset.key):
            raise ArtifactNotFound(request.dataset.key, self.store.url)
        min_score = request.min_chosen_score if request.HasField("min_chosen_score") else None
        cfg = PairConfig.with_min_chosen_score(min_score, theta=request.theta, score_filter=not request.no_score_filter)
        sets = build_pair_sets(
            self.store, request.dataset.key, request.output_prefix, cfg, mixed_size=request.mixed_size, seed=request.seed
        )
        resp = trainer_pb2.BuildPairsResponse(stats=common_pb2.ArtifactRef(key=sets.stats_key))
        for f in sets.files:
            resp.pair_sets.append(common_pb2.ArtifactRef(key=f.key, media_type="application/x-ndjson"))
            if f.name != "mixed":
                resp.pairs_per_task[f.name] = f.pairs
                PAIRS_BUILT.labels(f.name).inc(f.pairs)
        for row in sets.stats:
            if row.task != "total":
                resp.prompts_per_task[row.task] = row.prompts
                resp.motions_per_task[row.task] = row.motions
        return resp

    def StartTraining(self, request, context):
        if request.WhichOneof("kind"):
            spec = model_job_from_request(request)
            if not self.store.exists(f"{spec.dataset}/DONE"):  # written last by every dataset import
                raise ArtifactNotFound(f"{spec.dataset}/DONE", self.store.url)
            return job_to_proto(self.jobs.get(self.jobs.start(spec)))
        config = config_from_request(request)
        if not self.store.exists(config.pairs_key):
            raise ArtifactNotFound(config.pairs_key, self.store.url)
        if not self.store.exists(f"{config.base_model}/bundle.json"):
            raise ArtifactNotFound(f"{config.base_model}/bundle.json", self.store.url)
        job_id = self.jobs.start(config)
        return job_to_proto(self.jobs.get(job_id))

    def _status(self, job_id: str) -> JobStatus:
        require(bool(job_id), "job_id", "is empty")
        try:
            return self.jobs.get(job_id)
        except JobNotFound:
            raise ArtifactNotFound(f"jobs/{job_id}", "this trainer") from None

    def GetJob(self, request, context):
        return job_to_proto(self._status(request.job_id))

    def CancelJob(self, request, context):
        self._status(request.job_id)
        return job_to_proto(self.jobs.cancel(request.job_id))

    def WatchJob(self, request, context):
        self._status(request.job_id)
        stop = threading.Event()
        context.add_callback(stop.set)  # the client went away: stop watching, not the job
        for status in self.jobs.watch(request.job_id, stop=stop):
            _export_job_metrics(status)
            yield trainer_pb2.JobEvent(job=job_to_proto(status), message=status.message)

    def shutdown(self) -> None:
        self.jobs.shutdown()


def build_spec(store_url: str) -> ServiceSpec:
    servicer = TrainerServicer(store_url)
    return ServiceSpec(
        name="trainer",
        servicer=servicer,
        add_to_server=trainer_pb2_grpc.add_TrainerServicer_to_server,
        full_name="atom.v1.Trainer",
        on_shutdown=servicer.shutdown,
        details=servicer.compute.describe,
        ready=lambda: store_problem(servicer.store),
    )
