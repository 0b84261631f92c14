"""The evaluator's gRPC servicer: Evaluate streams progress, then the report (JSON, Markdown table
in the paper's Table 5 format, PNG plots) written to the store."""

from __future__ import annotations

import logging
import queue
import threading

import numpy as np

from atom import evalplan
from atom.motion import postag
from atom.motion.humanml3d import HumanML3D

from atom.embedded_evaluator import EmbeddedEvaluator
from atom.motion.record import MotionFormatError, MotionRecord
from atom.runtime import telemetry
from atom.runtime.device import resolve_compute
from atom.runtime.errors import InvalidArgument, require, require_key
from atom.runtime.server import ServiceSpec, store_problem
from atom.store import ArtifactNotFound, open_store
from atom.runtime.dataroots import resolve_local
from atom.store.localcache import local_tree
from atom.v1 import common_pb2, evaluator_pb2, evaluator_pb2_grpc
from services.evaluator.embedded import with_ground_truth
from services.evaluator.motiongpt_protocol import MM_KIND, real_features
from services.evaluator.records import FEATURE_DIM, GENERAL, MIN_EVAL_FRAMES, ModelSample, check_stop, hold_to_min_length
from services.evaluator.report import TestPlan, evaluate, evaluate_planned
from atom.settings import EvalSettings
from services.evaluator.subsets import build_subsets

PROTOCOLS = ("motiongpt", "guo")
MAX_REPLICATIONS = 1000  # the paper's protocol uses 20; more is a mistake or an attack

log = logging.getLogger("atom.evaluator")

EVALUATIONS = telemetry.counter("atom_evaluations_total", "Evaluations finished", ())
JUDGE_MEAN = telemetry.gauge("atom_eval_judge_score", "Mean judge score of the last evaluation", ("model", "task"))


def load_evaluator(store, spec: str):
    kind, _, arg = spec.partition(":")
    if kind in ("", "embedded"):
        require(bool(arg), "evaluator", "embedded evaluator needs its store prefix: embedded:<prefix>")
        return EmbeddedEvaluator.load(store, arg)
    if kind == "guo":
        from services.evaluator.guo import GuoEvaluator

        require(bool(arg), "evaluator", "guo evaluator needs a directory or store prefix: guo:<dir>")
        local = resolve_local(arg, "evaluator")
        return GuoEvaluator.from_dir(local) if local is not None else GuoEvaluator.from_store(store, arg)
    raise InvalidArgument("evaluator", f"unknown evaluator {spec!r}; use embedded:<prefix> or guo:<dir>")


