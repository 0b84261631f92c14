"""Trainer.StartTraining's config message -> TrainConfig: defaults, the log-prob mode, bad values."""

import pytest

from atom.runtime.errors import InvalidArgument
from atom.v1 import common_pb2, trainer_pb2
from services.trainer.server import config_from_request


def request(**config) -> trainer_pb2.StartTrainingRequest:
    return trainer_pb2.StartTrainingRequest(
        base=common_pb2.ModelRef(base="models/base"),
        pairs=common_pb2.ArtifactRef(key="datasets/r/pairs.jsonl"),
        config=trainer_pb2.TrainingConfig(**config),
        output_prefix="models/r",
    )


def test_empty_config_gives_the_one_place_defaults():
    from atom.settings import TrainSettings

    d = TrainSettings()
    cfg = config_from_request(request())
    assert (cfg.loss, cfg.beta, cfg.lr, cfg.batch_size, cfg.epochs) == (d.algorithm, d.beta, d.learning_rate, d.batch_size, d.epochs)
    assert cfg.uses_average_logprobs == (d.logprobs == "mean")
    # The paper's recipe, asked for: IPO with beta 0.1 and TRL's per-token mean.
    paper = config_from_request(request(algorithm="ipo", beta=0.1, logprobs="mean"))
    assert (paper.loss, paper.beta, paper.uses_average_logprobs) == ("ipo", 0.1, True)


@pytest.mark.parametrize("mode, average", [("sum", False), ("mean", True)])
def test_logprobs_mode_overrides_the_algorithm_default(mode, average):
    assert config_from_request(request(logprobs=mode)).uses_average_logprobs is average
    assert config_from_request(request(algorithm="kto", logprobs=mode)).uses_average_logprobs is average


def test_unknown_logprobs_mode_names_the_field():
    with pytest.raises(InvalidArgument, match="config.logprobs"):
        config_from_request(request(logprobs="max"))


def test_rpo_alpha_passes_through_and_a_negative_one_is_refused():
    assert config_from_request(request()).rpo_alpha == 0.0
    assert config_from_request(request(rpo_alpha=0.5)).rpo_alpha == 0.5
    with pytest.raises(InvalidArgument, match="rpo_alpha"):
        config_from_request(request(rpo_alpha=-1))
