"""The embedded evaluator: its model (atom/embedded_evaluator.py), its training (the trainer's,
services/trainer/evaluator_training.py) and the ground-truth figures the evaluator service
measures with it (services/evaluator/embedded.py)."""

import json

import numpy as np
import pytest

from atom.store import LocalStore
from atom.embedded_evaluator import EmbeddedConfig, EmbeddedEvaluator, EmbeddedEvaluatorError, text_words
from services.evaluator.embedded import ground_truth_summary, with_ground_truth
from services.evaluator.records import TextMotionEvaluator
from services.trainer.evaluator_training import train_embedded_evaluator

SMALL = EmbeddedConfig(
    steps=80, batch_size=32, word_dim=32, text_hidden=48, motion_hidden=48, conv_channels=48, embed_dim=32, lr=3e-3, num_threads=1
)


@pytest.fixture(scope="module")
def trained(synthetic_corpus):
    ev = train_embedded_evaluator(synthetic_corpus, SMALL)
    assert "gt" not in ev.summary  # training does not measure it: the evaluator service does
    ev.summary["gt"] = ground_truth_summary(ev, synthetic_corpus, replications=3)
    return ev


def test_text_words_agree_for_free_and_tagged_text():
    assert text_words("A person walks forward, then squats.") == ["a", "person", "walk", "forward", "then", "squat"]
    assert text_words("a/DET person/NOUN walk/VERB") == ["a", "person", "walk"]


def test_trained_evaluator_separates_real_pairs(trained):
    assert isinstance(trained, TextMotionEvaluator)
    gt = trained.summary["gt"]
    assert gt["clips"] > 32
    # chance is 1/32 and 3/32
    assert gt["r1"]["mean"] > 0.3 and gt["r3"]["mean"] > 0.6
    assert gt["fid"]["mean"] is not None and gt["order"]["pairs"] > 0 and gt["count"]["pairs"] > 0
    assert trained.describe()["gt"]["split"] == "test"


def test_save_load_round_trip_and_batch_independence(trained, tmp_path):
    store = LocalStore(tmp_path)
    keys = trained.save(store, "evaluators/embedded/v1")
    assert keys == {"weights": "evaluators/embedded/v1/model.safetensors", "meta": "evaluators/embedded/v1/evaluator.json"}
    loaded = EmbeddedEvaluator.load(store, "evaluators/embedded/v1")
    rng = np.random.default_rng(0)
    motions = [rng.normal(size=(n, 263)).astype(np.float32) for n in (40, 77, 196, 250)]
    texts = ["a person squats twice.", "a person waves, then kicks.", "zebra unknown words"]
    a, b = trained.embed_motions(motions), loaded.embed_motions(motions)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(trained.embed_texts(texts), loaded.embed_texts(texts), atol=1e-6)
    np.testing.assert_allclose(loaded.embed_motions(motions[1:2])[0], a[1], atol=1e-5)
    assert a.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), SMALL.embedding_scale, rtol=1e-5)
    assert loaded.summary == {k: v for k, v in trained.summary.items() if k != "train_seconds"}  # no wall time saved


def test_training_is_seeded(synthetic_corpus, trained):
    again = train_embedded_evaluator(synthetic_corpus, SMALL)
    x = np.random.default_rng(1).normal(size=(60, 263)).astype(np.float32)
    np.testing.assert_allclose(again.embed_motions([x]), trained.embed_motions([x]), atol=1e-5)
    # The saved metadata names the evaluator by its hash in reports: no wall time in it.
    meta_again, meta_first = (json.loads(ev.to_artifacts()[1]) for ev in (again, trained))
    meta_first["summary"].pop("gt", None)  # measured on the module's evaluator by another test
    assert meta_again == meta_first
    # The ground-truth figures are a function of the weights and the data (the evaluator service
    # measures them once per evaluator and dataset): measured again, they are the same.
    with_ground_truth(again, synthetic_corpus, "synthetic")
    assert again.summary["gt"] == ground_truth_summary(again, synthetic_corpus)


def test_bad_inputs(trained, tmp_path):
    with pytest.raises(EmbeddedEvaluatorError, match="at least 8 frames"):
        trained.embed_motions([np.zeros((5, 263), np.float32)])
    with pytest.raises(EmbeddedEvaluatorError, match=r"\(T, 263\)"):
        trained.embed_motions([np.zeros((50, 10), np.float32)])
    w, meta = trained.to_artifacts()
    with pytest.raises(EmbeddedEvaluatorError, match="format_version"):
        EmbeddedEvaluator.from_artifacts(w, meta.replace(b'"format_version": 1', b'"format_version": 99'))
    with pytest.raises(EmbeddedEvaluatorError, match="batch_size"):
        EmbeddedConfig(batch_size=1)
