from pathlib import Path

import pytest

from atom.pipeline.config import ConfigError, PipelineConfig, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_default_yaml_matches_the_dataclass_defaults():
    """configs/default.yaml documents every key; it must say what the code does."""
    assert load_config(ROOT / "configs" / "default.yaml").to_dict() == PipelineConfig().validate().to_dict()


def test_overrides_and_errors(tmp_path):
    cfg = load_config(overrides={"prompts.tasks": "temporal,frequency", "train.epochs": 3, "pairs.score_filter": "false"})
    assert cfg.prompts.tasks == ["temporal", "frequency"] and cfg.train.epochs == 3 and not cfg.pairs.score_filter
    with pytest.raises(ConfigError, match="judge.bogus"):
        load_config(overrides={"judge.bogus": 1})
    with pytest.raises(ConfigError, match="prompts.tasks"):
        load_config(overrides={"prompts.tasks": "dance"})
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(overrides={"train.epochs": "many"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts: [unclosed")
    with pytest.raises(ConfigError, match="does not parse"):
        load_config(bad)
    toml = tmp_path / "c.toml"
    toml.write_text('seed = 4\n[judge]\nbackend = "vlm"\n')
    assert load_config(toml).judge.backend == "vlm"
    assert load_config().digest("prompts") != load_config(overrides={"seed": 1}).digest("prompts")


def test_logprobs_mode_is_checked():
    assert load_config().train.logprobs == "sum"
    assert load_config(overrides={"train.logprobs": "mean"}).train.logprobs == "mean"
    with pytest.raises(ConfigError, match="train.logprobs"):
        load_config(overrides={"train.logprobs": "max"})


def test_rpo_alpha_is_checked():
    assert load_config(overrides={"train.rpo_alpha": "0.5"}).train.rpo_alpha == 0.5
    with pytest.raises(ConfigError, match="train.rpo_alpha"):
        load_config(overrides={"train.rpo_alpha": "-1"})
