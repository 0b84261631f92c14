"""Pretraining end to end on a small world corpus with the tiny config (seconds)."""

import numpy as np
import pytest

from atom.mgpt.bundle import load_bundle
from atom.store import LocalStore
from services.generator.sampling import sample_motions  # a test may use two services; the code may not
from services.trainer.pretrain import PretrainConfig, PretrainError, pretrain


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from atom.motion.world.corpus import build_corpus

    root = tmp_path_factory.mktemp("world")
    build_corpus(root, 24, seed=3)
    return root


def test_pretrain_tiny_saves_a_working_bundle(tmp_path, corpus):
    store = LocalStore(tmp_path / "store")
    seen = []
    res = pretrain(
        corpus,
        store,
        "models/tiny-world",
        PretrainConfig.tiny(),
        progress=lambda stage, done, total, msg: seen.append((stage, done, total)),
    )
    assert {s for s, _, _ in seen} >= {"data", "vqvae", "lm", "save"}
    assert res.num_train_clips > 10 and res.codes_used > 1 and np.isfinite(res.lm_eval_loss)
    assert res.vocab_size > 515 + 3
    bundle = load_bundle(store, "models/tiny-world")
    assert bundle.info["source"] == "pretrain" and bundle.info["config"]["vq_steps"] == 30
    assert (res.vq_steps_done, res.lm_steps_done, res.stopped_early) == (30, 30, False)
    assert res.vq_mpjpe_mm > 0 and 0 < res.vq_mpjpe_rootrel_mm
    assert bundle.info["metrics"]["vq_steps_done"] == 30 and bundle.info["metrics"]["lm_steps_done"] == 30
    out = sample_motions(bundle, ["a person walks forward"], [0], max_tokens=6)
    assert out[0].joints.shape[1:] == (22, 3) and out[0].valid

    # Same corpus, config and seed -> the same weights; and, with a stable dataset name, the same
    # manifest from a copy of the corpus elsewhere (the manifest is the model's identity).
    import shutil

    copy = tmp_path / "elsewhere"
    shutil.copytree(corpus, copy)
    store2, store3 = LocalStore(tmp_path / "store2"), LocalStore(tmp_path / "store3")
    pretrain(corpus, store2, "models/tiny-world", PretrainConfig.tiny(), dataset_name="datasets/w")
    pretrain(copy, store3, "models/tiny-world", PretrainConfig.tiny(), dataset_name="datasets/w")
    a = store.get_bytes("models/tiny-world/vqvae.safetensors")
    b = store2.get_bytes("models/tiny-world/vqvae.safetensors")
    assert a == b
    assert store2.get_bytes("models/tiny-world/bundle.json") == store3.get_bytes("models/tiny-world/bundle.json")
    assert load_bundle(store2, "models/tiny-world").info["dataset"] == "datasets/w"


def test_a_time_budget_that_runs_out_is_reported(tmp_path, corpus):
    from dataclasses import replace

    store = LocalStore(tmp_path / "store")
    res = pretrain(corpus, store, "models/cut", replace(PretrainConfig.tiny(), time_budget_s=1e-6))
    assert res.stopped_early and res.vq_steps_done == 1 and res.lm_steps_done == 1
    assert load_bundle(store, "models/cut").info["metrics"]["lm_steps_done"] == 1


def test_config_validation_and_roundtrip():
    cfg = PretrainConfig.tiny(seed=4)
    assert PretrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(PretrainError, match="multiple of 4"):
        PretrainConfig(vq_window=30)
    with pytest.raises(PretrainError, match="unknown"):
        PretrainConfig.from_dict({"bogus": 1})


def test_missing_corpus(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        pretrain(tmp_path / "nope", LocalStore(tmp_path / "s"), "models/x", PretrainConfig.tiny())
