"""Reruns that are right: change one setting of each config section after a finished run, run
again, and (1) exactly the stages that setting reaches rerun, the rest are reused; (2) the report
equals the report of a fresh run of the new config, computed from nothing in a second store.

Two stores with their own services (started once): `a`, where the runs follow each other, and
`fresh`, wiped of every stage output before each fresh run (the world, the base model and the
embedded evaluator, which are inputs, are copied in, not recomputed).
"""

import base64
import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from atom.cli.context import Ctx
from atom.pipeline import bootstrap
from atom.pipeline.config import load_config
from atom.pipeline.graph import STAGES
from atom.pipeline.runner import run
from atom.runtime.launch import LocalServices
from atom.store import LocalStore
from services.judge.rules import ALLOWED_SCORES

sys.path.insert(0, str(Path(__file__).parent.parent / "judge"))
from fake_openai import FakeOpenAI, images_of, score_reply  # noqa: E402

pytestmark = pytest.mark.slow

BASE = {
    "run": "matrix",
    "world.clips": 200,
    "model.pretrain_preset": "tiny",
    "prompts.tasks": "integrity,temporal",
    "prompts.per_task": 6,
    "prompts.eval_per_task": 3,
    "generate.samples_per_prompt": 6,
    "generate.eval_samples_per_prompt": 2,
    "render.size": 64,
    "render.people_samples": 2,
    "pairs.score_filter": False,
    "train.epochs": 2,
    "train.batch_size": 4,
    "eval.replications": 2,
    "eval.mm_texts": 3,
    "eval.mm_samples": 3,
    "eval.general_texts": 12,
    "eval.general_samples": 2,
    "judge.backend": "vlm",
    "judge.model": "fake-vlm",
    "judge.batch": 8,
    "site.build": False,
}  # the run browser is tested in tests/report; no stage reads it
ALL = set(STAGES)
AFTER_GENERATE = ALL - {"prompts"}

# (config section, the change, the stages that must rerun, the stages that may). A stage reruns
# when its key changes: a setting it depends on, or the content of an output it reads. Between
# "must" and "may" lie the stages whose inputs may come out byte-identical (a prompt more that
# yields no new pair leaves the pairs, so the adapter, as they were).
CASES = [
    ("seed", {"seed": 1}, ALL, ALL),
    ("prompts", {"prompts.per_task": 7}, {"prompts", "generate", "render", "judge", "pairs"}, ALL),
    ("generate", {"generate.temperature": 0.8}, {"generate", "render", "judge", "pairs", "evaluate"}, AFTER_GENERATE),
    # The VLM judge sees the renders: a new size reaches every stage that reads them ...
    ("render", {"render.size": 96}, {"render", "judge", "evaluate"}, {"render", "judge", "pairs", "train", "evaluate"}),
    # ... while a setting that leaves them as they are stops at the render stage.
    ("render-same", {"render.people_samples": 3}, {"render"}, {"render"}),
    ("judge", {"judge.backend": "kinematic"}, {"render", "judge", "pairs", "evaluate"}, {"render", "judge", "pairs", "train", "evaluate"}),
    ("pairs", {"pairs.mixed_size": 4}, {"pairs", "train", "evaluate"}, {"pairs", "train", "evaluate"}),
    ("train", {"train.beta": 0.5}, {"train", "evaluate"}, {"train", "evaluate"}),
    ("eval", {"eval.replications": 3}, {"evaluate"}, {"evaluate"}),
    ("world", {"world.seed": 1}, AFTER_GENERATE, AFTER_GENERATE),  # a new world, base model and evaluator
]


def vlm_verdict(req, n):
    # A verdict that depends on what the frames show (so renders matter to the VLM judge), in the
    # task's scale. It reads the drawn area, not the bytes: two renderer processes have been seen
    # to differ in a single pixel of the same frame, which a real VLM would not notice either.
    text = json.dumps(req["messages"])
    allowed = ALLOWED_SCORES["temporal" if "Task: temporal order" in text else "integrity"]
    drawn = sum(ink(u) for u in images_of(req))
    index = int(drawn * 200)
    if req.get("temperature", 0) > 0 and "seed" in req and index % 3 == 0:
        index += req["seed"] % 2  # a sampled vote: on some motions the votes disagree
    return score_reply(allowed[index % len(allowed)])


def ink(data_url: str) -> float:
    px = np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("L"), np.int16)
    return float(np.mean(np.abs(px - px[0, 0]) > 30))


def _cfg(change: dict):
    return load_config(overrides={**BASE, **change})


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("reruns")
    os.environ["ATOM_CACHE_DIR"] = str(root / "cache")
    with FakeOpenAI(vlm_verdict) as judge:
        env = {"ATOM_JUDGE_BASE_URL": judge.base_url, "ATOM_JUDGE_API_KEY": "sk-test-not-a-real-key"}
        groups = {name: LocalServices(str(root / name), log_dir=root / f"logs-{name}", extra_env=env) for name in ("a", "fresh")}
        try:
            for g in groups.values():
                g.__enter__()
            for g in groups.values():
                g.wait_ready()
            yield {
                **{name: (root / name, Ctx(store_url=str(root / name), endpoints=g.endpoints())) for name, g in groups.items()},
                "judge": judge,
            }
        finally:
            for g in groups.values():
                g.stop()


