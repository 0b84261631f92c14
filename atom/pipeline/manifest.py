"""runs/<run>/manifest.json: what each stage consumed, produced and whether it finished.

A stage is skipped on a re-run when the manifest says it finished with the same inputs digest.
The manifest is rewritten (atomically, by the store) after every state change, so a run killed at
any point restarts from the last finished stage; inside a stage, the services' caches make the
resent work free.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field

from atom import __version__
from atom.store import ArtifactNotFound, ArtifactStore

STAGES = ("prompts", "generate", "render", "judge", "pairs", "train", "evaluate")


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

    def is_done(self, name: str, inputs: str) -> bool:
        s = self.stage(name)
        return s.get("state") == "done" and s.get("inputs") == inputs

    def start(self, name: str, inputs: str) -> None:
        prev = self.stage(name)
        self.data["stages"][name] = {"state": "running", "inputs": inputs, "started": time.time(),
                                     "attempts": prev.get("attempts", 0) + 1}
        self.save()

    def finish(self, name: str, outputs: dict) -> None:
        s = self.data["stages"][name]
        s.update(state="done", finished=time.time(), seconds=round(time.time() - s["started"], 3), outputs=outputs)
        self.save()

    def fail(self, name: str, error: str) -> None:
        s = self.data["stages"].setdefault(name, {})
        s.update(state="failed", error=error, finished=time.time())
        self.save()

    def outputs(self, name: str) -> dict:
        return self.stage(name).get("outputs", {})
