"""Stage outputs cross the controller as frozen records (atom.pipeline.outputs): what a stage body
sets is what is stored, with its digests, and what a reused stage hands on is the same record."""

import dataclasses
import json

import pytest

from atom.pipeline.config import load_config
from atom.pipeline.context import RunContext
from atom.pipeline.manifest import Manifest
from atom.pipeline.outputs import GenerateOutputs, JudgeOutputs, OutputsRecordError, PairsOutputs, PromptsOutputs, need, outputs_from_record
from atom.store import LocalStore


def _ctx(store):
    cfg = load_config(overrides={"run": "outputs-probe"})
    return RunContext(cfg=cfg, store=store, clients={}, manifest=Manifest.load(store, cfg.run, cfg.to_dict()), show_progress=False)


def _prompts_stage(ctx, text: bytes):
    with ctx.stage("prompts", {}, PromptsOutputs) as box:
        if box.skip:
            return box.result
        ctx.store.put_bytes(f"{box.prefix}/prompts.jsonl", text)
        ctx.store.put_bytes(f"{box.prefix}/eval-prompts.jsonl", b"{}\n")
        box.outputs = PromptsOutputs(
            train=f"{box.prefix}/prompts.jsonl", eval=f"{box.prefix}/eval-prompts.jsonl", items=1, per_task={"integrity": 1}, eval_items=1
        )
        box.parts = {"train": [f"{box.prefix}/prompts.jsonl"], "eval": [f"{box.prefix}/eval-prompts.jsonl"]}
    return box.result


def test_a_finished_stage_hands_on_its_digests_and_a_reused_one_the_same_record(tmp_path):
    store = LocalStore(tmp_path / "store")
    made = _prompts_stage(_ctx(store), b'{"text": "a"}\n')
    assert set(made.parts) == {"train", "eval"} and len(made.digest) == 64
    record = json.loads(next((tmp_path / "store/stages/prompts").rglob("outputs.json")).read_text())
    assert record["outputs"] == made.to_dict()
    again = _prompts_stage(_ctx(store), b"never written: the stage is reused\n")
    assert again == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.items = 2  # type: ignore[misc]


def test_a_stage_body_that_sets_no_outputs_fails_and_is_recorded_failed(tmp_path):
    ctx = _ctx(LocalStore(tmp_path / "store"))
    with pytest.raises(RuntimeError, match="set no outputs"):
        with ctx.stage("prompts", {}, PromptsOutputs):
            pass
    assert ctx.manifest.stage("prompts")["state"] == "failed"


def test_records_of_earlier_and_later_versions_load():
    # A pairs record from before motions_dropped_low_agreement existed, with a field from a later one.
    old = {
        "dataset": "d.jsonl",
        "pairs": "mixed.jsonl",
        "items": 3,
        "pairs_per_task": {"temporal": 3},
        "parts": {"all": "x"},
        "digest": "y",
        "from_the_future": 1,
    }
    pairs = outputs_from_record("pairs", old)
    assert isinstance(pairs, PairsOutputs) and pairs.motions_dropped_low_agreement == {}
    assert pairs.items == 3 and "from_the_future" not in pairs.to_dict()


def test_an_incomplete_record_says_which_stage_to_rerun():
    with pytest.raises(OutputsRecordError, match=r"generate stage.*atomctl generate"):
        GenerateOutputs.from_dict({"items": 4})


def test_need_names_the_missing_upstream():
    up = {"judge": JudgeOutputs(judgements="j.jsonl")}
    assert need(up, JudgeOutputs).judgements == "j.jsonl"
    with pytest.raises(KeyError, match="generate stage"):
        need(up, GenerateOutputs)
