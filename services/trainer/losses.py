"""Preference losses on per-sequence log-probabilities: IPO (the paper's choice), DPO, KTO.

Why our own and not TRL's trainers: trl 1.x has no encoder-decoder support in its DPOTrainer (a
T5 fails at the first step), and the last trl with it (0.28) needs transformers < 5, which would
pin the whole stack to old releases. The losses themselves are a few lines each, so they live here
as pure functions, tested against numbers computed by hand (tests/trainer/test_losses.py).

Notation, per example: pi_w, pi_l are the policy's log-probs of the chosen (w) and rejected (l)
motion given the prompt; ref_w, ref_l the reference policy's. The log-ratios are
r_w = pi_w - ref_w and r_l = pi_l - ref_l, and the preference margin is h = r_w - r_l
(h = log[pi(w) ref(l) / (pi(l) ref(w))], the paper's h).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


class LossInputError(ValueError):
    """Log-prob tensors of the wrong shape or settings out of range."""


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar, differentiable
    metrics: dict[str, float]  # loss, margin (mean h), reward_margin (beta * mean h), accuracy, rewards


def _check(beta: float, *tensors: torch.Tensor) -> None:
    if not beta > 0:
        raise LossInputError(f"beta must be > 0, got {beta}")
    shape = tensors[0].shape
    if tensors[0].ndim != 1 or shape[0] == 0:
        raise LossInputError(f"log-probs must be non-empty 1-D tensors (one value per example), got shape {tuple(shape)}")
    for t in tensors[1:]:
        if t.shape != shape:
            raise LossInputError(f"all log-prob tensors must have the same shape, got {tuple(shape)} and {tuple(t.shape)}")


def log_ratios(
    policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(r_w, r_l, h) per example."""
    r_w = policy_chosen - ref_chosen
    r_l = policy_rejected - ref_rejected
    return r_w, r_l, r_w - r_l


def _metrics(loss: torch.Tensor, r_w: torch.Tensor, r_l: torch.Tensor, beta: float) -> dict[str, float]:
    with torch.no_grad():
        h = (r_w - r_l).detach()
        return {
            "loss": float(loss.detach()),
            "margin": float(h.mean()),
            "reward_margin": float(beta * h.mean()),
            "accuracy": float((h > 0).float().mean()),
            "chosen_reward": float(beta * r_w.detach().mean()),
            "rejected_reward": float(beta * r_l.detach().mean()),
        }


def ipo_loss(
    policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float = 0.1
) -> LossOutput:
    """IPO (Azar et al.): L = mean((h - 1/(2 beta))^2). Regresses the margin onto 1/(2 beta)
    instead of pushing it to infinity, which keeps the policy near the reference."""
    _check(beta, policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    r_w, r_l, h = log_ratios(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    loss = ((h - 1.0 / (2.0 * beta)) ** 2).mean()
    return LossOutput(loss, _metrics(loss, r_w, r_l, beta))


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """DPO (sigmoid): L = -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h); eps > 0 is
    conservative DPO, for labels believed flipped with probability eps."""
    _check(beta, policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if not 0.0 <= label_smoothing < 0.5:
        raise LossInputError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    r_w, r_l, h = log_ratios(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    z = beta * h
    losses = -(1.0 - label_smoothing) * F.logsigmoid(z)
    if label_smoothing:
        losses = losses - label_smoothing * F.logsigmoid(-z)
    loss = losses.mean()
    return LossOutput(loss, _metrics(loss, r_w, r_l, beta))


def kto_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    policy_mismatched: torch.Tensor,
    ref_mismatched: torch.Tensor,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> LossOutput:
    """KTO (Ethayarajh et al.) on paired data: each chosen motion is a desirable example, each
    rejected one undesirable.

    The reference point z0 = max(0, mean(policy_mismatched - ref_mismatched)) estimates
    KL(pi || ref) from completions paired with prompts they were not made for (the KTO paper's
    mismatched pairs); it is detached, so no gradient flows through it.
      desirable:   w_D * (1 - sigmoid(beta (r_w - z0)))
      undesirable: w_U * (1 - sigmoid(beta (z0 - r_l)))
    The loss is the mean over all 2B examples."""
    _check(beta, policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if policy_mismatched.ndim != 1 or policy_mismatched.shape != ref_mismatched.shape or policy_mismatched.numel() == 0:
        raise LossInputError(
            f"mismatched log-probs must be two non-empty 1-D tensors of one shape, got "
            f"{tuple(policy_mismatched.shape)} and {tuple(ref_mismatched.shape)}"
        )
    if not (desirable_weight > 0 and undesirable_weight > 0):
        raise LossInputError(f"KTO weights must be > 0, got {desirable_weight} and {undesirable_weight}")
    r_w, r_l, _ = log_ratios(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    z0 = (policy_mismatched - ref_mismatched).detach().mean().clamp(min=0)
    desirable = desirable_weight * (1.0 - torch.sigmoid(beta * (r_w - z0)))
    undesirable = undesirable_weight * (1.0 - torch.sigmoid(beta * (z0 - r_l)))
    loss = torch.cat([desirable, undesirable]).mean()
    metrics = _metrics(loss, r_w, r_l, beta)
    metrics["kl"] = float(z0)
    return LossOutput(loss, metrics)


def chosen_nll(policy_chosen_sum: torch.Tensor, chosen_tokens: torch.Tensor) -> torch.Tensor:
    """The chosen motions' negative log-likelihood per token, averaged over the batch: the term
    that RPO (Pang et al. 2024; TRL's `rpo_alpha`) adds to the preference loss. It keeps the
    chosen motions likely, so the margin is not won only by making the rejected ones unlikely,
    and it pins the chosen motion's exact length (its end token) rather than a direction."""
    if policy_chosen_sum.ndim != 1 or policy_chosen_sum.shape != chosen_tokens.shape:
        raise LossInputError(
            f"chosen log-probs and token counts must be 1-D of one shape, got "
            f"{tuple(policy_chosen_sum.shape)} and {tuple(chosen_tokens.shape)}"
        )
    return (-policy_chosen_sum / chosen_tokens.clamp(min=1).to(policy_chosen_sum.dtype)).mean()


def preference_loss(
    name: str,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float = 0.0,
    policy_mismatched: torch.Tensor | None = None,
    ref_mismatched: torch.Tensor | None = None,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> LossOutput:
    """Dispatch by name ('ipo', 'dpo', 'kto')."""
    if name == "ipo":
        return ipo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
    if name == "dpo":
        return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, label_smoothing)
    if name == "kto":
        if policy_mismatched is None or ref_mismatched is None:
            raise LossInputError("loss 'kto' needs policy_mismatched and ref_mismatched log-probs")
        return kto_loss(
            policy_chosen,
            policy_rejected,
            ref_chosen,
            ref_rejected,
            policy_mismatched,
            ref_mismatched,
            beta,
            desirable_weight,
            undesirable_weight,
        )
    raise LossInputError(f"unknown loss {name!r}; expected one of ipo, dpo, kto")
