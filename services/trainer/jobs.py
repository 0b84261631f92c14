"""Training jobs: background threads with states, progress streams, cancellation and resume.

Three kinds, one queue: `preference` (LoRA preference training, config TrainConfig), `pretrain`
(the tiny base model) and `evaluator` (the embedded evaluator), the last two specified in
services/trainer/model_jobs.py. A preference job runs alone; the one-thread model jobs run side by
side while the service's CPU threads last (services/trainer/admission.py).

A job's id is derived from its config's fingerprint, so starting the same config twice names the
same job: a running job is returned as is, a finished one whose output is still in the store is
not run again, and a failed, cancelled or interrupted one is started again (a preference job from
its last checkpoint). Job records live in the store (jobs/<id>.json), so a restarted trainer
process still knows every job and starts again the ones it was running when it stopped.
"""

from __future__ import annotations

import builtins
import collections
import dataclasses
import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from atom.store import ArtifactStore, StoreError
from services.trainer.admission import Admission
from services.trainer.job_process import run_in_process
from services.trainer.config import TrainConfig
from services.trainer.model_jobs import SPECS, EvaluatorSpec, JobCancelled, JobProgress, PretrainSpec
from services.trainer.train import PreferenceLM, Progress, TrainingCancelled, train_preference

log = logging.getLogger(__name__)

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
INTERRUPTED = "interrupted: the trainer process stopped while the job was active; start it again to resume"

ModelLoader = Callable[[TrainConfig], PreferenceLM]
PREFERENCE = "preference"
JobConfig = TrainConfig | PretrainSpec | EvaluatorSpec


class JobNotFound(KeyError):
    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"no training job {job_id!r}; list the jobs to see the known ids")

    def __str__(self) -> str:
        return self.args[0]


def job_id_for(config: JobConfig) -> str:
    if isinstance(config, TrainConfig):
        return "train-" + config.fingerprint()[:16]
    return config.job_id()


def kind_of(config: JobConfig) -> str:
    return PREFERENCE if isinstance(config, TrainConfig) else config.kind


def config_from_record(kind: str, d: dict) -> JobConfig:
    """A job's config as its record stores it (records from before `kind` existed are preference jobs)."""
    return TrainConfig.from_dict(d) if kind == PREFERENCE else SPECS[kind].from_dict(d)


