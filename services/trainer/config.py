"""Training configuration: one dataclass that names a run completely.

The settings a user chooses (loss, beta, log-prob mode, learning rate, batch, epochs, LoRA) take
their defaults from atom.settings.TrainSettings, the one place they are written (the embedded
run's: KTO, beta 1.0, summed log-probs, 8 epochs; LoRA r 8 / alpha 16 / dropout 0.05 on q, v as
the official AToM release). The rest follow transformers/TRL defaults (AdamW, cosine schedule,
clipping at 1.0). The fingerprint of a config is the identity of its training job: starting the
same config again resumes that job instead of starting a second one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from atom.fields import check_fields
from atom.settings import ALGORITHMS, TrainSettings

LOSSES = ALGORITHMS
_T = TrainSettings()
SCHEDULES = ("cosine", "constant")


class TrainConfigError(ValueError):
    """A training configuration is invalid; the message names the field and the allowed values."""


@dataclass(frozen=True)
class LoraSettings:
    r: int = _T.lora_r
    alpha: int = _T.lora_alpha
    dropout: float = _T.lora_dropout
    # PEFT's default targets for T5 (SEQ_2_SEQ_LM), as the official release used.
    target_modules: tuple[str, ...] = tuple(_T.target_modules)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if not isinstance(self.r, int) or self.r < 1:
            raise TrainConfigError(f"lora.r must be a positive integer, got {self.r!r}")
        if not _finite(self.alpha) or self.alpha <= 0:
            raise TrainConfigError(f"lora.alpha must be a positive number, got {self.alpha!r}")
        if not _finite(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise TrainConfigError(f"lora.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            raise TrainConfigError(
                f"lora.target_modules must be a non-empty list of module names (e.g. ['q', 'v']), got {self.target_modules!r}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run's result.

    pairs_key      store key of the preference pairs (JSONL written by pairs.save_pairs)
    output_prefix  store prefix for checkpoints and the final adapter (<prefix>/adapter/...)
    base_model     reference to the base model, resolved by the model loader the caller supplies
    """

    pairs_key: str
    output_prefix: str
    base_model: str = "default"
    loss: str = _T.algorithm
    beta: float = _T.beta
    # True: per-token mean log-probs (what TRL does for loss_type "ipo", so the official release
    # trained that way); False: summed over the motion's tokens. None: mean for IPO, sum otherwise.
    average_logprobs: bool | None = _T.logprobs == "mean"
    label_smoothing: float = 0.0  # DPO only (conservative DPO)
    # Weight of the chosen motions' per-token NLL added to the loss (RPO; TRL's rpo_alpha).
    # 0 is the paper's plain preference loss.
    rpo_alpha: float = _T.rpo_alpha
    kto_desirable_weight: float = 1.0
    kto_undesirable_weight: float = 1.0
    lr: float = _T.learning_rate
    weight_decay: float = 0.0  # TRL/transformers default, which the release used
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float | None = 1.0  # transformers' default clipping; None turns it off
    batch_size: int = _T.batch_size
    epochs: int = _T.epochs
    max_steps: int | None = None  # stop early (the release trained at most about 1,000 steps)
    schedule: str = "cosine"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0  # alternative to warmup_steps: a fraction of the total steps
    seed: int = 0
    # How a caption becomes the language model's input. None: the model's own template
    # (MotionLM.format_prompt), the one the generator samples with, so training and generation agree.
    prompt_template: str | None = None
    checkpoint_every_steps: int | None = None  # besides the end of every epoch
    # Where to train: "auto" = what the service was started with (--device / ATOM_DEVICE), else
    # CUDA when available; "cpu", "cuda", "cuda:N". dtype: "" = the service's (--dtype / ATOM_DTYPE),
    # else "fp32"; "bf16" / "fp16" run the forward passes under autocast. Neither is part of the
    # job's identity (fingerprint): a job may resume on another machine.
    device: str = "auto"
    dtype: str = ""
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            object.__setattr__(self, "lora", LoraSettings(**self.lora))
        object.__setattr__(self, "adam_betas", tuple(self.adam_betas))
        for name in ("pairs_key", "output_prefix", "base_model"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise TrainConfigError(f"{name} must be a non-empty string, got {value!r}")
        if self.loss not in LOSSES:
            raise TrainConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise TrainConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise TrainConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.dtype not in ("", "fp32", "bf16", "fp16"):
            raise TrainConfigError(f"dtype must be fp32, bf16 or fp16 (or empty: the service's), got {self.dtype!r}")
        for name in ("beta", "lr", "adam_eps", "kto_desirable_weight", "kto_undesirable_weight"):
            value = getattr(self, name)
            if not _finite(value) or value <= 0:
                raise TrainConfigError(f"{name} must be a positive number, got {value!r}")
        if not _finite(self.weight_decay) or self.weight_decay < 0:
            raise TrainConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not _finite(self.label_smoothing) or not 0.0 <= self.label_smoothing < 0.5:
            raise TrainConfigError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing!r}")
        if not _finite(self.rpo_alpha) or self.rpo_alpha < 0:
            raise TrainConfigError(f"rpo_alpha must be a number >= 0, got {self.rpo_alpha!r}")
        if self.label_smoothing and self.loss != "dpo":
            raise TrainConfigError("label_smoothing applies to loss 'dpo' only; set it to 0")
        if len(self.adam_betas) != 2 or not all(_finite(b) and 0 <= b < 1 for b in self.adam_betas):
            raise TrainConfigError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        if self.max_grad_norm is not None and (not _finite(self.max_grad_norm) or self.max_grad_norm <= 0):
            raise TrainConfigError(f"max_grad_norm must be a positive number or null, got {self.max_grad_norm!r}")
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if not _int(value) or value < 1:
                raise TrainConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_steps", "checkpoint_every_steps"):
            value = getattr(self, name)
            if value is not None and (not _int(value) or value < 1):
                raise TrainConfigError(f"{name} must be a positive integer or null, got {value!r}")
        if not _int(self.warmup_steps) or self.warmup_steps < 0:
            raise TrainConfigError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if not _finite(self.warmup_ratio) or not 0.0 <= self.warmup_ratio < 1.0:
            raise TrainConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if self.warmup_ratio and self.warmup_steps:
            raise TrainConfigError("set warmup_steps or warmup_ratio, not both")
        if not _int(self.seed):
            raise TrainConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.prompt_template is not None and (not isinstance(self.prompt_template, str) or self.prompt_template.count("{prompt}") != 1):
            raise TrainConfigError(f"prompt_template must contain '{{prompt}}' exactly once, got {self.prompt_template!r}")

    @property
    def uses_average_logprobs(self) -> bool:
        return self.loss == "ipo" if self.average_logprobs is None else bool(self.average_logprobs)

    def warmup_for(self, total_steps: int) -> int:
        return self.warmup_steps or math.ceil(self.warmup_ratio * total_steps)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        d["lora"]["target_modules"] = list(self.lora.target_modules)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise TrainConfigError(f"a training config must be a JSON object, got {type(d).__name__}")
        check_fields(cls, d, "training config", TrainConfigError)
        d = dict(d)
        if isinstance(d.get("lora"), dict):
            check_fields(LoraSettings, d["lora"], "lora", TrainConfigError)
            d["lora"] = LoraSettings(**d["lora"])
        try:
            return cls(**d)
        except TypeError as exc:  # a required field is missing
            raise TrainConfigError(f"invalid training config: {exc}") from None

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the config: equal configs, equal fingerprints."""
        identity = {k: v for k, v in self.to_dict().items() if k not in ("device", "dtype")}
        canon = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
