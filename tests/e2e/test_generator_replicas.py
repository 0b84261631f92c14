"""An embedded run starts two one-thread generator processes on CPUs (generate.replicas: auto) and
they make the same motions, byte for byte, as one generator process with both threads."""

import os
import sys
from pathlib import Path

import pytest

from atom.cli.context import Ctx
from atom.mgpt.bundle import save_bundle
from atom.pipeline.config import load_config
from atom.pipeline.runner import generator_replicas, run
from atom.runtime.cpus import available_cpus
from atom.store import LocalStore

sys.path.insert(0, str(Path(__file__).parent.parent / "generator"))
from gen_tiny_models import make_tiny_bundle  # noqa: E402

pytestmark = pytest.mark.slow


def _generate(tmp_path, name, replicas):
    store = LocalStore(tmp_path / name)
    save_bundle(store, "models/base-test", make_tiny_bundle())
    cfg = load_config(
        overrides={
            "world.clips": 100,
            "model.base": "models/base-test",
            "model.device": "cpu",
            "prompts.per_task": 6,
            "generate.samples_per_prompt": 4,
            "generate.batch_prompts": 2,
            "generate.replicas": replicas,
        }
    )
    os.environ["ATOM_CACHE_DIR"] = str(tmp_path / "cache")
    ctx = run(cfg, Ctx(store_url=str(store.root)), until="generate", show_progress=False)
    rows = store.get_jsonl(ctx.summary["stages"]["generate"].motions)
    motions = {(r["prompt_id"], r["sample_index"]): store.get_bytes(r["motion"]) for r in rows if r["motion"]}
    return generator_replicas(cfg), len(ctx.clients["generator"].addresses), motions


@pytest.mark.skipif(available_cpus() < 2, reason="auto starts one generator on a 1-CPU machine")
def test_two_generator_processes_make_the_same_motions_as_one(tmp_path):
    planned, started, two = _generate(tmp_path, "two", "auto")
    assert planned == started == 2
    planned, started, one = _generate(tmp_path, "one", 1)
    assert planned == started == 1
    assert len(two) == 3 * 6 * 4 and two == one
