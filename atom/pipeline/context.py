"""What the stages share during one run: config, store, service clients, manifest, progress."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import click
from google.protobuf.json_format import MessageToDict, ParseDict

from atom.pipeline import metrics
from atom.pipeline.config import PipelineConfig
from atom.pipeline.manifest import Manifest
from atom.runtime.client import ServiceClient
from atom.store import ArtifactStore

log = logging.getLogger("atom.pipeline")


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
        self._bar = click.progressbar(length=max(total, 1), label=f"{label:<10}", show_pos=True,
                                      show_eta=True, file=click.get_text_stream("stderr")) if show else None
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
    base_model: str = ""            # store prefix of the base model bundle
    evaluator_spec: str = ""        # what the evaluator loads: embedded:<prefix> | guo:<prefix>
    dataset: str = ""               # store prefix of the HumanML3D-layout dataset
    test_items: list = field(default_factory=list)  # the motiongpt protocol's test items (atom.evalplan)
    assets: list = field(default_factory=list)      # what the run used, with content hashes (for the report)
    summary: dict = field(default_factory=dict)

    @property
    def run(self) -> str:
        return self.cfg.run

    def key(self, name: str) -> str:
        return f"runs/{self.run}/{name}"

    def progress(self, label: str, total: int) -> Progress:
        return Progress(label, total, self.show_progress)

    @contextmanager
    def stage(self, name: str, inputs: str):
        """Run a stage body unless it already finished with these inputs; record it either way.
        The body sets `box["outputs"]`."""
        box: dict = {"skip": self.manifest.is_done(name, inputs), "outputs": self.manifest.outputs(name)}
        if box["skip"]:
            log.info("stage %s: already done, skipping", name)
            if self.show_progress:
                click.echo(f"{name:<10} done earlier (inputs {inputs}), skipped", err=True)
            yield box
            return
        self.manifest.start(name, inputs)
        t0 = time.monotonic()
        try:
            yield box
        except BaseException as exc:
            self.manifest.fail(name, f"{type(exc).__name__}: {exc}")
            raise
        self.manifest.finish(name, box["outputs"])
        metrics.stage_seconds.labels(self.run, name).set(time.monotonic() - t0)
        metrics.stage_items.labels(self.run, name).set(box["outputs"].get("items", 0))
        metrics.stage_state.labels(self.run, name).set(1)
        metrics.push(self.run)
