"""The evaluator's gRPC servicer: Evaluate streams progress, then the report (JSON, Markdown table
in the paper's Table 5 format, PNG plots) written to the store."""

from __future__ import annotations

import logging
import queue
import threading

from atom.motion.record import MotionFormatError, MotionRecord
from atom.runtime import telemetry
from atom.runtime.device import resolve_compute
from atom.runtime.errors import InvalidArgument, require
from atom.runtime.server import ServiceSpec
from atom.store import ArtifactNotFound, open_store
from atom.store.localcache import local_tree
from atom.v1 import common_pb2, evaluator_pb2, evaluator_pb2_grpc
from services.evaluator.records import MIN_EVAL_FRAMES, ModelSample, hold_to_min_length
from services.evaluator.report import evaluate
from services.evaluator.subsets import build_subsets

log = logging.getLogger("atom.evaluator")

EVALUATIONS = telemetry.counter("atom_evaluations_total", "Evaluations finished", ())
JUDGE_MEAN = telemetry.gauge("atom_eval_judge_score", "Mean judge score of the last evaluation", ("model", "task"))


def load_evaluator(store, spec: str):
    kind, _, arg = spec.partition(":")
    if kind in ("", "embedded"):
        from services.evaluator.embedded import EmbeddedEvaluator

        require(bool(arg), "evaluator", "embedded evaluator needs its store prefix: embedded:<prefix>")
        return EmbeddedEvaluator.load(store, arg)
    if kind == "guo":
        from services.evaluator.guo import GuoEvaluator

        require(bool(arg), "evaluator", "guo evaluator needs a directory or store prefix: guo:<dir>")
        from pathlib import Path

        if Path(arg).is_dir():
            return GuoEvaluator.from_dir(arg)
        return GuoEvaluator.from_store(store, arg)
    raise InvalidArgument("evaluator", f"unknown evaluator {spec!r}; use embedded:<prefix> or guo:<dir>")


class EvaluatorServicer(evaluator_pb2_grpc.EvaluatorServicer):
    def __init__(self, store_url: str):
        self.store = open_store(store_url)
        self.compute = resolve_compute()  # the networks compute in float32 whatever ATOM_DTYPE says
        self._lock = threading.Lock()  # one evaluation at a time: it uses every core it has

    def _samples(self, m: evaluator_pb2.ModelSamples, field: str) -> tuple[list[ModelSample], int]:
        require(bool(m.name), f"{field}.name", "is empty")
        require(bool(m.samples.key), f"{field}.samples.key", "is empty")
        out, skipped, padded = [], 0, 0
        for n, row in enumerate(self.store.get_jsonl(m.samples.key), 1):
            if not row.get("motion"):
                skipped += 1  # the model produced no motion for this sample
                continue
            try:
                rec = MotionRecord.from_bytes(self.store.get_bytes(row["motion"]), row["motion"])
                feats = rec.features if len(rec.features) else None
                if feats is not None:
                    feats, held = hold_to_min_length(feats)
                    padded += held
                out.append(ModelSample(text=row["text"], task=row["task"], prompt_id=row["prompt_id"],
                                       features=feats, joints=None if feats is not None else rec.joints,
                                       score=row.get("score")))
            except (KeyError, MotionFormatError, ValueError) as exc:
                raise InvalidArgument(f"{field}.samples", f"{m.samples.key} line {n}: {exc}") from None
        require(len(out) > 0, f"{field}.samples", f"{m.samples.key} holds no usable samples")
        return out, (skipped, padded)

    def Evaluate(self, request, context):
        require(len(request.models) > 0, "models", "name at least one model's samples")
        require(bool(request.dataset), "dataset", "name the HumanML3D-layout dataset (store prefix or local path)")
        require(bool(request.output_prefix), "output_prefix", "is empty; e.g. reports/run-1")
        names = [m.name for m in request.models]
        require(len(set(names)) == len(names), "models", f"model names must be distinct, got {names}")
        models, dropped = {}, {}  # per model: (samples with no motion, motions padded to the minimum)
        for i, m in enumerate(request.models):
            models[m.name], dropped[m.name] = self._samples(m, f"models[{i}]")
        evaluator = load_evaluator(self.store, request.evaluator or "embedded").to(self.compute.device)
        root = local_tree(self.store, request.dataset)
        real = build_subsets(root, request.split or "test")
        try:
            reference = build_subsets(root, "val")
        except (ValueError, FileNotFoundError, ArtifactNotFound):
            reference = None

        events: queue.Queue = queue.Queue()
        result: dict = {}

        def work():
            try:
                with self._lock:
                    result["report"] = evaluate(
                        models, real, evaluator, replications=request.replications or 20, seed=request.seed,
                        progress=lambda msg, done, total: events.put((msg, done, total)),
                        reference=reference, baseline=request.baseline or None)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the RPC thread
                result["error"] = exc
            finally:
                events.put(None)

        threading.Thread(target=work, name="evaluate", daemon=True).start()
        while (ev := events.get()) is not None:
            msg, done, total = ev
            if context.is_active():
                yield evaluator_pb2.EvaluateEvent(progress=common_pb2.Progress(stage="evaluate", done=done,
                                                                               total=total, message=msg))
        if "error" in result:
            raise result["error"]
        report = result["report"]
        for name, (n, padded) in dropped.items():
            if n:
                report.notes.append(f"{name}: {n} samples had no motion (the model produced no tokens) and were left out")
            if padded:
                report.notes.append(f"{name}: {padded} motions shorter than {MIN_EVAL_FRAMES} frames were held on "
                                    "their last pose to that length")
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
                plots=[common_pb2.ArtifactRef(key=k, media_type="image/png") for n, k in keys.items()
                       if n not in ("json", "markdown")],
                markdown_text=md))


def build_spec(store_url: str) -> ServiceSpec:
    servicer = EvaluatorServicer(store_url)
    return ServiceSpec(name="evaluator", servicer=servicer,
                       add_to_server=evaluator_pb2_grpc.add_EvaluatorServicer_to_server, full_name="atom.v1.Evaluator",
                       details=lambda: {**servicer.compute.describe(), "evaluator_dtype": "fp32"})
