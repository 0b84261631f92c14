"""The pipeline's own metrics: a stage that fails raises the flag the "stage failed" alert reads,
and a stage that finishes records its figures."""

import pytest

from atom.pipeline import metrics
from atom.pipeline.config import load_config
from atom.pipeline.context import RunContext
from atom.pipeline.manifest import Manifest
from atom.pipeline.outputs import PromptsOutputs
from atom.store import LocalStore


def _value(name, run, stage):
    return metrics.PIPELINE_REGISTRY.get_sample_value(name, {"run": run, "stage": stage})


def test_a_failed_stage_raises_the_flag(tmp_path, monkeypatch):
    monkeypatch.delenv("ATOM_PUSHGATEWAY", raising=False)
    store = LocalStore(tmp_path / "store")
    cfg = load_config(overrides={"run": "metrics-probe"})
    ctx = RunContext(cfg=cfg, store=store, clients={}, manifest=Manifest.load(store, cfg.run, cfg.to_dict()), show_progress=False)
    with pytest.raises(RuntimeError, match="boom"):
        with ctx.stage("prompts", {}, PromptsOutputs):
            raise RuntimeError("boom")
    assert _value("atom_pipeline_stage_failed", "metrics-probe", "prompts") == 1
    assert ctx.manifest.stage("prompts")["state"] == "failed"
