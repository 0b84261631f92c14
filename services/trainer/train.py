"""LoRA preference training of the motion language model (IPO, DPO or KTO; defaults: atom.settings).

One step: the batch's prompts are encoded once and paired with the chosen and the rejected motion
(2B sequences in one forward); the policy log-probs carry gradients, the reference log-probs come
from the same model with the adapter disabled, under no_grad. The loss is a pure function of the
four log-prob vectors (losses.py).

Resumable: a checkpoint (adapter, optimizer, scheduler, RNG state, step, metric history) goes to
the store at the end of every epoch, every `checkpoint_every_steps`, and on cancellation. The data
order of an epoch is a function of (seed, epoch) alone, so a run restarted from a checkpoint takes
exactly the steps the uninterrupted run would have taken.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol, Sequence

import torch

from atom.mgpt.lm import IGNORE_INDEX
from atom.runtime.device import Compute, DeviceError, resolve_compute
from atom.store import ArtifactNotFound, ArtifactStore, sha256_hex
from services.trainer.config import TrainConfig
from services.trainer.logs import log_mlflow, model_card, write_model_card, write_tensorboard
from services.trainer.losses import LossOutput, chosen_nll, preference_loss
from services.trainer.lora import (
    attach_lora,
    disable_dropout,
    eval_mode,
    load_trainable_state,
    reference_policy,
    save_adapter,
    trainable_state,
)
from services.trainer.motionprefer import motion_tokens
from services.trainer.pairs import PreferencePair, pairs_to_jsonl, parse_pairs

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 1


class PreferenceLM(Protocol):
    """What training needs from the language model (atom.mgpt.lm.MotionLM provides it)."""

    model: torch.nn.Module  # a transformers T5ForConditionalGeneration

    def encode_text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Formatted prompt texts -> (input_ids, attention_mask)."""

    def encode_motion(self, tokens: list[list[int]]) -> torch.Tensor:
        """VQ code lists -> labels (B, L) with the motion start/end tokens, padded with -100."""

    def sequence_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Summed log-probs of the labels (B,), through self.model (so through the adapter)."""

    # Optional: format_prompt(caption) -> text, the model's prompt template.


class TrainingError(ValueError):
    """Training cannot start or resume with these inputs; the message says why and what to do."""


class TrainingCancelled(Exception):
    def __init__(self, step: int):
        self.step = step
        super().__init__(f"training cancelled after step {step}; a checkpoint was saved, start it again to resume")


@dataclass(frozen=True)
class Example:
    prompt: str  # the language model's input text (template applied)
    chosen: tuple[int, ...]
    rejected: tuple[int, ...]


@dataclass(frozen=True)
class Progress:
    step: int  # steps completed, 1-based
    total_steps: int
    epoch: int  # the epoch this step belongs to, 1-based
    epochs: int
    loss: float
    margin: float
    accuracy: float
    lr: float
    metrics: dict = field(default_factory=dict)  # everything the loss reported
    resumed_from_step: int = 0  # > 0 when this run continued from a checkpoint


@dataclass
class TrainResult:
    fingerprint: str
    steps: int
    total_steps: int
    epochs: int
    resumed_from_step: int
    adapter_prefix: str
    adapter_keys: list[str]
    summary_key: str
    final_metrics: dict
    history: list[dict]
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


# -- pure helpers -------------------------------------------------------------------------------


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine") -> float:
    """Multiplier of the base learning rate for optimizer step `step` (0-based): linear warmup,
    then cosine decay to 0 at total_steps (transformers' get_cosine_schedule_with_warmup shape)."""
    if warmup_steps and step < warmup_steps:
        return step / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def steps_per_epoch(n_examples: int, batch_size: int) -> int:
    return math.ceil(n_examples / batch_size)


def total_steps_for(config: TrainConfig, n_examples: int) -> int:
    total = config.epochs * steps_per_epoch(n_examples, config.batch_size)
    return min(total, config.max_steps) if config.max_steps else total


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled example order of one epoch: a function of (seed, epoch) only."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return torch.randperm(n, generator=g).tolist()


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> tuple[int, list[int]]:
    """(epoch (0-based), example indices) of global step `step` (0-based)."""
    spe = steps_per_epoch(n, batch_size)
    epoch, k = divmod(step, spe)
    order = epoch_order(n, seed, epoch)
    return epoch, order[k * batch_size : (k + 1) * batch_size]


def prompt_formatter(lm, template: str | None) -> Callable[[str], str]:
    """Caption -> model input text: the config's template if set, else the model's own."""
    if template is not None:
        return lambda caption: template.replace("{prompt}", caption.strip())
    own = getattr(lm, "format_prompt", None)
    return own if callable(own) else (lambda caption: caption)


def resolve_examples(store: ArtifactStore, pairs: Sequence[PreferencePair], format_prompt: Callable[[str], str]) -> list[Example]:
    """Pairs to examples, reading motion tokens from the store where the pair does not carry
    them (each motion read once)."""
    cache: dict[str, tuple[int, ...]] = {}

    def tokens(inline, key):
        if inline is not None:
            return tuple(inline)
        if key not in cache:
            cache[key] = motion_tokens(store, key)
        return cache[key]

    return [
        Example(format_prompt(p.prompt), tokens(p.chosen_tokens, p.chosen_key), tokens(p.rejected_tokens, p.rejected_key)) for p in pairs
    ]


# -- the model side -----------------------------------------------------------------------------


def pick_compute(config: TrainConfig) -> Compute:
    """The config's device and dtype, where "auto"/"" defer to the service's (atom.runtime.device)."""
    try:
        return resolve_compute(None if config.device == "auto" else config.device, config.dtype or None)
    except DeviceError as exc:
        raise TrainingError(str(exc)) from None


def autocast(device: torch.device, dtype: str):
    """bf16/fp16 forward passes (weights, LoRA and optimiser state stay float32)."""
    if dtype in ("", "fp32"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


def motion_logprobs(lm: PreferenceLM, ids, mask, labels, average: bool) -> torch.Tensor:
    """Log-probability of each row's motion tokens (`labels`) given its prompt (`ids`, `mask`),
    under the model's current weights (the policy; the reference inside reference_policy):
    summed over the tokens, or with `average` their per-token mean. One forward pass."""
    lp = lm.sequence_logprobs(ids, mask, labels)
    if average:
        # Per-token mean, as TRL does for IPO: the margin target 1/(2 beta) then does not scale
        # with motion length.
        lp = _per_token(lp, labels)
    return lp


def _token_counts(labels: torch.Tensor) -> torch.Tensor:
    return (labels != IGNORE_INDEX).sum(-1).clamp(min=1)


def _per_token(lp: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return lp / _token_counts(labels).to(lp.dtype)


def _encode_batch(lm: PreferenceLM, examples: Sequence[Example], device: torch.device):
    """Prompt ids and mask, and the motion labels: every chosen motion, then every rejected one."""
    ids, mask = lm.encode_text([e.prompt for e in examples])
    labels = lm.encode_motion([list(e.chosen) for e in examples] + [list(e.rejected) for e in examples])
    return ids.to(device), mask.to(device), labels.to(device)


def batch_loss(
    lm: PreferenceLM,
    peft_model,
    examples: Sequence[Example],
    config: TrainConfig,
    device: torch.device,
    ref: torch.Tensor | None = None,
) -> LossOutput:
    """The preference loss of one batch (policy with gradients, reference without). `ref`: the
    reference log-probabilities of the chosen then the rejected motions, if known
    (`reference_logprobs`); else they are computed here."""
    b = len(examples)
    ids, mask, labels = _encode_batch(lm, examples, device)
    ids2, mask2 = torch.cat([ids, ids]), torch.cat([mask, mask])
    average = config.uses_average_logprobs
    with autocast(device, config.dtype):
        return _batch_loss(lm, peft_model, ids, mask, ids2, mask2, labels, b, average, config, ref)


def reference_logprobs(lm: PreferenceLM, peft_model, examples: Sequence[Example], config: TrainConfig, device: torch.device):
    """The reference model's log-probabilities of every example's chosen and rejected motion, as
    two tensors in example order. The reference is frozen and dropout is off, so every epoch
    would compute the same values again: computed once, they save a fifth of training. (Computed
    in other batches than training's, they can differ from per-batch values in the last bits.)"""
    chosen, rejected = [], []
    average = config.uses_average_logprobs
    for start in range(0, len(examples), config.batch_size):
        chunk = examples[start : start + config.batch_size]
        ids, mask, labels = _encode_batch(lm, chunk, device)
        with autocast(device, config.dtype):
            lp = _reference_logprobs(lm, peft_model, torch.cat([ids, ids]), torch.cat([mask, mask]), labels, average)
        chosen.append(lp[: len(chunk)])
        rejected.append(lp[len(chunk) :])
    return torch.cat(chosen), torch.cat(rejected)


def _reference_logprobs(lm: PreferenceLM, peft_model, ids, mask, labels, average: bool) -> torch.Tensor:
    """motion_logprobs under the reference policy (the adapter off), without gradients."""
    with torch.no_grad(), reference_policy(peft_model):
        return motion_logprobs(lm, ids, mask, labels, average)


def _batch_loss(
    lm, peft_model, ids, mask, ids2, mask2, labels, b: int, average: bool, config: TrainConfig, ref: torch.Tensor | None = None
) -> LossOutput:

    # The summed log-probs are kept apart: the RPO term needs them whatever the loss takes.
    summed = motion_logprobs(lm, ids2, mask2, labels, average=False)
    policy = _per_token(summed, labels) if average else summed
    if ref is None:
        ref = _reference_logprobs(lm, peft_model, ids2, mask2, labels, average)
    kwargs = {}
    if config.loss == "kto":
        # Mismatched pairs for the KL reference point: prompt i with the chosen motion of
        # example i+1 (with a batch of one the "mismatch" is the matched pair itself).
        mm_labels = labels[:b].roll(-1, dims=0)
        with torch.no_grad():
            kwargs["policy_mismatched"] = motion_logprobs(lm, ids, mask, mm_labels, average)
        kwargs["ref_mismatched"] = _reference_logprobs(lm, peft_model, ids, mask, mm_labels, average)
    out = preference_loss(
        config.loss,
        policy[:b],
        policy[b:],
        ref[:b],
        ref[b:],
        beta=config.beta,
        label_smoothing=config.label_smoothing,
        desirable_weight=config.kto_desirable_weight,
        undesirable_weight=config.kto_undesirable_weight,
        **kwargs,
    )
    if config.rpo_alpha:
        nll = chosen_nll(summed[:b], _token_counts(labels[:b]))
        total = out.loss + config.rpo_alpha * nll
        out = LossOutput(total, {**out.metrics, "loss": float(total.detach()), "chosen_nll": float(nll.detach())})
    return out


@torch.no_grad()
def evaluate_margins(
    lm: PreferenceLM, peft_model, examples: Sequence[Example], config: TrainConfig, batch_size: int | None = None
) -> dict[str, float]:
    """Mean preference margin h, accuracy (h > 0) and loss over examples, in eval mode."""
    device = next(peft_model.parameters()).device
    batch_size = batch_size or config.batch_size
    totals: dict[str, float] = {}
    with eval_mode(peft_model):
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            out = batch_loss(lm, peft_model, chunk, config, device)
            for k, v in out.metrics.items():
                totals[k] = totals.get(k, 0.0) + v * len(chunk)
    return {k: v / len(examples) for k, v in totals.items()}


# -- checkpoints ----------------------------------------------------------------------------------


def _checkpoint_pointer(prefix: str) -> str:
    return f"{prefix.rstrip('/')}/checkpoints/latest.json"


def save_checkpoint(
    store: ArtifactStore, config: TrainConfig, pairs_sha: str, step: int, peft_model, optimizer, scheduler, history: list[dict]
) -> str:
    state = {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": config.fingerprint(),
        "pairs_sha256": pairs_sha,
        "step": step,
        "adapter": trainable_state(peft_model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": json.dumps(history),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    prefix = config.output_prefix.rstrip("/")
    key = f"{prefix}/checkpoints/step-{step:08d}.pt"
    store.put_bytes(key, buf.getvalue())
    pointer = _checkpoint_pointer(prefix)
    previous = None
    try:
        previous = store.get_json(pointer).get("key")
    except ArtifactNotFound:
        pass
    # The blob first, then the pointer: a crash in between leaves the old pointer valid.
    store.put_json(pointer, {"key": key, "step": step, "fingerprint": config.fingerprint()})
    if previous and previous != key:
        store.delete(previous)
    return key


def load_checkpoint(store: ArtifactStore, config: TrainConfig, pairs_sha: str) -> dict | None:
    try:
        pointer = store.get_json(_checkpoint_pointer(config.output_prefix))
    except ArtifactNotFound:
        return None
    # weights_only: a checkpoint is data (tensors, numbers, strings), never code to unpickle.
    state = torch.load(io.BytesIO(store.get_bytes(pointer["key"])), map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"checkpoint {pointer['key']} has format {state.get('format')}, expected {CHECKPOINT_FORMAT}")
    if state["fingerprint"] != config.fingerprint():
        raise TrainingError(
            f"{config.output_prefix!r} holds checkpoints of a different training config; "
            "use another output_prefix or delete its checkpoints/"
        )
    if state["pairs_sha256"] != pairs_sha:
        raise TrainingError(
            f"the pairs at {config.pairs_key!r} changed since the checkpoint at step {state['step']} was saved; "
            "write new pairs under a new key (or delete the checkpoints to start over)"
        )
    return state


# -- the loop -----------------------------------------------------------------------------------


def train_preference(
    lm: PreferenceLM,
    store: ArtifactStore,
    config: TrainConfig,
    *,
    pairs: Sequence[PreferencePair] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Train a LoRA adapter on preference pairs; resume from <output_prefix>/checkpoints if there
    is a checkpoint of this config. `pairs` defaults to the pairs at config.pairs_key. Raises
    TrainingCancelled (after checkpointing) when `cancel` is set. The final adapter goes to
    <output_prefix>/adapter/ in PEFT's format, a summary to <output_prefix>/train_summary.json."""
    t0 = time.monotonic()
    if pairs is None:
        pairs = parse_pairs(store.get_bytes(config.pairs_key), source=config.pairs_key)
    if not pairs:
        raise TrainingError(f"no preference pairs in {config.pairs_key!r}: nothing to train on (check the pair filter)")
    # Identity of the training data in canonical form, so a resume can tell if it changed.
    pairs_sha = sha256_hex(pairs_to_jsonl(pairs))
    examples = resolve_examples(store, pairs, prompt_formatter(lm, config.prompt_template))
    n = len(examples)
    spe = steps_per_epoch(n, config.batch_size)
    total = total_steps_for(config, n)
    epochs = math.ceil(total / spe)

    compute = pick_compute(config)
    device = compute.torch_device
    config = dataclasses.replace(config, device=compute.device, dtype=compute.dtype)
    torch.manual_seed(config.seed)  # LoRA A's initialisation
    disable_dropout(lm.model)
    peft_model = attach_lora(lm.model, config.lora, base_model_ref=config.base_model)
    peft_model.to(device)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.adam_betas, eps=config.adam_eps, weight_decay=config.weight_decay)
    warmup = config.warmup_for(total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup, config.schedule))

    start, history = 0, []
    state = load_checkpoint(store, config, pairs_sha)
    if state is not None:
        load_trainable_state(peft_model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        start, history = int(state["step"]), json.loads(state["history"])
        log.info("resuming %s at step %d of %d", config.output_prefix, start, total)

    ref_chosen, ref_rejected = reference_logprobs(lm, peft_model, examples, config, device)
    last_saved = start
    for step in range(start, total):
        if cancel is not None and cancel.is_set():
            if step > last_saved:
                save_checkpoint(store, config, pairs_sha, step, peft_model, optimizer, scheduler, history)
            raise TrainingCancelled(step)
        epoch, idx = batch_indices(step, n, config.batch_size, config.seed)
        lr = optimizer.param_groups[0]["lr"]
        ref = torch.cat([ref_chosen[idx], ref_rejected[idx]])
        out = batch_loss(lm, peft_model, [examples[i] for i in idx], config, device, ref)
        if step == 0 and abs(out.metrics["margin"]) > 1e-3:
            # At initialisation (LoRA B = 0) policy and reference are the same function; a
            # margin here means the forward is stochastic and every reward would be noise.
            raise TrainingError(
                f"policy and reference disagree at initialisation (margin {out.metrics['margin']:.3g}); "
                "the model has a stochastic layer (dropout) that disable_dropout did not switch off"
            )
        if not math.isfinite(out.metrics["loss"]):
            raise TrainingError(f"loss became {out.metrics['loss']} at step {step + 1}; lower lr or check the pairs")
        out.loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        record = {"step": done, "epoch": epoch + 1, "lr": lr, **out.metrics}
        history.append(record)
        if on_progress is not None:
            on_progress(
                Progress(
                    done,
                    total,
                    epoch + 1,
                    epochs,
                    out.metrics["loss"],
                    out.metrics["margin"],
                    out.metrics["accuracy"],
                    lr,
                    dict(out.metrics),
                    start,
                )
            )
        end_of_epoch = done % spe == 0 or done == total
        periodic = config.checkpoint_every_steps and done % config.checkpoint_every_steps == 0
        if end_of_epoch or periodic:
            save_checkpoint(store, config, pairs_sha, done, peft_model, optimizer, scheduler, history)
            last_saved = done

    prefix = config.output_prefix.rstrip("/")
    adapter_infos = save_adapter(store, f"{prefix}/adapter", peft_model)
    final = history[-1] if history else {}
    result = TrainResult(
        fingerprint=config.fingerprint(),
        steps=total,
        total_steps=total,
        epochs=epochs,
        resumed_from_step=start,
        adapter_prefix=f"{prefix}/adapter",
        adapter_keys=[i.key for i in adapter_infos],
        summary_key=f"{prefix}/train_summary.json",
        final_metrics=final,
        history=history,
        seconds=time.monotonic() - t0,
    )
    store.put_json(result.summary_key, {"config": config.to_dict(), "pairs": n, "pairs_sha256": pairs_sha, **result.to_dict()})
    write_tensorboard(store, prefix, history, config)
    log_mlflow(history, config, run_name=prefix.rsplit("/", 1)[-1])
    write_model_card(store, result.adapter_prefix, model_card(config, n, pairs_sha, final))
    return result
