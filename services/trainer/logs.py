"""Where people look for a training run: TensorBoard event files (and MLflow, when a tracking
server is configured) and the adapter's model card.

Everything is written from the run's metric history at the end of training, so a resumed job
logs exactly what an uninterrupted one would.

    <output_prefix>/tensorboard/events.out.tfevents.*   `tensorboard --logdir <that folder>`
    <output_prefix>/adapter/README.md                   the model card PEFT and the Hub expect
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from atom.store import ArtifactStore
from services.trainer.config import TrainConfig

log = logging.getLogger(__name__)

NOT_METRICS = ("step", "epoch")
EVALUATION_HEADING = "## Evaluation"


def scalar_series(history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """The history as named scalar series, (step, value) each: every numeric field but step/epoch."""
    series: dict[str, list[tuple[int, float]]] = {}
    for record in history:
        for name, value in record.items():
            if name not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(f"train/{name}", []).append((int(record["step"]), float(value)))
    return series


def write_tensorboard(store: ArtifactStore, prefix: str, history: list[dict], config: TrainConfig) -> list[str]:
    """TensorBoard event files for the run under <prefix>/tensorboard/; returns their keys."""
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory(prefix="atom-tb-") as tmp:
        writer = SummaryWriter(log_dir=tmp)
        try:
            for name, points in scalar_series(history).items():
                for step, value in points:
                    writer.add_scalar(name, value, step)
            writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in sorted(config.to_dict().items())))
        finally:
            writer.close()
        return [store.put_file(f"{prefix}/tensorboard/{f.name}", f).key for f in sorted(Path(tmp).iterdir())]


def log_mlflow(history: list[dict], config: TrainConfig, run_name: str) -> bool:
    """Log the run to MLflow when MLFLOW_TRACKING_URI is set; returns whether it did."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return False
    try:
        import mlflow
    except ImportError:
        log.warning(
            "MLFLOW_TRACKING_URI is set but mlflow is not installed (pip install mlflow-skinny); the run is logged to TensorBoard only"
        )
        return False
    flat = {k: v for k, v in config.to_dict().items() if not isinstance(v, (dict, list))}
    flat.update({f"lora_{k}": v for k, v in config.lora.__dict__.items() if not isinstance(v, (list, tuple))})
    with mlflow.start_run(run_name=run_name):
        mlflow.log_params(flat)
        for name, points in scalar_series(history).items():
            for step, value in points:
                mlflow.log_metric(name.replace("/", "_"), value, step=step)
    return True


def model_card(config: TrainConfig, pairs: int, pairs_sha256: str, final: dict) -> str:
    """The adapter's README.md: what it was trained from, how, and (added by the evaluation) what
    it changed."""
    lora = config.lora
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if k not in NOT_METRICS and isinstance(v, float))
    return f"""---
base_model: {config.base_model}
library_name: peft
tags:
- text-to-motion
- motiongpt
- lora
- preference-optimization
- {config.loss}
---

# LoRA adapter for {config.base_model}, aligned with event-level judge preferences

Trained with atom (an implementation of AToM: aligning a text-to-motion model with event-level
feedback from a vision-language model) by preference optimisation on judged motion pairs.

## Training

- Base model: `{config.base_model}`
- Preference pairs: {pairs} pairs, `{config.pairs_key}` (sha256 `{pairs_sha256}`)
- Loss: {config.loss.upper()}, beta {config.beta}{f", RPO alpha {config.rpo_alpha}" if config.rpo_alpha else ""}, \
log-probabilities {"averaged per token" if config.average_logprobs else "summed over tokens"}
- Optimiser: learning rate {config.lr}, {config.schedule} schedule, batch {config.batch_size}, {config.epochs} epochs, \
seed {config.seed}
- LoRA: r {lora.r}, alpha {lora.alpha}, dropout {lora.dropout}, modules {", ".join(lora.target_modules)}
- Last step: {metrics or "no steps"}

Load it with `PeftModel.from_pretrained(base, <this folder>)` on the base model's language model,
or ask the generator service for it (`ModelRef.adapter`). Training curves: `tensorboard --logdir
../tensorboard`.

{EVALUATION_HEADING}

Not evaluated yet: `atomctl evaluate` (or `atomctl run-pipeline`) adds the measured gains here.
"""


def write_model_card(store: ArtifactStore, adapter_prefix: str, card: str) -> str:
    key = f"{adapter_prefix.rstrip('/')}/README.md"
    store.put_bytes(key, card.encode(), "text/markdown")
    return key
