import json

import numpy as np
import pytest

from services.evaluator.records import ModelSample, RealSample, SampleError
from services.evaluator.report import EvaluationInputError, REAL, Report, evaluate

D = 8


class ToyEvaluator:
    """Text 'clip k' -> a fixed random vector; a motion's embedding is its first D feature dims'
    mean, so a motion built around that vector matches its text."""

    name = "toy"

    def __init__(self, num_texts=200, seed=0):
        self.table = np.random.default_rng(seed).normal(size=(num_texts, D))
        self.calls = []

    def embed_texts(self, texts):
        self.calls.append(("text", len(texts)))
        return np.stack([self.table[int(t.split()[-1])] for t in texts])

    def embed_motions(self, features):
        self.calls.append(("motion", len(features)))
        return np.stack([f[:, :D].mean(0) for f in features])

    def describe(self):
        return {"name": self.name, "embedding_dim": D}


def motion(vec, noise, rng, frames=40):
    f = np.zeros((frames, 263), np.float32)
    f[:, :D] = vec + noise * rng.normal(size=(1, D))
    return f


def make_models(ev, rng, n_prompts=64, gens=4):
    models = {"base": [], "tuned": []}
    for task in ("temporal", "frequency"):
        for p in range(n_prompts):
            k = p if task == "temporal" else p + 100
            for g in range(gens):
                models["base"].append(
                    ModelSample(f"clip {k}", task, f"{task}-{p}", motion(ev.table[k], 1.5, rng), score=float(rng.integers(0, 4)))
                )
                models["tuned"].append(
                    ModelSample(f"clip {k}", task, f"{task}-{p}", motion(ev.table[k], 0.2, rng), score=float(rng.integers(2, 6)))
                )
    return models


def make_real(ev, rng):
    real = {"general": [RealSample(f"r{k}", (f"clip {k}", f"clip {k}"), motion(ev.table[k], 0.1, rng)) for k in range(200)]}
    real["temporal"] = real["general"][:64]
    return real


