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
    """The versions a run was made with, read from the installed packages' metadata: importing
    torch and transformers only to read `__version__` cost every atomctl command about 230 MB and
    2.5 s (measured with benchmarks/scale.py)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    return {
        "atom": __version__,
        "python": platform.python_version(),
        **{name: installed(name) for name in ("torch", "transformers", "grpcio", "numpy")},
    }


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
        failure = prev.get("last_failure", {})
        if prev.get("key") == key:
            attempts = prev.get("attempts", 0) + 1
        elif failure.get("key") == key:
            attempts = failure.get("attempts", 0) + 1
        else:
            attempts = 1
        entry = {"state": "running", "key": key, "inputs": inputs, "why": why, "started": time.time(), "attempts": attempts}
        # A finished record outlives the attempts after it until one of them finishes: a command
        # that fails (bad options, a service down) must not erase what the run has.
        done = prev if prev.get("state") == "done" else prev.get("last_done")
        if done:
            entry["last_done"] = {k: v for k, v in done.items() if k not in ("last_done", "last_failure")}
        self.data["stages"][name] = entry
        self.save()

    def finish(self, name: str, outputs: dict) -> None:
        s = self.data["stages"][name]
        s.pop("last_done", None)
        s.update(state="done", reused=False, finished=time.time(), seconds=round(time.time() - s["started"], 3), outputs=outputs)
        self.save()

    def reuse(self, name: str, key: str, inputs: dict, record: dict) -> None:
        """The stage's output exists under its key: point at it, with when and how it was made."""
        self.data["stages"][name] = {
            "state": "done",
            "reused": True,
            "key": key,
            "inputs": inputs,
            "outputs": record["outputs"],
            "finished": record.get("finished", 0.0),
            "seconds": record.get("seconds"),
            "attempts": record.get("attempts", 1),
        }
        self.save()

    def fail(self, name: str, error: str) -> None:
        """Record a failed attempt. If the stage had finished before, its finished record is kept
        (what later stages and `atomctl status` read) and the failure is noted beside it."""
        s = self.data["stages"].setdefault(name, {})
        done = s.pop("last_done", None)
        if done is None:
            s.update(state="failed", error=error, finished=time.time())
        else:
            done["last_failure"] = {"error": error, "key": s.get("key"), "attempts": s.get("attempts", 1), "finished": time.time()}
            self.data["stages"][name] = done
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
