"""EMA vector quantiser with dead-code reset (the MotionGPT / T2M-GPT motion tokeniser's bottleneck).

The codebook is a buffer named `codebook` (num_codes, code_dim): it is learnt by exponential moving
averages of the encoder outputs assigned to each code, not by gradients. Codes that no input chose
in a training step (EMA usage below one) are re-seeded from random encoder outputs of that step, so
the codebook does not collapse onto a few entries.

"Dead" is relative to the batch: a code is dead when its EMA usage falls below `reset_fraction`
of the mean usage per code. With T2M-GPT's batch (256 windows x 16 codes = 4096 vectors for 512
codes, mean 8) the default 1/8 gives its fixed threshold of 1.0; with the small batches of CPU
pretraining a fixed 1.0 would re-seed half the codebook every step and rare poses (arms raised
overhead) would never keep a code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _after_load(module: "EMAQuantizer", incompatible) -> None:
    # A loaded codebook is a trained one: further training continues from it instead of re-seeding.
    with torch.no_grad():
        module.code_sum.copy_(module.codebook)
        module.code_count.fill_(1.0)
        module.initialized.fill_(True)


class EMAQuantizer(nn.Module):
    # buffers (register_buffer below), declared for the type checker
    codebook: torch.Tensor
    code_sum: torch.Tensor
    code_count: torch.Tensor
    initialized: torch.Tensor

    def __init__(self, num_codes: int = 512, code_dim: int = 512, mu: float = 0.99, reset_fraction: float = 0.125):
        super().__init__()
        if num_codes < 2 or code_dim < 1:
            raise ValueError(f"quantizer needs num_codes >= 2 and code_dim >= 1, got {num_codes}, {code_dim}")
        if not 0.0 < mu < 1.0:
            raise ValueError(f"EMA decay mu must lie in (0, 1), got {mu}")
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.mu = mu
        self.reset_fraction = reset_fraction
        self.register_buffer("codebook", torch.zeros(num_codes, code_dim))
        # Training statistics only: not part of the released state dict (which holds just the codebook).
        self.register_buffer("code_sum", torch.zeros(num_codes, code_dim), persistent=False)
        self.register_buffer("code_count", torch.zeros(num_codes), persistent=False)
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool), persistent=False)
        self.register_load_state_dict_post_hook(_after_load)

    # -- inference ---------------------------------------------------------------------------------
    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, code_dim) -> code indices (N,), nearest codebook entry in Euclidean distance."""
        cb = self.codebook
        # |x|^2 - 2 x.c + |c|^2; the |x|^2 term does not change the argmin, keep it for readable distances.
        dist = x.pow(2).sum(-1, keepdim=True) - 2 * x @ cb.t() + cb.pow(2).sum(-1)[None, :]
        return dist.argmin(dim=-1)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.codebook)

    # -- training ----------------------------------------------------------------------------------
    def _tile(self, x: torch.Tensor) -> torch.Tensor:
        """Enough candidate vectors (with a little noise when repeated) to re-seed every code."""
        n = x.shape[0]
        if n >= self.num_codes:
            return x
        reps = (self.num_codes + n - 1) // n
        out = x.repeat(reps, 1)
        std = 0.01 / (self.code_dim**0.5)
        return out + torch.randn_like(out) * std

    def _threshold(self, n: int) -> float:
        return max(self.reset_fraction * n / self.num_codes, 1e-3)

    @torch.no_grad()
    def _init_codebook(self, x: torch.Tensor) -> None:
        cand = self._tile(x)
        idx = torch.randperm(cand.shape[0], device=x.device)[: self.num_codes]
        self.codebook.copy_(cand[idx])
        # Start every code at the threshold: a code no input picks in the first step is re-seeded
        # at once, before the encoder's early drift can strand it (as T2M-GPT's 1.0 does).
        c = self._threshold(x.shape[0])
        self.code_sum.copy_(self.codebook * c)
        self.code_count.fill_(c)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        onehot = torch.zeros(self.num_codes, x.shape[0], device=x.device, dtype=x.dtype)
        onehot.scatter_(0, codes[None, :], 1.0)
        step_sum = onehot @ x
        step_count = onehot.sum(-1)
        self.code_sum.mul_(self.mu).add_(step_sum, alpha=1 - self.mu)
        self.code_count.mul_(self.mu).add_(step_count, alpha=1 - self.mu)
        cand = self._tile(x)
        rand = cand[torch.randperm(cand.shape[0], device=x.device)[: self.num_codes]]
        threshold = self._threshold(x.shape[0])
        alive = (self.code_count >= threshold).to(x.dtype)[:, None]
        self.codebook.copy_(alive * self.code_sum / self.code_count.clamp_min(1e-8)[:, None] + (1 - alive) * rand)
        # A re-seeded code starts its statistics afresh from its new vector (sum = vector x count,
        # so the running mean is the vector itself).
        dead = alive[:, 0] == 0
        self.code_sum[dead] = rand[dead] * threshold
        self.code_count[dead] = threshold
        prob = step_count / max(x.shape[0], 1)
        return torch.exp(-(prob * torch.log(prob + 1e-7)).sum())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, code_dim, T) -> (quantised x with straight-through gradient, codes (B, T),
        commitment loss, codebook perplexity)."""
        b, c, t = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, c)
        if self.training and not bool(self.initialized):
            self._init_codebook(flat.detach())
        codes = self.quantize(flat.detach())
        if self.training:
            perplexity = self._ema_update(flat.detach(), codes)
        else:
            with torch.no_grad():
                prob = torch.bincount(codes, minlength=self.num_codes).to(x.dtype) / codes.numel()
                perplexity = torch.exp(-(prob * torch.log(prob + 1e-7)).sum())
        q = self.dequantize(codes)
        commit = F.mse_loss(flat, q.detach())
        q = flat + (q - flat).detach()
        return q.view(b, t, c).permute(0, 2, 1).contiguous(), codes.view(b, t), commit, perplexity
