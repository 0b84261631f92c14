"""A failed command never changes what a run has finished: its manifest keeps the finished stage
record, with the failure noted beside it."""

import subprocess
import sys

from atom.pipeline.manifest import Manifest
from atom.store import LocalStore


def _finished_generate(store) -> Manifest:
    m = Manifest.load(store, "default", {"seed": 0})
    m.start("generate", "k1", {"config": 1}, ["first run"])
    m.finish("generate", {"samples": "stages/generate/k1/samples.jsonl", "digest": "d1"})
    return m


def test_a_failed_attempt_keeps_the_finished_record(tmp_path):
    store = LocalStore(tmp_path / "store")
    m = _finished_generate(store)
    m.start("generate", "k2", {"config": 2}, ["base model changed"])
    m.fail("generate", "ValueError: no such base model")
    again = Manifest(store, "default", store.get_json(m.key))
    stage = again.stage("generate")
    assert stage["state"] == "done" and stage["key"] == "k1"
    assert again.outputs("generate") == {"samples": "stages/generate/k1/samples.jsonl", "digest": "d1"}
    assert stage["last_failure"]["error"] == "ValueError: no such base model" and stage["last_failure"]["key"] == "k2"
    # Retrying the failed key counts its attempts; a success replaces the record and the note.
    m.start("generate", "k2", {"config": 2}, ["retry"])
    assert m.stage("generate")["attempts"] == 2 and m.stage("generate")["last_done"]["key"] == "k1"
    m.finish("generate", {"samples": "stages/generate/k2/samples.jsonl", "digest": "d2"})
    stage = m.stage("generate")
    assert stage["key"] == "k2" and "last_done" not in stage and "last_failure" not in stage


def test_a_stage_that_never_finished_is_marked_failed(tmp_path):
    m = Manifest.load(LocalStore(tmp_path / "store"), "default", {})
    m.start("render", "k1", {}, ["first run"])
    m.fail("render", "RuntimeError: renderer down")
    assert m.stage("render")["state"] == "failed" and "renderer down" in m.stage("render")["error"]


def test_a_command_with_a_bad_option_leaves_the_manifest_untouched(tmp_path):
    store = LocalStore(tmp_path / "store")
    m = _finished_generate(store)
    before = store.get_bytes(m.key)
    out = subprocess.run(
        [sys.executable, "-m", "atom.cli", "--store", str(tmp_path / "store"), "generate", "--run", "default", "--base-model", "../../etc"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "model.base" in out.stderr and "'..'" in out.stderr
    assert store.get_bytes(m.key) == before
