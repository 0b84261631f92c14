"""Spending and rate limits for a paid judge: a cost model, a hard budget cap that refuses a
call before it could overspend, and token buckets for requests and tokens per minute.

A BudgetLedger lives in memory: it caps what the objects sharing it spend, in this process only.
The judge service shares one ledger between all its judges (services/judge/server.py); replicas
of the service do not share anything, each holds its own cap."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

from atom.runtime.errors import ResourceExhausted

log = logging.getLogger(__name__)


class BudgetExceeded(ResourceExhausted):
    """The next call could take spending past the cap; it was not made. (RESOURCE_EXHAUSTED if it
    ever reaches a gRPC status.)"""


@dataclass(frozen=True)
class CostModel:
    """Prices and the token estimates used to bound a call's cost before making it.

    The estimate is meant as an upper bound: text counts one token per `chars_per_token` UTF-8
    bytes (1.0 is safe for byte-level BPE tokenizers, which never make more tokens than bytes),
    each image `image_tokens` (765 = a 1024x1024 image at high detail for GPT-4o-class models;
    lower it for detail 'low', 85), the completion its max_completion_tokens.
    Defaults are GPT-4o list prices per 1K tokens; set your endpoint's.
    """

    usd_per_1k_input: float = 0.0025
    usd_per_1k_output: float = 0.01
    image_tokens: int = 765
    chars_per_token: float = 1.0
    message_overhead_tokens: int = 8
    max_completion_tokens: int = 300

    def __post_init__(self) -> None:
        if self.usd_per_1k_input < 0 or self.usd_per_1k_output < 0:
            raise ValueError("prices must be >= 0")
        if self.chars_per_token <= 0 or self.image_tokens < 0 or self.max_completion_tokens < 1:
            raise ValueError("chars_per_token must be > 0, image_tokens >= 0, max_completion_tokens >= 1")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens / 1000 * self.usd_per_1k_input + completion_tokens / 1000 * self.usd_per_1k_output

    def estimate_prompt_tokens(self, text_bytes: int, n_images: int, n_messages: int = 2) -> int:
        return math.ceil(text_bytes / self.chars_per_token) + n_images * self.image_tokens + (n_messages + 1) * self.message_overhead_tokens

    def estimate(self, text_bytes: int, n_images: int, n_messages: int = 2) -> tuple[int, int, float]:
        """(prompt tokens, completion tokens, usd): the most one call is expected to cost."""
        p = self.estimate_prompt_tokens(text_bytes, n_images, n_messages)
        c = self.max_completion_tokens
        return p, c, self.cost(p, c)


@dataclass
class Reservation:
    amount: float  # what is held against the cap
    base: float  # the unscaled estimate
    settled: bool = False


class BudgetLedger:
    """Tracks spend against a hard cap, shared by all threads of a batch.

    A call first reserves its estimated cost; the reservation fails (BudgetExceeded) if spent +
    outstanding reservations + this estimate would pass the cap, so concurrent calls can never
    together overspend. After the call the reservation is settled with the real cost (or released
    when nothing was charged); callers settle in a `finally`, since a reservation left open
    counts against the cap until the process ends. If a real cost ever exceeds its estimate, later estimates are scaled
    up by the worst ratio seen, so the bound tightens instead of drifting."""

    def __init__(self, cap_usd: float | None = None):
        if cap_usd is not None and cap_usd < 0:
            raise ValueError(f"budget cap must be >= 0, got {cap_usd}")
        self.cap_usd = math.inf if cap_usd is None else float(cap_usd)
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.estimate_factor = 1.0
        self.refused = 0
        self._lock = threading.Lock()

    def reserve(self, estimate_usd: float) -> Reservation:
        with self._lock:
            amount = estimate_usd * self.estimate_factor
            if self.spent_usd + self.reserved_usd + amount > self.cap_usd + 1e-12:
                self.refused += 1
                raise BudgetExceeded(
                    f"budget cap ${self.cap_usd:.4f} reached: spent ${self.spent_usd:.4f}, in flight "
                    f"${self.reserved_usd:.4f}, next call up to ${amount:.4f}; raise the cap to continue"
                )
            self.reserved_usd += amount
            return Reservation(amount, estimate_usd)

    def settle(self, res: Reservation, actual_usd: float) -> None:
        with self._lock:
            if res.settled:
                return
            res.settled = True
            self.reserved_usd = max(0.0, self.reserved_usd - res.amount)
            self.spent_usd += actual_usd
            if actual_usd > res.amount and res.base > 0:
                ratio = actual_usd / res.base
                self.estimate_factor = max(self.estimate_factor, ratio)
                log.warning(
                    "a judge call cost $%.5f, over its estimate $%.5f; estimates now scaled by %.2f",
                    actual_usd,
                    res.amount,
                    self.estimate_factor,
                )

    def release(self, res: Reservation) -> None:
        self.settle(res, 0.0)

    def charge(self, actual_usd: float) -> None:
        """Count a spend that had no reservation here: the lines of a Batch API job another
        process submitted (and the provider billed) and this one collected."""
        with self._lock:
            self.spent_usd += max(0.0, actual_usd)

    @property
    def remaining_usd(self) -> float:
        with self._lock:
            return self.cap_usd - self.spent_usd - self.reserved_usd


class TokenBucket:
    """Blocking token bucket: `per_minute` tokens refill evenly over a minute, at most
    `per_minute` held. None or 0 means unlimited."""

    def __init__(self, per_minute: float | None, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.per_minute = per_minute or 0
        self.capacity = float(self.per_minute)
        self.tokens = self.capacity
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.per_minute / 60.0)
        self._last = now

    def acquire(self, n: float = 1.0) -> float:
        """Take n tokens, waiting for them if needed; returns seconds waited. A request bigger than
        the whole bucket takes the full bucket (else it could never run)."""
        if not self.per_minute:
            return 0.0
        n = min(float(n), self.capacity)
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self.tokens >= n:
                    self.tokens -= n
                    self.waited_s += waited
                    return waited
                wait = (n - self.tokens) * 60.0 / self.per_minute
            self._sleep(wait)
            waited += wait

    def give_back(self, n: float) -> None:
        """Return tokens reserved but not used (estimate above the real count)."""
        if not self.per_minute or n <= 0:
            return
        with self._lock:
            self.tokens = min(self.capacity, self.tokens + n)