class EvaluatorServicer(evaluator_pb2_grpc.EvaluatorServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)
        self.compute = resolve_compute()  # the networks compute in float32 whatever ATOM_DTYPE says
        self._lock = threading.Lock()  # one evaluation at a time: it uses every core it has

    def not_ready(self) -> str | None:
        """Readiness: the store answers and no evaluation holds the one evaluation slot."""
        if self._lock.locked():
            return "an evaluation is running; the next one waits for it"
        return store_problem(self.store)

    def _samples(self, m: evaluator_pb2.ModelSamples, field: str, planned: bool) -> tuple[list[ModelSample], tuple[int, int]]:
        """The model's sample rows. `planned` (motiongpt protocol): test-split rows keep their
        plan coordinates and their motions as generated (the protocol cuts and pads them; a row
        without a motion becomes the zero motion)."""
        require(bool(m.name), f"{field}.name", "is empty")
        require_key(m.samples.key, f"{field}.samples.key", "name the model's samples JSONL")
        out, skipped, padded = [], 0, 0
        for n, row in enumerate(self.store.get_jsonl(m.samples.key), 1):
            if not isinstance(row, dict):
                raise InvalidArgument(f"{field}.samples", f"{m.samples.key} line {n}: not a JSON object")
            in_plan = planned and row.get("kind") in (GENERAL, MM_KIND)
            if not row.get("motion") and not in_plan:
                skipped += 1  # the model produced no motion for this sample
                continue
            try:
                feats, joints = None, None
                if row.get("motion"):
                    rec = MotionRecord.from_bytes(self.store.get_bytes(row["motion"]), row["motion"])
                    feats = rec.features if len(rec.features) else None
                    joints = None if feats is not None else rec.joints
                if feats is not None and not in_plan:
                    feats, held = hold_to_min_length(feats)
                    padded += held
                out.append(
                    ModelSample(
                        text=row["text"],
                        task=row["task"],
                        prompt_id=row["prompt_id"],
                        features=feats if feats is not None or joints is not None else np.zeros((0, FEATURE_DIM), np.float32),
                        joints=joints,
                        score=row.get("score"),
                        kind=row.get("kind", ""),
                        item=str(row.get("item", "")),
                        replication=int(row.get("replication", -1)),
                        num_tokens=int(row.get("num_tokens", -1)),
                    )
                )
            except (KeyError, MotionFormatError, ValueError, TypeError, AttributeError) as exc:
                raise InvalidArgument(f"{field}.samples", f"{m.samples.key} line {n}: {exc}") from None
        require(len(out) > 0, f"{field}.samples", f"{m.samples.key} holds no usable samples")
        return out, (skipped, padded)

    def _mean_pose(self, base_model: str) -> np.ndarray:
        """The generator's mean pose (un-normalised features) from its bundle's norm file."""
        from safetensors.numpy import load as st_load

        key = f"{base_model.rstrip('/')}/norm.safetensors"
        try:
            mean = st_load(self.store.get_bytes(key))["mean"]
        except ArtifactNotFound:
            raise ArtifactNotFound(key, self.store.url) from None
        except Exception as exc:  # safetensors parse errors, a missing "mean"
            raise InvalidArgument("base_model", f"{key} is not a bundle's norm file ({exc})") from None
        require(mean.shape == (FEATURE_DIM,), "base_model", f"{key}: mean has shape {mean.shape}, expected ({FEATURE_DIM},)")
        return mean.astype(np.float32)

    def Evaluate(self, request, context):
        require(len(request.models) > 0, "models", "name at least one model's samples")
        require(
            0 <= request.replications <= MAX_REPLICATIONS,
            "replications",
            f"must be within 0..{MAX_REPLICATIONS} (0 = {EvalSettings().replications}), got {request.replications}",
        )
        require(bool(request.dataset), "dataset", "name the HumanML3D-layout dataset (store prefix or local path)")
        require_key(request.output_prefix, "output_prefix", "e.g. reports/run-1")
        names = [m.name for m in request.models]
        require(len(set(names)) == len(names), "models", f"model names must be distinct, got {names}")
        spec = request.evaluator or "embedded"
        protocol = request.protocol or ("motiongpt" if spec.startswith("guo") else "guo")
        require(protocol in PROTOCOLS, "protocol", f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
        planned = protocol == "motiongpt"
        require(
            not planned or bool(request.base_model),
            "base_model",
            "the motiongpt protocol pads with the generator's mean pose: name its base bundle",
        )
        dataset_dir = resolve_local(request.dataset, "dataset")  # refused before anything is read
        evaluator = load_evaluator(self.store, spec).to(self.compute.device)
        models, dropped = {}, {}  # per model: (samples with no motion, motions padded to the minimum)
        for i, m in enumerate(request.models):
            models[m.name], dropped[m.name] = self._samples(m, f"models[{i}]", planned)
        root = dataset_dir or local_tree(self.store, request.dataset)
        split = request.split or "test"
        real = build_subsets(root, split)
        try:
            reference = build_subsets(root, "val")
        except (ValueError, FileNotFoundError, ArtifactNotFound):
            reference = None
        plan = None
        if planned:
            dataset = HumanML3D(root)
            items = evalplan.motiongpt_items(dataset, split)
            plan = TestPlan(items, real_features(dataset, items), self._mean_pose(request.base_model))
        replications = request.replications or EvalSettings().replications

        events: queue.Queue = queue.Queue()
        result: dict = {}
        # Set when the call ends for any reason (deadline, cancel, client gone): the work stops at
        # its next replication instead of running on, holding the evaluation slot, for nobody.
        stop = threading.Event()
        context.add_callback(stop.set)

        def work():
            try:
                progress = lambda msg, done, total: events.put((msg, done, total))  # noqa: E731
                while not self._lock.acquire(timeout=0.5):
                    check_stop(stop)
                try:
                    if isinstance(evaluator, EmbeddedEvaluator) and "gt" not in evaluator.summary:
                        progress("measuring the embedded evaluator on the real clips (once per evaluator)", 0, 1)
                        with_ground_truth(evaluator, root, request.dataset)
                    if plan is None:
                        result["report"] = evaluate(
                            models,
                            real,
                            evaluator,
                            replications=replications,
                            seed=request.seed,
                            progress=progress,
                            reference=reference,
                            baseline=request.baseline or None,
                            stop=stop,
                        )
                    else:
                        result["report"] = evaluate_planned(
                            models,
                            real,
                            evaluator,
                            plan,
                            replications,
                            request.seed,
                            progress,
                            reference=reference,
                            baseline=request.baseline or None,
                            stop=stop,
                        )
                finally:
                    self._lock.release()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the RPC thread
                result["error"] = exc
            finally:
                events.put(None)

        threading.Thread(target=work, name="evaluate", daemon=True).start()
        while (ev := events.get()) is not None:
            msg, done, total = ev
            if context.is_active():
                yield evaluator_pb2.EvaluateEvent(progress=common_pb2.Progress(stage="evaluate", done=done, total=total, message=msg))
        if "error" in result:
            raise result["error"]
        report = result["report"]
        report.evaluator.setdefault("protocol", protocol)
        report.evaluator["tagger"] = postag.describe_tagger()
        report.assets = [
            {k: v for k, v in (("role", a.role), ("name", a.name), ("sha256", a.sha256), ("bytes", a.bytes), ("detail", a.detail)) if v}
            for a in request.assets
        ]
        for name, (n, padded) in dropped.items():
            if n:
                report.notes.append(f"{name}: {n} samples had no motion (the model produced no tokens) and were left out")
            if padded:
                report.notes.append(
                    f"{name}: {padded} motions shorter than {MIN_EVAL_FRAMES} frames were held on their last pose to that length"
                )
        keys = report.save(self.store, request.output_prefix, plots=True)
        for row in report.judge:
            mean = getattr(getattr(row, "score", None), "mean", None)
            if mean is not None:
                JUDGE_MEAN.labels(row.model, row.task).set(mean)
        EVALUATIONS.inc()
        md = self.store.get_bytes(keys["markdown"]).decode()
        yield evaluator_pb2.EvaluateEvent(
            progress=common_pb2.Progress(stage="evaluate", done=1, total=1, message="report written"),
            report=evaluator_pb2.EvaluationReport(
                json=common_pb2.ArtifactRef(key=keys["json"], media_type="application/json"),
                markdown=common_pb2.ArtifactRef(key=keys["markdown"], media_type="text/markdown"),
                plots=[common_pb2.ArtifactRef(key=k, media_type="image/png") for n, k in keys.items() if n not in ("json", "markdown")],
                markdown_text=md,
            ),
        )


def build_spec(store_url: str) -> ServiceSpec:
    servicer = EvaluatorServicer(store_url)
    return ServiceSpec(
        name="evaluator",
        servicer=servicer,
        add_to_server=evaluator_pb2_grpc.add_EvaluatorServicer_to_server,
        full_name="atom.v1.Evaluator",
        details=lambda: {**servicer.compute.describe(), "evaluator_dtype": "fp32"},
        ready=servicer.not_ready,
    )
