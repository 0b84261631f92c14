"""runs/<run>/manifest.json: which stage outputs (by content key, atom.pipeline.graph) the run's
last invocation used, whether each was made or reused, why it ran, and how long it took.

The stage outputs themselves live under stages/<stage>/<key>/ and say on their own whether they
are complete (outputs.json, written last); the manifest is the run's pointer to them and its log.
It is rewritten (atomically, by the store) after every state change.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field

from atom import __version__
from atom.store import ArtifactNotFound, ArtifactStore



def versions() -> dict:
    import grpc
    import numpy
    import torch
    import transformers

    return {"atom": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "grpcio": grpc.__version__, "numpy": numpy.__version__}


@dataclass
class Manifest:
    store: ArtifactStore
    run: str
    data: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"runs/{self.run}/manifest.json"

    @classmethod
    def load(cls, store: ArtifactStore, run: str, config: dict) -> "Manifest":
        m = cls(store, run)
        try:
            m.data = store.get_json(m.key)
        except ArtifactNotFound:
            m.data = {"run": run, "created": time.time(), "stages": {}}
        m.data["config"] = config
        m.data["versions"] = versions()
        m.save()
        return m

    def save(self) -> None:
        self.store.put_json(self.key, self.data)

    def stage(self, name: str) -> dict:
        return self.data["stages"].get(name, {})

    def start(self, name: str, key: str, inputs: dict, why: list[str]) -> None:
        prev = self.stage(name)
        attempts = prev.get("attempts", 0) + 1 if prev.get("key") == key else 1
        self.data["stages"][name] = {"state": "running", "key": key, "inputs": inputs, "why": why,
                                     "started": time.time(), "attempts": attempts}
        self.save()

    def finish(self, name: str, outputs: dict) -> None:
        s = self.data["stages"][name]
        s.update(state="done", reused=False, finished=time.time(), seconds=round(time.time() - s["started"], 3),
                 outputs=outputs)
        self.save()

    def reuse(self, name: str, key: str, inputs: dict, record: dict) -> None:
        """The stage's output exists under its key: point at it, with when and how it was made."""
        self.data["stages"][name] = {"state": "done", "reused": True, "key": key, "inputs": inputs,
                                     "outputs": record["outputs"], "finished": record.get("finished", 0.0),
                                     "seconds": record.get("seconds"), "attempts": record.get("attempts", 1)}
        self.save()

    def fail(self, name: str, error: str) -> None:
        s = self.data["stages"].setdefault(name, {})
        s.update(state="failed", error=error, finished=time.time())
        self.save()

    def outputs(self, name: str) -> dict:
        return self.stage(name).get("outputs", {})


def run_output(store: ArtifactStore, run: str, stage: str, field: str) -> str:
    """The store key a run's last invocation used for one output (e.g. ("train", "adapter")), from
    its manifest: what scripts and tools read instead of guessing paths."""
    try:
        stages = store.get_json(Manifest(store, run).key).get("stages", {})
    except ArtifactNotFound:
        raise ArtifactNotFound(f"runs/{run}/manifest.json (run `atomctl run-pipeline --run {run}` first)") from None
    value = stages.get(stage, {}).get("outputs", {}).get(field)
    if not value:
        raise ArtifactNotFound(f"the {stage} stage's {field} in runs/{run}/manifest.json (run that stage first)")
    return value