def test_evaluate_end_to_end(tmp_path):
    from atom.store import LocalStore

    ev = ToyEvaluator()
    rng = np.random.default_rng(0)
    models = make_models(ev, rng)
    real = make_real(ev, rng)
    report = evaluate(models, real, ev, replications=5, seed=3, reference={"general": real["general"][::-1]})
    assert report.tasks == ["temporal", "frequency"]
    assert report.models == ["base", "tuned"]
    base, tuned = report.row("temporal", "base"), report.row("temporal", "tuned")
    assert tuned.metrics["r1"].mean > base.metrics["r1"].mean
    assert tuned.metrics["mm_dist"].mean < base.metrics["mm_dist"].mean
    assert tuned.num_samples == 256 and tuned.num_prompts == 64
    assert tuned.metrics["mmodality"].n == 5 and np.isfinite(tuned.metrics["mmodality"].mean)
    real_row = report.row("temporal", REAL)
    assert real_row.metrics["r1"].mean > 0.9
    assert abs(report.row("frequency", REAL).metrics["fid"].mean) < 1e-6  # same clips, reversed
    assert any("used 'general'" in n for n in report.notes)
    # judge tables: tuned scores are higher by construction
    c = report.comparison("temporal", "tuned")
    assert c.difference.above_zero and c.outcome.win_rate > 0.8
    # same inputs + seed -> identical report
    again = evaluate(models, real, ToyEvaluator(), replications=5, seed=3, reference={"general": real["general"][::-1]})
    assert again.to_json() == report.to_json()
    # round trip and storage
    assert Report.from_json(report.to_json()).to_json() == report.to_json()
    md = report.to_markdown()
    assert "| task | model | MM-Dist" in md and "| temporal | tuned |" in md and "win rate" in md
    keys = report.save(LocalStore(tmp_path), "reports/run1")
    assert set(keys) == {"json", "markdown", "metrics", "judge_scores", "win_rates"}
    png = (tmp_path / "reports/run1/plots/metrics.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "reports/run1/report.json").read_text())["config"]["replications"] == 5


def test_embeddings_are_batched_and_texts_deduplicated():
    ev = ToyEvaluator()
    rng = np.random.default_rng(1)
    models = make_models(ev, rng, n_prompts=40, gens=3)
    evaluate({"base": models["base"]}, make_real(ev, rng), ev, replications=2)
    texts = sum(n for kind, n in ev.calls if kind == "text")
    assert texts == 80 + 200  # distinct captions of the model + distinct real captions
    assert max(n for _, n in ev.calls) <= 64


def test_small_sets_report_nan_not_crash():
    ev = ToyEvaluator()
    rng = np.random.default_rng(2)
    models = {"base": [ModelSample(f"clip {k}", "integrity", f"p{k}", motion(ev.table[k], 0.5, rng)) for k in range(10)]}
    report = evaluate(models, make_real(ev, rng), ev, replications=3)
    row = report.row("integrity", "base")
    assert np.isnan(row.metrics["r1"].mean) and np.isfinite(row.metrics["fid"].mean)
    assert "n/a" in report.to_markdown()
    assert any("fewer than 32" in n for n in report.notes)
    Report.from_json(report.to_json())  # NaN survives as null


def test_bad_inputs():
    ev = ToyEvaluator()
    rng = np.random.default_rng(3)
    with pytest.raises(EvaluationInputError, match="no models"):
        evaluate({}, make_real(ev, rng), ev)
    models = {"base": [ModelSample("clip 1", "temporal", "p", motion(ev.table[1], 0.1, rng))]}
    with pytest.raises(EvaluationInputError, match="no real clips for tasks"):
        evaluate(models, {"frequency": make_real(ev, rng)["general"]}, ev)
    with pytest.raises(EvaluationInputError, match="baseline"):
        evaluate(models, make_real(ev, rng), ev, baseline="nope")
    with pytest.raises(SampleError, match="neither features nor joints"):
        ModelSample("x", "temporal", "p")
    with pytest.raises(SampleError, match=r"\(T, 263\)"):
        ModelSample("x", "temporal", "p", features=np.zeros((5, 10)))


def test_joints_only_samples_are_converted():
    ev = ToyEvaluator()
    rng = np.random.default_rng(4)
    joints = np.cumsum(rng.normal(0, 0.01, size=(41, 22, 3)), axis=0).astype(np.float32) + np.array([0, 1.0, 0])
    models = {"base": [ModelSample(f"clip {k}", "temporal", f"p{k}", joints=joints) for k in range(3)]}
    report = evaluate(models, make_real(ev, rng), ev, replications=2)
    assert report.row("temporal", "base").num_samples == 3
    assert ("motion", 3) in ev.calls


def test_multimodality_uses_the_prompts_sampled_most_when_others_have_a_few():
    from services.evaluator.report import EvaluationConfig, _multimodality_plan

    cfg = EvaluationConfig(mm_num_texts=3, mm_generations=30)
    groups = [list(range(30))] * 3 + [list(range(5))] * 10 + [[0]] * 4
    notes = []
    eligible, gens = _multimodality_plan(groups, cfg, "m", "general", notes)
    assert (eligible, gens) == ([0, 1, 2], 30) and not notes
    # Too few prompts with 30: as many generations as mm_num_texts prompts share, with a note.
    eligible, gens = _multimodality_plan([list(range(30))] + [list(range(5))] * 10, cfg, "m", "general", notes)
    assert gens == 5 and len(eligible) == 11 and "3 prompts x 5 generations" in notes[-1]


def test_explicit_arguments_override_the_config():
    """One rule (as in sample_motions): `config` gives the settings, replications / seed given
    explicitly override its fields; an argument not given leaves the config's value."""
    from services.evaluator.report import EvaluationConfig

    ev = ToyEvaluator()
    rng = np.random.default_rng(5)
    models = {"base": make_models(ev, rng, n_prompts=40, gens=2)["base"]}
    real = make_real(ev, rng)
    cfg = EvaluationConfig(replications=3, seed=5, group_size=16)
    alone = evaluate(models, real, ev, config=cfg)
    assert (alone.config["replications"], alone.config["seed"], alone.config["group_size"]) == (3, 5, 16)
    mixed = evaluate(models, real, ev, replications=2, config=cfg)
    assert (mixed.config["replications"], mixed.config["seed"], mixed.config["group_size"]) == (2, 5, 16)
    explicit = evaluate(models, real, ev, 3, 5, config=EvaluationConfig(group_size=16))
    assert explicit.to_json() == alone.to_json()
    default = evaluate(models, real, ev)
    assert (default.config["replications"], default.config["seed"]) == (EvaluationConfig().replications, 0)