def _reran(store_root: Path) -> set[str]:
    stages = json.loads((store_root / "runs/matrix/manifest.json").read_text())["stages"]
    return {name for name, s in stages.items() if not s.get("reused")}


def _report(store_root: Path) -> dict:
    return json.loads((store_root / "reports/matrix/report.json").read_text())


def _fresh_run(stores, cfg) -> dict:
    """The config run from no stage outputs at all (inputs copied from store a, never recomputed)."""
    fresh_root, cli = stores["fresh"]
    a_root, _ = stores["a"]
    for part in ("stages", "runs", "reports", "samples"):
        shutil.rmtree(fresh_root / part, ignore_errors=True)
    for prefix in (
        bootstrap.dataset_prefix_for(cfg),
        bootstrap.base_prefix_for(cfg),
        bootstrap.evaluator_prefix(bootstrap.dataset_prefix_for(cfg)),
    ):
        if (a_root / prefix).is_dir() and not (fresh_root / prefix).is_dir():
            shutil.copytree(a_root / prefix, fresh_root / prefix)
    run(cfg, cli, show_progress=False)
    return _report(fresh_root)


def test_same_config_twice_reruns_nothing(stores):
    a_root, cli = stores["a"]
    run(_cfg({}), cli, show_progress=False)
    first = _report(a_root)
    run(_cfg({}), cli, show_progress=False)
    assert _reran(a_root) == set()
    assert _report(a_root) == first


@pytest.mark.parametrize("section, change, must, may", CASES, ids=[c[0] for c in CASES])
def test_one_change_reruns_exactly_what_it_reaches(stores, section, change, must, may):
    a_root, cli = stores["a"]
    run(_cfg({}), cli, show_progress=False)  # the base config: all reused after the first test
    run(_cfg(change), cli, show_progress=False)
    reran = _reran(a_root)
    assert must <= reran <= may, reran
    # A stage that was reused read exactly what it read before: its key says so.
    stages = json.loads((a_root / "runs/matrix/manifest.json").read_text())["stages"]
    assert all(stages[n]["state"] == "done" for n in STAGES)
    if section in ("seed", "world"):
        # Every stage reran from new inputs (new prompts and sampling seeds, or a new world, base
        # model and evaluator), so no cached sample could be reused: a fresh run (a full pipeline
        # run, the costliest part of this test) would repeat the same computation.
        return
    assert _report(a_root) == _fresh_run(stores, _cfg(change))


def test_base_model_rewritten_under_the_same_prefix(stores):
    """New weights under the base model's prefix: everything that used the model reruns (the
    generator reloads it), and the result is what a fresh run on the new weights gives."""
    import torch

    from atom.mgpt.bundle import load_bundle, save_bundle

    a_root, cli = stores["a"]
    cfg = _cfg({})
    run(cfg, cli, show_progress=False)
    store = LocalStore(a_root)
    prefix = bootstrap.base_prefix_for(cfg)
    bundle = load_bundle(store, prefix)
    with torch.no_grad():
        for p in bundle.lm.model.parameters():
            p.mul_(1.05)
    save_bundle(store, prefix, bundle)
    run(cfg, cli, show_progress=False)
    assert _reran(a_root) == AFTER_GENERATE
    fresh_root, _ = stores["fresh"]
    shutil.rmtree(fresh_root / prefix, ignore_errors=True)  # take the new weights
    assert _report(a_root) == _fresh_run(stores, cfg)


def test_votes_agreement_and_the_pairs_they_keep(stores):
    """judge.votes asks each question N times; a score fewer votes agreed on than
    judge.min_agreement costs its motion its pairs (counted); raising N pays only for new votes."""
    a_root, cli = stores["a"]
    fake = stores["judge"]
    run(_cfg({"judge.votes": 3, "judge.min_agreement": 0.9}), cli, show_progress=False)
    stages = json.loads((a_root / "runs/matrix/manifest.json").read_text())["stages"]
    rows = [json.loads(line) for line in (a_root / stages["judge"]["outputs"]["judgements"]).read_text().splitlines()]
    scored = [r for r in rows if r["ok"]]
    assert scored and all(len(r["votes"]) == 3 for r in scored)
    assert {round(r["agreement"], 3) for r in scored} <= {0.667, 1.0}
    low = {}
    for r in scored:
        if r["agreement"] < 0.9:
            low[r["task"]] = low.get(r["task"], 0) + 1
    assert low, "the test verdicts should make some votes disagree"
    assert stages["pairs"]["outputs"]["motions_dropped_low_agreement"] == low
    calls = fake.calls
    run(_cfg({"judge.votes": 5, "judge.min_agreement": 0.9}), cli, show_progress=False)
    # The training prompts' questions and the held-out ones: two new votes each, nothing else.
    assert fake.calls - calls == 2 * (len(scored) + _held_out_questions(a_root))


def _held_out_questions(store_root: Path) -> int:
    stages = json.loads((store_root / "runs/matrix/manifest.json").read_text())["stages"]
    made_under = stages["evaluate"]["outputs"]["report_json"].rsplit("/", 1)[0]
    keys = set()
    for model in ("base", "atom"):
        for line in (store_root / made_under / f"eval-samples-{model}.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row.get("kind") == "judge" and row.get("motion"):
                keys.add((row["prompt_id"], row["motion"]))
    return len(keys)
