"""One strict config: every kind of wrong value is refused at load time with the key named, each
default is written once (atom.settings) and the services, the protos and configs/default.yaml
agree with it."""

import subprocess
import sys
from pathlib import Path

import pytest

from atom.pipeline.config import ConfigError, PipelineConfig, load_config, load_config_with_sources, show
from atom.settings import EvalSettings, GenerateSettings, PairSettings, RenderSettings, TrainSettings

ROOT = Path(__file__).resolve().parent.parent


def test_default_yaml_matches_the_schema():
    """configs/default.yaml documents every key; it must say what the code does."""
    assert load_config(ROOT / "configs" / "default.yaml").to_dict() == PipelineConfig().to_dict()


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("train.epochs", 2.7, "valid integer"),  # a float where an int goes
        ("train.lora_dropout", True, "valid number"),  # a bool where a float goes
        ("train.epochs", "many", "valid integer"),
        ("render.style", "meshy", "'skeleton' or 'mesh'"),  # an unknown choice, with the choices
        ("prompts.backend", "gpt", "'offline' or 'llm'"),
        ("eval.evaluator", "bogus", "embedded, or guo"),
        ("prompts.tasks", "integrity,dance", "'integrity', 'temporal' or 'frequency'"),
        ("train.beta", -0.1, "greater than 0"),  # out of range, with the bound
        ("render.size", 16, "greater than or equal to 32"),
        ("generate.top_p", 1.5, "less than or equal to 1"),
        ("model.device", "tpu", "cuda"),
        ("judge.bogus", 1, "unknown key"),  # a typo
    ],
)
def test_wrong_values_fail_at_load_time_naming_the_key(key, value, words):
    with pytest.raises(ConfigError) as err:
        load_config(overrides={key: value})
    msg = str(err.value)
    shown = repr(value.split(",")[-1]) if isinstance(value, str) and "," in value else repr(value)  # the bad item
    assert f"'{key}'" in msg and words in msg and shown in msg


def test_files_flags_and_set_in_that_order(tmp_path):
    c = tmp_path / "c.yaml"
    c.write_text("seed: 4\ntrain: {beta: 0.2, epochs: 3}\n")
    cfg, src = load_config_with_sources(c, {"train.beta": 0.3}, {"train.beta": "0.4", "train.target_modules": "q,k,v"})
    assert (cfg.seed, cfg.train.epochs, cfg.train.beta, cfg.train.target_modules) == (4, 3, 0.4, ["q", "k", "v"])
    assert src["seed"] == f"file {c}" and src["train.beta"] == "--set" and src["judge.model"] == "default"
    text = show(cfg, src)
    assert "beta: 0.4  # --set" in text and "epochs: 3  # file" in text and "hard cap on new judge spend" in text
    toml = tmp_path / "c.toml"
    toml.write_text('seed = 4\n[judge]\nbackend = "vlm"\n')
    assert load_config(toml).judge.backend == "vlm"
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts: [unclosed")
    with pytest.raises(ConfigError, match="does not parse"):
        load_config(bad)
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(sets={"train.epochs": "2.7"})  # --set values are typed, then checked


def test_one_place_for_each_default():
    """The services fill a request's unset fields from atom.settings: an empty request gives the
    pipeline's defaults, whichever way it reaches them."""
    from atom.v1 import common_pb2, generator_pb2, renderer_pb2, trainer_pb2
    from services.generator.server import sampling_from_proto
    from services.renderer.options import RenderOptions
    from services.trainer.config import LoraSettings, TrainConfig
    from services.trainer.server import config_from_request

    t = TrainSettings()
    empty = config_from_request(
        trainer_pb2.StartTrainingRequest(
            base=common_pb2.ModelRef(base="models/b"), pairs=common_pb2.ArtifactRef(key="p.jsonl"), output_prefix="o"
        )
    )
    direct = TrainConfig(pairs_key="p.jsonl", output_prefix="o")
    for c in (empty, direct):
        assert (c.loss, c.beta, c.lr, c.batch_size, c.epochs, c.rpo_alpha) == (
            t.algorithm,
            t.beta,
            t.learning_rate,
            t.batch_size,
            t.epochs,
            t.rpo_alpha,
        )
        assert c.uses_average_logprobs == (t.logprobs == "mean")
        assert (c.lora.r, c.lora.alpha, c.lora.dropout, list(c.lora.target_modules)) == (
            t.lora_r,
            t.lora_alpha,
            t.lora_dropout,
            t.target_modules,
        )
    assert LoraSettings().r == t.lora_r
    # A real 0 can be asked for where 0 is a value.
    zero = config_from_request(
        trainer_pb2.StartTrainingRequest(
            base=common_pb2.ModelRef(base="models/b"),
            pairs=common_pb2.ArtifactRef(key="p.jsonl"),
            output_prefix="o",
            config=trainer_pb2.TrainingConfig(lora_dropout=0.0),
        )
    )
    assert zero.lora.dropout == 0.0
    g = GenerateSettings()
    s = sampling_from_proto(generator_pb2.SamplingParams(), 8)
    assert (s.temperature, s.top_p, s.decoding) == (g.temperature, g.top_p, "constrained")
    assert sampling_from_proto(generator_pb2.SamplingParams(top_k=0), 8, "motiongpt").top_k == 0  # off, asked for
    assert sampling_from_proto(generator_pb2.SamplingParams(), 8, "motiongpt").top_k == 50
    r = RenderSettings()
    o = RenderOptions.with_defaults(
        **{k: getattr(renderer_pb2.RenderOptions(), k) for k in ("form", "interval", "width", "height", "style", "camera")}
    )
    assert (o.form, o.interval, o.width, o.style) == (r.form, r.interval, r.size, r.style)
    from services.evaluator.report import EvaluationConfig

    assert EvaluationConfig().replications == EvalSettings().replications
    assert PairSettings().min_chosen_score is None and not trainer_pb2.BuildPairsRequest().HasField("min_chosen_score")


def test_config_show_and_a_bad_value_exit_codes(tmp_path):
    def atomctl(*args):
        return subprocess.run([sys.executable, "-m", "atom.cli", "--store", str(tmp_path / "s"), *args], capture_output=True, text=True)

    out = atomctl("config", "show", "--set", "train.beta=0.1", "--algorithm", "ipo")
    assert out.returncode == 0, out.stderr
    assert "beta: 0.1  # --set" in out.stdout and "algorithm: ipo  # flag" in out.stdout
    bad = atomctl("run-pipeline", "--set", "train.epochs=2.7")
    assert bad.returncode == 5 and "train.epochs" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("*.npz"))  # nothing was built


def test_a_stage_command_without_its_inputs_says_so_before_starting_anything(tmp_path):
    import time

    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "atom.cli", "--store", str(tmp_path / "s"), "train"], capture_output=True, text=True)
    assert out.returncode == 4, out.stderr
    assert "stage 'train' needs the output of stage 'pairs'" in out.stderr and "atomctl pairs" in out.stderr
    assert time.monotonic() - t0 < 30  # no services, no world, no pretraining
    assert not (tmp_path / "s" / "datasets").exists() and not (tmp_path / "s" / "models").exists()


def test_set_reads_exponent_notation_as_a_number():
    # YAML 1.1 (PyYAML) reads 1e-3 as a string; a --set value means the number.
    cfg = load_config(sets={"train.learning_rate": "1e-3", "train.beta": "2.5E-1"})
    assert cfg.train.learning_rate == 0.001 and cfg.train.beta == 0.25
