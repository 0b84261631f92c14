"""The OpenAI-compatible client the judge and the LLM composer share: API key handling that never
lets the key out, and our own counted retries with exponential backoff and seeded jitter.

The key comes from ATOM_JUDGE_API_KEY, else OPENAI_API_KEY, else a key file (argument or
ATOM_JUDGE_API_KEY_FILE). It lives in a Secret whose repr is masked; every error text we record
passes through `redact`, and the openai/httpx loggers get a redacting filter.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import openai

log = logging.getLogger(__name__)

KEY_ENV_VARS = ("ATOM_JUDGE_API_KEY", "OPENAI_API_KEY")
KEY_FILE_ENV = "ATOM_JUDGE_API_KEY_FILE"
NO_KEY = "EMPTY"  # what self-hosted endpoints without auth conventionally accept

T = TypeVar("T")


class JudgeConfigError(ValueError):
    """The judge is not configured well enough to run (no key, bad endpoint settings)."""


class JudgeUnavailable(RuntimeError):
    """The endpoint kept failing with retryable errors (429, 5xx, timeouts) until retries ran out."""

    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


class JudgeRequestError(RuntimeError):
    """The endpoint refused the request for a reason a retry will not fix (400, 404, 422...)."""

    def __init__(self, message: str, attempts: int, status: int | None = None, auth: bool = False):
        super().__init__(message)
        self.attempts = attempts
        self.status = status
        self.auth = auth


class Secret:
    """A string that does not show itself in reprs, str() or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into a cache or a worker message
        raise TypeError("Secret cannot be pickled")


def resolve_api_key(key_file: str | Path | None = None, env: dict | None = None,
                    required: bool = True) -> Secret:
    env = os.environ if env is None else env
    for name in KEY_ENV_VARS:
        if env.get(name, "").strip():
            return Secret(env[name].strip())
    path = key_file or env.get(KEY_FILE_ENV)
    if path:
        p = Path(path).expanduser()
        try:
            value = p.read_text().strip()
        except OSError as exc:
            raise JudgeConfigError(f"cannot read the API key file {p}: {exc.strerror or exc}") from None
        if not value:
            raise JudgeConfigError(f"the API key file {p} is empty")
        return Secret(value)
    if required:
        raise JudgeConfigError(
            f"no API key for the VLM judge: set {' or '.join(KEY_ENV_VARS)}, or point {KEY_FILE_ENV} at a "
            "file holding the key (for an endpoint without auth, configure allow_no_key)")
    return Secret(NO_KEY)


_GENERIC_KEYS = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9_\-\.=]+)")


def redact(text: str, secret: Secret | None = None) -> str:
    if secret is not None and secret.reveal() and secret.reveal() != NO_KEY:
        text = text.replace(secret.reveal(), "***")
    return _GENERIC_KEYS.sub(lambda m: "Bearer ***" if m.group(0).startswith("Bearer") else "sk-***", text)


class RedactingFilter(logging.Filter):
    """Rewrites log records of the HTTP stack so the key cannot reach any handler."""

    def __init__(self, secret: Secret):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        clean = redact(msg, self.secret)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_HTTP_LOGGERS = ("openai", "openai._base_client", "httpx", "httpx2", "httpcore")


def install_log_redaction(secret: Secret) -> RedactingFilter:
    f = RedactingFilter(secret)
    for name in _HTTP_LOGGERS:
        logging.getLogger(name).addFilter(f)
    return f


def remove_log_redaction(f: RedactingFilter) -> None:
    for name in _HTTP_LOGGERS:
        logging.getLogger(name).removeFilter(f)


def make_client(base_url: str | None, secret: Secret, timeout_s: float) -> openai.OpenAI:
    # max_retries=0: our own loop retries, so every attempt is counted and budgeted.
    return openai.OpenAI(api_key=secret.reveal(), base_url=base_url or None, max_retries=0, timeout=timeout_s)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry settings must be >= 0")


_RETRY_STATUS = {408, 409, 429}


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUS or exc.status_code >= 500
    return False


def _retry_after(exc: BaseException) -> float | None:
    resp = getattr(exc, "response", None)
    value = resp.headers.get("retry-after") if resp is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Retrier:
    """Runs one attempt function until it succeeds, a non-retryable error comes, or retries run
    out. Backoff: min(max, base * 2^n) scaled by a jitter factor in [0.5, 1.5) from a seeded
    generator; a server's Retry-After is honoured up to max_delay_s."""

    def __init__(self, policy: RetryPolicy, seed: int = 0, sleep: Callable[[float], None] | None = None,
                 secret: Secret | None = None, on_retry: Callable[[], None] | None = None):
        import time

        self.policy = policy
        self._on_retry = on_retry
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._sleep = sleep or time.sleep
        self._secret = secret
        self.retries = 0  # total retries made (all calls)

    def delay(self, retry_index: int, exc: BaseException | None = None) -> float:
        with self._lock:
            jitter = 0.5 + self._rng.random()
        d = min(self.policy.max_delay_s, self.policy.base_delay_s * (2 ** retry_index)) * jitter
        ra = _retry_after(exc) if exc is not None else None
        if ra is not None:
            d = max(d, min(ra, self.policy.max_delay_s))
        return d

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, openai.APITimeoutError):
            text = "request timed out"
        elif isinstance(exc, openai.APIStatusError):
            text = f"HTTP {exc.status_code}: {exc.message}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return redact(text, self._secret)[:500]

    def run(self, attempt: Callable[[int], T]) -> tuple[T, int]:
        """(result, attempts made). attempt(n) gets the 1-based attempt number."""
        n = 0
        while True:
            n += 1
            try:
                return attempt(n), n
            except openai.APIError as exc:
                if not is_retryable(exc):
                    status = getattr(exc, "status_code", None)
                    raise JudgeRequestError(self.describe(exc), n, status,
                                            auth=status in (401, 403)) from None
                if n > self.policy.max_retries:
                    raise JudgeUnavailable(f"gave up after {n} attempts: {self.describe(exc)}", n) from None
                d = self.delay(n - 1, exc)
                with self._lock:
                    self.retries += 1
                if self._on_retry is not None:
                    self._on_retry()
                log.info("judge endpoint: %s; retry %d/%d in %.2fs", self.describe(exc), n,
                         self.policy.max_retries, d)
                self._sleep(d)