@dataclass
class JobStatus:
    job_id: str
    state: str
    config: dict
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    epochs: int = 0
    loss: float | None = None
    margin: float | None = None
    accuracy: float | None = None
    lr: float | None = None
    message: str = ""
    error: str = ""
    adapter_prefix: str = ""
    summary_key: str = ""
    kind: str = PREFERENCE
    output_prefix: str = ""  # pretrain / evaluator: the model they made, when SUCCEEDED
    figures: dict = field(default_factory=dict)  # pretrain / evaluator: name -> value, when SUCCEEDED
    interrupted: bool = False
    resumed_from_step: int = 0  # > 0 when the last run continued from a checkpoint
    attempts: int = 0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "JobStatus":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class _Job:
    def __init__(self, status: JobStatus):
        self.status = status
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None
        self.watchers: list[collections.deque] = []
        self.persisted_at = 0.0

    @property
    def active(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class JobManager:
    """Runs training jobs in background threads: a preference job alone (it takes the accelerator
    or all `threads` CPU threads, default torch's count), model jobs side by side while their
    threads fit in `threads`.

    model_loader(config) must return a fresh PreferenceLM for config.base_model each time (LoRA is
    attached to it in place); pretrain and evaluator jobs build their models themselves."""

    def __init__(
        self,
        store: ArtifactStore,
        model_loader: ModelLoader,
        *,
        prefix: str = "jobs",
        threads: int | None = None,
        persist_interval_s: float = 5.0,
        watch_buffer: int = 1024,
    ):
        if threads is None:  # the CPU threads this process was given (atom.runtime.cpus)
            import torch

            threads = torch.get_num_threads()
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.store = store
        self.model_loader = model_loader
        self.prefix = prefix.rstrip("/")
        self.persist_interval_s = persist_interval_s
        self.watch_buffer = watch_buffer
        self._admission = Admission(threads)
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._load()

    # -- persistence --------------------------------------------------------------------------

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}/{job_id}.json"

    def _load(self) -> None:
        for key in self.store.list(self.prefix + "/"):
            if not key.endswith(".json"):
                continue
            try:
                status = JobStatus.from_dict(self.store.get_json(key))
            except (StoreError, TypeError, ValueError) as exc:
                log.warning("skipping unreadable job record %s: %s", key, exc)
                continue
            if not status.terminal:
                # Its thread died with the previous process; the checkpoints survive.
                status.state, status.interrupted, status.message = FAILED, True, INTERRUPTED
                status.error = INTERRUPTED
                self.store.put_json(key, status.to_dict())
            self._jobs[status.job_id] = _Job(status)

    def _persist(self, job: _Job, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - job.persisted_at < self.persist_interval_s:
            return
        job.persisted_at = now
        try:
            self.store.put_json(self._key(job.status.job_id), job.status.to_dict())
        except StoreError as exc:  # progress must not kill training; the next write retries
            log.warning("cannot persist job %s: %s", job.status.job_id, exc)

    # -- state changes (call with self._cond held) ----------------------------------------------

    def _publish(self, job: _Job) -> None:
        job.status.updated_at = time.time()
        snapshot = dataclasses.replace(job.status)
        for q in job.watchers:
            q.append(snapshot)
        self._cond.notify_all()

    # -- public API ---------------------------------------------------------------------------

    def start(self, config: JobConfig) -> str:
        """Start (or resume, or return) the job of this config; returns its id."""
        job_id = job_id_for(config)
        with self._cond:
            job = self._jobs.get(job_id)
            if job is not None and (job.active or (job.status.state == SUCCEEDED and self._output_present(job, config))):
                return job_id
            if job is None:
                job = _Job(JobStatus(job_id, PENDING, config.to_dict(), kind=kind_of(config)))
                self._jobs[job_id] = job
            status = job.status
            status.state, status.error, status.interrupted = PENDING, "", False
            if not status.attempts:
                status.message = "waiting for a training slot"
            else:  # only preference training keeps checkpoints; the model jobs are seeded and start over
                status.message = (
                    "resuming from the last checkpoint"
                    if status.kind == PREFERENCE
                    else "starting again from the beginning (same seed, same model)"
                )
            status.attempts += 1
            job.cancel = threading.Event()
            job.thread = threading.Thread(target=self._run, args=(job, config), name=f"trainer-{job_id}", daemon=True)
            self._publish(job)
            self._persist(job)
            job.thread.start()
        return job_id

    def _output_present(self, job: "_Job", config: JobConfig) -> bool:
        """A finished job's output is still in the store (deleted outputs are trained again)."""
        if not isinstance(config, TrainConfig):
            return config.output_present(self.store)
        prefix = job.status.adapter_prefix
        return bool(prefix) and self.store.exists(f"{prefix.rstrip('/')}/adapter_model.safetensors")

    def get(self, job_id: str) -> JobStatus:
        with self._cond:
            return dataclasses.replace(self._job(job_id).status)

    def list(self) -> list[JobStatus]:
        with self._cond:
            return sorted((dataclasses.replace(j.status) for j in self._jobs.values()), key=lambda s: s.created_at)

    def cancel(self, job_id: str) -> JobStatus:
        """Ask a job to stop; it checkpoints and ends CANCELLED. A finished job is left as is."""
        with self._cond:
            job = self._job(job_id)
            if job.active and not job.status.terminal:
                job.cancel.set()
                job.status.message = "cancelling"
                self._publish(job)
            return dataclasses.replace(job.status)

    def watch(self, job_id: str, stop: threading.Event | None = None, poll_s: float = 0.25) -> Iterator[JobStatus]:
        """Yield the job's status now, then on every change, until it reaches a terminal state
        (or `stop` is set, e.g. when the client went away). A watcher that falls behind by more
        than the buffer loses the oldest progress updates, never the final state."""
        with self._cond:
            job = self._job(job_id)
            q: collections.deque = collections.deque([dataclasses.replace(job.status)], maxlen=self.watch_buffer)
            job.watchers.append(q)
        try:
            while True:
                with self._cond:
                    while not q:
                        if stop is not None and stop.is_set():
                            return
                        self._cond.wait(poll_s)
                    item = q.popleft()
                yield item
                if item.terminal:
                    return
        finally:
            with self._cond:
                job.watchers.remove(q)

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Block until the job is terminal (or timeout); return its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            job = self._job(job_id)
            while job.active or not job.status.terminal:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(0.25 if left is None else min(0.25, left))
            return dataclasses.replace(job.status)

    def resume_interrupted(self) -> builtins.list[str]:  # `list` here is the method above
        """Start again every job that a previous process left unfinished; returns their ids."""
        with self._cond:
            configs = [config_from_record(j.status.kind, j.status.config) for j in self._jobs.values() if j.status.interrupted]
        return [self.start(c) for c in configs]

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Cancel active jobs (they checkpoint) and wait for their threads."""
        with self._cond:
            threads = [j.thread for j in self._jobs.values() if j.active and j.thread is not None]
            for j in self._jobs.values():
                if j.active:
                    j.cancel.set()
        for t in threads:
            t.join(timeout)

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    # -- the worker ---------------------------------------------------------------------------

    def _threads_for(self, config: JobConfig) -> int:
        """The CPU threads a job asks for: all of them for preference training, else its own."""
        return self._admission.capacity if isinstance(config, TrainConfig) else self._admission.fit(config.cpu_threads())

    def _run(self, job: _Job, config: JobConfig) -> None:
        threads = self._threads_for(config)
        acquired = False
        lm: PreferenceLM | None = None
        try:
            if not (acquired := self._admission.acquire(threads, job.cancel)) or job.cancel.is_set():
                raise TrainingCancelled(job.status.step)
            if not isinstance(config, TrainConfig):
                self._run_model_job(job, config, threads)
                return
            with self._cond:
                job.status.state, job.status.message = RUNNING, "loading the model"
                self._publish(job)
                self._persist(job)
            lm = self.model_loader(config)
            with self._cond:
                job.status.message = "training"
                self._publish(job)
            result = train_preference(lm, self.store, config, on_progress=lambda p: self._progress(job, p), cancel=job.cancel)
            with self._cond:
                s = job.status
                s.state, s.message = SUCCEEDED, f"done: {result.steps} steps in {result.seconds:.1f} s"
                s.step = s.total_steps = result.steps
                s.adapter_prefix, s.summary_key = result.adapter_prefix, result.summary_key
                s.resumed_from_step = result.resumed_from_step
        except (TrainingCancelled, JobCancelled) as exc:
            with self._cond:
                job.status.state, job.status.message = CANCELLED, str(exc)
        except Exception as exc:  # any failure ends the job FAILED with the reason, never silently
            log.exception("training job %s failed", job.status.job_id)
            with self._cond:
                job.status.state = FAILED
                job.status.error = f"{type(exc).__name__}: {exc}"
                job.status.message = "failed; fix the cause and start the job again to resume"
        finally:
            if acquired:
                self._admission.release(threads)
            lm = None
            gc.collect()
            _free_accelerator_memory()
            with self._cond:
                self._publish(job)
                self._persist(job)

    def _run_model_job(self, job: _Job, spec: PretrainSpec | EvaluatorSpec, threads: int) -> None:
        """A pretrain or evaluator job, in the threads _run holds and a process of its own
        (services/trainer/job_process.py); its exceptions end the job in _run."""
        with self._cond:
            job.status.state, job.status.message = RUNNING, f"starting the {spec.kind} job"
            job.status.output_prefix, job.status.figures = "", {}
            self._publish(job)
            self._persist(job)
        outcome = run_in_process(spec, self.store.url, threads, lambda p: self._model_progress(job, p), job.cancel)
        with self._cond:
            s = job.status
            s.state, s.message = SUCCEEDED, outcome.message
            s.step = s.total_steps = outcome.steps
            s.output_prefix, s.figures = outcome.output_prefix, outcome.figures

    def _model_progress(self, job: _Job, p: JobProgress) -> None:
        with self._cond:
            s = job.status
            s.step, s.total_steps, s.message = p.step, p.total_steps, p.message
            self._publish(job)
            self._persist(job, force=False)

    def _progress(self, job: _Job, p: Progress) -> None:
        with self._cond:
            s = job.status
            s.step, s.total_steps, s.epoch, s.epochs = p.step, p.total_steps, p.epoch, p.epochs
            s.loss, s.margin, s.accuracy, s.lr = p.loss, p.margin, p.accuracy, p.lr
            s.resumed_from_step = p.resumed_from_step
            self._publish(job)
            self._persist(job, force=False)


def _free_accelerator_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # cleanup is best effort
        pass
