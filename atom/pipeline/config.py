"""The pipeline's configuration: one validated tree, loaded from defaults, a YAML/TOML file, flags
and `--set SECTION.KEY=VALUE`, in that order of precedence.

Each section is the settings of one service (atom.settings), composed here, never repeated; the
services fill the defaults of a request from the same section classes. Values are checked when
the config is loaded, strictly: a wrong type (`epochs: 2.7`, `lora_dropout: true`), an unknown
choice (`render.style: meshy`) or a number out of range fails then, with the key, the value and
what is allowed, instead of failing (or doing something else) an hour later.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from atom.settings import (
    DECODINGS,
    FORMS,
    EvalSettings,
    GenerateSettings,
    JudgeSettings,
    ModelSettings,
    PairSettings,
    PromptSettings,
    RenderSettings,
    Section,
    SiteSettings,
    TrainSettings,
    WorldSettings,
)

__all__ = ["ConfigError", "PipelineConfig", "load_config", "ConfigSource", "DECODINGS", "FORMS"]


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key, the value and what is allowed."""


class PipelineConfig(Section):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    run: str = Field(
        "default", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", description="Run name: runs/<run>/manifest.json and reports/<run>/."
    )
    seed: int = Field(0, description="Seed for prompts, sampling, pairs, training and evaluation draws.")
    world: WorldSettings = Field(default_factory=WorldSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    generate: GenerateSettings = Field(default_factory=GenerateSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    pairs: PairSettings = Field(default_factory=PairSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    site: SiteSettings = Field(default_factory=SiteSettings)

    @field_validator("run")
    @classmethod
    def _run_name(cls, v: str) -> str:
        if v.startswith("."):
            raise ValueError("a run name cannot start with '.'")
        return v

    @model_validator(mode="after")
    def _together(self) -> "PipelineConfig":
        if self.model.checkpoint and self.model.base:
            raise ValueError("model.base and model.checkpoint name two base models: give one")
        return self

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @property
    def protocol(self) -> str:
        """The evaluation protocol in effect: the config's, else motiongpt with the Guo evaluator."""
        if self.eval.protocol:
            return self.eval.protocol
        return "motiongpt" if self.eval.evaluator.startswith("guo:") else "guo"


# -- loading ------------------------------------------------------------------------------------------


def _field_doc(loc) -> str:
    """The description of the config field at `loc` (what it takes), or ""."""
    model: type[BaseModel] | None = PipelineConfig
    doc = ""
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            break
        field = model.model_fields[part]
        doc = field.description or ""
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return doc


def _describe(err: Mapping[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
    value = err.get("input")
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "literal_error":
        allowed = ctx.get("expected", "")
        return f"config '{key}': {value!r} is not allowed; expected one of {allowed}"
    if kind == "extra_forbidden":
        return f"config '{key}': unknown key (set to {value!r}; a typo?); `atomctl config show` lists every key"
    if kind in ("greater_than_equal", "greater_than", "less_than", "less_than_equal"):
        return f"config '{key}': {value!r} is out of range ({err['msg'].lower()})"
    if kind == "string_pattern_mismatch":
        return f"config '{key}': {value!r} is not valid; expected {_field_doc(err['loc'])}"
    return f"config '{key}': {value!r} is not valid ({err['msg']})"


def _errors(exc: ValidationError) -> ConfigError:
    msgs = [_describe(e) for e in exc.errors()]
    return ConfigError("; ".join(dict.fromkeys(msgs)))


def _read_file(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} does not parse: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top")
    return data or {}


def _set(tree: dict, dotted: str, value: Any, where: str) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for i, p in enumerate(parents):
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config '{'.'.join(parents[: i + 1])}' ({where}): is a value, not a section")
        node = child
    node[leaf] = value


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"beta": 1}} -> {"train.beta": 1}."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# A number in exponent notation without a dot (1e-3): YAML 1.1, which PyYAML reads, calls it a string.
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_value(text: str) -> Any:
    """A `--set` value typed as YAML would type it: 3 -> int, 0.5 and 1e-3 -> float, true -> bool,
    [q, v] -> list; anything else stays a string."""
    if _EXPONENT.fullmatch(text.strip()):
        return float(text)
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


class ConfigSource(dict):
    """Where each effective value came from: dotted key -> "default" | "file <path>" | "flag" | "--set"."""


def load_config(path: str | Path | None = None, overrides: dict | None = None, sets: dict | None = None) -> PipelineConfig:
    """Defaults, then the file (YAML or TOML), then `overrides` (flags: {"judge.backend": "vlm"}),
    then `sets` ({"train.beta": "0.1"}: strings typed as YAML). Raises ConfigError."""
    cfg, _ = load_config_with_sources(path, overrides, sets)
    return cfg


def load_config_with_sources(path=None, overrides: dict | None = None, sets: dict | None = None) -> tuple[PipelineConfig, ConfigSource]:
    tree: dict = {}
    sources = ConfigSource()
    if path:
        data = _read_file(Path(path))
        tree = data
        sources.update({k: f"file {path}" for k in flatten(data)})
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        _set(tree, dotted, value, "flag")
        sources[dotted] = "flag"
    for dotted, value in (sets or {}).items():
        _set(tree, dotted, parse_value(value) if isinstance(value, str) else value, "--set")
        sources[dotted] = "--set"
    try:
        cfg = PipelineConfig.model_validate(tree)
    except ValidationError as exc:
        raise _errors(exc) from None
    for key in flatten(cfg.to_dict()):
        sources.setdefault(key, "default")
    return cfg, sources


def show(cfg: PipelineConfig, sources: ConfigSource) -> str:
    """The effective config as YAML, each value with where it came from."""
    lines: list[str] = []

    def walk(model: BaseModel, indent: str, prefix: str) -> None:
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            key = f"{prefix}{name}"
            if isinstance(value, BaseModel):
                lines.append(f"{indent}{name}:")
                walk(value, indent + "  ", key + ".")
                continue
            text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
            if text.endswith("\n...") or text.endswith("..."):
                text = text.rsplit("\n", 1)[0].strip()
            doc = f" - {field.description}" if field.description else ""
            lines.append(f"{indent}{name}: {text}  # {sources.get(key, 'default')}{doc}")

    walk(cfg, "", "")
    return "\n".join(lines) + "\n"
