"""What a training run leaves for people: TensorBoard event files that TensorBoard itself reads
back, MLflow runs when a tracking URI is set, and the adapter's model card."""

import sys
from pathlib import Path

import pytest

from services.trainer.logs import scalar_series
from services.trainer.pairs import save_pairs
from services.trainer.train import train_preference

sys.path.insert(0, str(Path(__file__).parent))
from test_train import config, make_pairs  # noqa: E402


@pytest.fixture
def trained(tiny_lm, store, tmp_path):
    save_pairs(store, "datasets/t/pairs.jsonl", make_pairs(4))
    result = train_preference(tiny_lm(), store, config(batch_size=2, epochs=3))
    return store, result


def test_tensorboard_reads_the_curves_back(trained, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store, result = trained
    logdir = tmp_path / "tb"
    store.get_tree("models/t/tensorboard", logdir)
    events = EventAccumulator(str(logdir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/margin", "train/accuracy", "train/lr"} <= tags
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == list(range(1, result.steps + 1))
    assert [round(e.value, 5) for e in loss] == [round(h["loss"], 5) for h in result.history]


def test_the_model_card_says_what_was_trained(trained):
    store, result = trained
    card = store.get_bytes(f"{result.adapter_prefix}/README.md").decode()
    assert card.startswith("---\nbase_model: ") and "library_name: peft" in card
    assert "Loss: IPO, beta 0.1" in card and "4 pairs" in card and "## Evaluation" in card


def test_mlflow_gets_the_run_when_a_tracking_uri_is_set(tiny_lm, store, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a folder store, as a server would keep it
    save_pairs(store, "datasets/t/pairs.jsonl", make_pairs(4))
    result = train_preference(tiny_lm(), store, config(batch_size=2, epochs=2, output_prefix="models/ml"))
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert len(runs) == 1 and runs[0].info.run_name == "ml"
    history = mlflow.MlflowClient().get_metric_history(runs[0].info.run_id, "train_loss")
    assert [m.step for m in history] == list(range(1, result.steps + 1))
    assert runs[0].data.params["loss"] == "ipo"


def test_scalar_series_skips_what_is_not_a_metric():
    series = scalar_series([{"step": 1, "epoch": 1, "loss": 0.5, "note": "x", "flag": True}, {"step": 2, "epoch": 1, "loss": 0.25}])
    assert series == {"train/loss": [(1, 0.5), (2, 0.25)]}
