"""What the stages share during one run: config, store, service clients, manifest, progress."""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Generic, Iterator, Mapping, TypeVar

import click
from google.protobuf.json_format import MessageToDict, ParseDict

from atom.pipeline import metrics
from atom.pipeline.config import PipelineConfig
from atom.pipeline.graph import BY_NAME, OUTPUTS_FILE, digest_of, explain, stage_inputs, stage_key, stage_prefix
from atom.pipeline.manifest import Manifest
from atom.pipeline.outputs import StageOutputs
from atom.runtime.client import ServiceClient
from atom.store import ArtifactStore, sha256_hex

log = logging.getLogger("atom.pipeline")
OutputsT = TypeVar("OutputsT", bound=StageOutputs)


def to_dict(msg) -> dict:
    return MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def from_dict(d: dict, msg_type):
    return ParseDict(d, msg_type(), ignore_unknown_fields=True)


class Progress:
    """A thread-safe progress bar (click's), or quiet counting when not on a terminal."""

    def __init__(self, label: str, total: int, show: bool = True):
        self.label = label
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._bar = (
            click.progressbar(length=max(total, 1), label=f"{label:<10}", show_pos=True, show_eta=True, file=sys.stderr) if show else None
        )
        if self._bar:
            self._bar.__enter__()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if self._bar:
                self._bar.update(n)

    def close(self) -> None:
        if self._bar:
            self._bar.__exit__(None, None, None)
            self._bar = None


@dataclass
class RunContext:
    cfg: PipelineConfig
    store: ArtifactStore
    clients: dict[str, ServiceClient]
    manifest: Manifest
    show_progress: bool = True
    base_model: str = ""  # store prefix of the base model bundle
    evaluator_spec: str = ""  # what the evaluator loads: embedded:<prefix> | guo:<prefix>
    dataset: str = ""  # store prefix of the HumanML3D-layout dataset
    test_items: list = field(default_factory=list)  # the motiongpt protocol's test items (atom.evalplan)
    context_digests: dict = field(default_factory=dict)  # base_model / dataset / evaluator -> content digest
    assets: list = field(default_factory=list)  # what the run used, with content hashes (for the report)
    summary: dict = field(default_factory=dict)

    @property
    def run(self) -> str:
        return self.cfg.run

    def progress(self, label: str, total: int) -> Progress:
        return Progress(label, total, self.show_progress)

    def stage_inputs(self, name: str, upstream: Mapping[str, StageOutputs]) -> dict:
        """What stage `name`'s key is made of now: config, code version, upstream output digests
        (from their outputs records) and run-level input digests."""
        return stage_inputs(BY_NAME[name], self.cfg.to_dict(), {u: o.to_dict() for u, o in upstream.items() if o}, self.context_digests)

    @contextmanager
    def stage(self, name: str, upstream: Mapping[str, StageOutputs], kind: type[OutputsT]) -> Iterator[StageRun[OutputsT]]:
        """Run a stage body unless its outputs exist under its content key; record it either way.
        The body writes under `box.prefix`, sets `box.outputs` and names in `box.parts`
        ({part: [artifact keys]}) the artifacts whose content is the stage's output: each part's
        digest, and one over all, key what depends on it. After the block, `box.outputs` holds
        them (read it there: the digests are filled in on the way out)."""
        inputs = self.stage_inputs(name, upstream)
        key = stage_key(inputs)
        prefix = stage_prefix(name, key)
        record = f"{prefix}/{OUTPUTS_FILE}"
        if self.store.exists(record):
            done = self.store.get_json(record)
            self.manifest.reuse(name, key, inputs, done)
            log.info("stage %s: outputs under %s exist, reused", name, prefix)
            if self.show_progress:
                click.echo(f"{name:<10} done earlier ({prefix}), reused", err=True)
            yield StageRun(prefix, skip=True, outputs=kind.from_dict(done["outputs"]))
            return
        why = explain(inputs, self.manifest.stage(name).get("inputs"))
        log.info("stage %s runs under %s: %s", name, prefix, "; ".join(why))
        self.manifest.start(name, key, inputs, why)
        box: StageRun[OutputsT] = StageRun(prefix, skip=False)
        t0 = time.monotonic()
        try:
            yield box
            if box.outputs is None or not box.parts:
                raise RuntimeError(f"stage {name} set no outputs or named no output artifacts to digest")
            # Content only: names relative to the stage's prefix, which holds the key itself.
            parts = {
                part: digest_of(
                    {k[len(prefix) + 1 :] if k.startswith(prefix + "/") else k: sha256_hex(self.store.get_bytes(k)) for k in keys}
                )
                for part, keys in box.parts.items()
            }
            box.outputs = replace(box.outputs, parts=parts, digest=digest_of(parts))
            outputs = box.outputs.to_dict()
            self.store.put_json(
                record,
                {
                    "stage": name,
                    "key": key,
                    "inputs": inputs,
                    "outputs": outputs,
                    "finished": time.time(),
                    "seconds": round(time.monotonic() - t0, 3),
                    "attempts": self.manifest.stage(name).get("attempts", 1),
                },
            )
        except BaseException as exc:
            self.manifest.fail(name, f"{type(exc).__name__}: {exc}")
            metrics.record_failure(self.run, name)
            raise
        self.manifest.finish(name, outputs)
        metrics.stage_seconds.labels(self.run, name).set(time.monotonic() - t0)
        metrics.stage_items.labels(self.run, name).set(box.outputs.items)
        metrics.stage_state.labels(self.run, name).set(1)
        metrics.push(self.run)


@dataclass
class StageRun(Generic[OutputsT]):
    """The stage body's side of RunContext.stage: where to write, whether to skip (the outputs
    exist: `outputs` holds them), and what the body made."""

    prefix: str
    skip: bool
    outputs: OutputsT | None = None
    parts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def result(self) -> OutputsT:
        if self.outputs is None:
            raise RuntimeError(f"the stage under {self.prefix} finished without outputs")
        return self.outputs
