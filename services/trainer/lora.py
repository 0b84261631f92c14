"""LoRA on the language model, with the same model (adapter disabled) as the reference policy.

The reference policy is not a second copy: peft's `disable_adapter()` runs the frozen base weights
alone, which are exactly the reference. That needs the base forward to be deterministic, so the
T5's own dropout is switched off (LoRA's dropout only acts on the adapter path, which is off in
the reference pass and zero at initialisation, so policy and reference agree exactly at step 0).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from atom.store import ArtifactInfo, ArtifactStore
from services.trainer.config import LoraSettings

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class LoraError(ValueError):
    """LoRA settings that do not fit the model (e.g. target modules it does not have)."""


def disable_dropout(model: nn.Module) -> int:
    """Set every dropout of the model to p = 0 (and the config's rate, so a re-init keeps it);
    return how many dropout modules there were."""
    n = 0
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
            n += 1
        # Attention layers may keep the rate as a float and call functional dropout with it
        # (transformers 5's T5Attention does), which no Dropout module would reveal.
        for name in ("dropout", "attention_dropout", "dropout_rate", "dropout_p"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 0.0)
                n += 1
    config = getattr(model, "config", None)
    for name in ("dropout_rate", "dropout", "attention_dropout", "activation_dropout"):
        if config is not None and hasattr(config, name):
            setattr(config, name, 0.0)
    return n


def attach_lora(model: nn.Module, settings: LoraSettings, base_model_ref: str | None = None):
    """Wrap the model in a peft LoRA model (in place: the original module's target layers become
    LoRA layers, so code holding the original module trains the adapter too). Returns the
    PeftModel, whose parameters are frozen except the adapter's."""
    from peft import LoraConfig, TaskType, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in settings.target_modules if m not in names]
    if missing:
        raise LoraError(
            f"LoRA target modules {missing} do not exist in {type(model).__name__}; "
            f"for T5 use names such as 'q', 'k', 'v', 'o', 'wi_0', 'wi_1', 'wo'"
        )
    config = LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
    )
    with warnings.catch_warnings():
        # peft asks transformers about gradient checkpointing through a name transformers 5
        # deprecated; the warning is about peft's internals, not about this model.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*is_gradient_checkpointing.*")
        peft_model = get_peft_model(model, config)
    if base_model_ref:
        peft_model.peft_config["default"].base_model_name_or_path = base_model_ref
    return peft_model


def reference_policy(peft_model):
    """Context manager: inside it the model computes the reference policy (adapter off)."""
    return peft_model.disable_adapter()


def trainable_state(peft_model) -> dict[str, torch.Tensor]:
    """The adapter's trainable tensors by parameter name (CPU copies), for checkpoints."""
    return {n: p.detach().to("cpu", copy=True) for n, p in peft_model.named_parameters() if p.requires_grad}


def load_trainable_state(peft_model, state: dict[str, torch.Tensor]) -> None:
    params = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        raise LoraError(f"checkpoint does not match the adapter: missing {missing[:3]}, unexpected {extra[:3]}")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state[n].to(p.device, p.dtype))


def save_adapter(store: ArtifactStore, prefix: str, peft_model) -> list[ArtifactInfo]:
    """Write the adapter in PEFT's format (adapter_config.json + adapter_model.safetensors) under
    <prefix>/, loadable with PeftModel.from_pretrained after store.get_tree(prefix, dir)."""
    with tempfile.TemporaryDirectory(prefix="atom-adapter-") as tmp:
        # save_embedding_layers=False: "auto" may look the base model up on the Hugging Face hub.
        peft_model.save_pretrained(tmp, save_embedding_layers=False)
        return [store.put_file(f"{prefix.rstrip('/')}/{name}", Path(tmp) / name) for name in ADAPTER_FILES]


def load_adapter(store: ArtifactStore, prefix: str, model: nn.Module, is_trainable: bool = False):
    """Load an adapter written by save_adapter onto a base model; returns the PeftModel."""
    from peft import PeftModel

    with tempfile.TemporaryDirectory(prefix="atom-adapter-") as tmp:
        for name in ADAPTER_FILES:
            store.get_file(f"{prefix.rstrip('/')}/{name}", Path(tmp) / name)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*is_gradient_checkpointing.*")
            return PeftModel.from_pretrained(model, tmp, is_trainable=is_trainable)


def adapter_config(store: ArtifactStore, prefix: str) -> dict:
    return json.loads(store.get_bytes(f"{prefix.rstrip('/')}/adapter_config.json"))


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Temporarily switch to eval mode (LoRA dropout off), restoring the previous mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
