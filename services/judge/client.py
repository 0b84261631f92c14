"""The OpenAI-compatible client the judge and the LLM composer share: API key handling that never
lets the key out, our own counted retries with exponential backoff and seeded jitter, and strict
reading of what came back.

The key comes from ATOM_JUDGE_API_KEY, else OPENAI_API_KEY, else a key file (argument or
ATOM_JUDGE_API_KEY_FILE). It lives in a Secret whose repr is masked; every error text we record
passes through `redact`, and the openai/httpx loggers get a redacting filter.

Errors, by what the caller should do with them:
- JudgeAccountError (401 key refused, 403 permission refused, 429 insufficient_quota): every later
  call would fail the same way, so it fails the whole request, unretried. Its subclasses are the
  atom.runtime.errors types, so the gRPC status says which (UNAUTHENTICATED, PERMISSION_DENIED,
  RESOURCE_EXHAUSTED), and the message says which variable or file to fix.
- JudgeUnavailable: retryable trouble (429 rate limit, 5xx, timeouts) outlasted the retries.
- JudgeRequestError: this request was refused (400, 404, 422...); another may pass.
- MalformedReply: a 2xx whose body is not a chat completion; this question failed, not the rest.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TypeGuard, TypeVar
from urllib.parse import urlsplit

import openai

from atom.runtime.errors import PermissionDenied, ResourceExhausted, Unauthenticated

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

    def __init__(self, message: str, attempts: int, status: int | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class JudgeAccountError(RuntimeError):
    """The endpoint refused the account itself (its key, its permissions, its quota). Never
    retried, and never turned into one item's error: every other item would be refused too."""

    def __init__(self, message: str, attempts: int, status: int):
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class JudgeUnauthenticated(JudgeAccountError, Unauthenticated):
    """HTTP 401: the key is missing, wrong, revoked or for another endpoint."""


class JudgePermissionDenied(JudgeAccountError, PermissionDenied):
    """HTTP 403: the key is valid but may not do this (model, project, organisation, region)."""


class JudgeQuotaExhausted(JudgeAccountError, ResourceExhausted):
    """HTTP 429 with code insufficient_quota: the account is out of credit, not just too fast."""


class MalformedReply(ValueError):
    """A 2xx reply that is not a chat completion: not JSON, cut off, or JSON of another shape."""


class Secret:
    """A string that does not show itself in reprs, str() or f-strings. `source` says where it came
    from ("$OPENAI_API_KEY", "the key file /run/secrets/key"), for error messages."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = ""):
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into a cache or a worker message
        raise TypeError("Secret cannot be pickled")


def resolve_api_key(key_file: str | Path | None = None, env: Mapping[str, str] | None = None, required: bool = True) -> Secret:
    env = os.environ if env is None else env
    for name in KEY_ENV_VARS:
        if env.get(name, "").strip():
            return Secret(env[name].strip(), f"${name}")
    path = key_file or env.get(KEY_FILE_ENV)
    if path:
        p = Path(path).expanduser()
        try:
            value = p.read_text().strip()
        except OSError as exc:
            raise JudgeConfigError(f"cannot read the API key file {p}: {exc.strerror or exc}") from None
        if not value:
            if not required:  # an endpoint without auth (vLLM, Ollama): the mounted file may be empty
                return Secret(NO_KEY, f"the empty key file {p}")
            raise JudgeConfigError(f"the API key file {p} is empty")
        return Secret(value, f"the key file {p}")
    if required:
        raise JudgeConfigError(
            f"no API key for the VLM judge: set {' or '.join(KEY_ENV_VARS)}, or point {KEY_FILE_ENV} at a "
            "file holding the key (for an endpoint without auth, configure allow_no_key)"
        )
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
QUOTA_CODE = "insufficient_quota"


def is_quota_error(exc: BaseException) -> bool:
    """A 429 that means "out of credit" rather than "too fast": waiting will not help."""
    return (
        isinstance(exc, openai.APIStatusError)
        and exc.status_code == 429
        and QUOTA_CODE in (getattr(exc, "code", None), getattr(exc, "type", None))
    )


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        if is_quota_error(exc):
            return False
        return exc.status_code in _RETRY_STATUS or exc.status_code >= 500
    return False


def endpoint_name(base_url: str | None) -> str:
    """How error messages name an endpoint: scheme, host and path, never userinfo in the URL."""
    if not base_url:
        return "https://api.openai.com/v1"
    try:
        parts = urlsplit(base_url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port: the request itself will say more
        return "the endpoint"
    if not parts.hostname:
        return "the endpoint"
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _where_keys_come_from(secret: Secret | None) -> str:
    """Which key was used and where keys are read from. Naming the source matters:
    ATOM_JUDGE_API_KEY wins over OPENAI_API_KEY, so a stale one can hide a good one."""
    used = f"The key came from {secret.source}" if secret is not None and secret.source else "No key was set"
    return f"{used}; the judge reads {' or '.join(KEY_ENV_VARS)}, else the file named by {KEY_FILE_ENV}."


_ERROR_CODE_PREFIX = re.compile(r"^Error code: \d+ - ")


def account_error(exc: BaseException, attempts: int, secret: Secret | None, endpoint: str = "the endpoint") -> JudgeAccountError | None:
    """The JudgeAccountError for a refused key / permission / quota, else None. The message is one
    line and redacted: endpoints echo (parts of) the key they refused."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    status = exc.status_code
    said = redact(_ERROR_CODE_PREFIX.sub("", " ".join(str(exc.message).split())), secret)[:300]
    keys = _where_keys_come_from(secret)
    if status == 401:
        return JudgeUnauthenticated(f"{endpoint} rejected the API key (HTTP 401: {said}). Set a valid key for it. {keys}", attempts, status)
    if status == 403:
        return JudgePermissionDenied(
            f"{endpoint} refused this API key permission (HTTP 403: {said}). Use a key whose project may use "
            f"this model, or another model. {keys}",
            attempts,
            status,
        )
    if is_quota_error(exc):
        return JudgeQuotaExhausted(
            f"{endpoint}: the account behind the API key is out of quota (HTTP 429 {QUOTA_CODE}: {said}); "
            f"retrying will not help. Add credit or raise the limit in the provider's billing settings, or "
            f"set another account's key. {keys}",
            attempts,
            status,
        )
    return None


# -- reading replies -------------------------------------------------------------------------------


def create_completion(client: openai.OpenAI, **kwargs):
    """chat.completions.create, with a 2xx body that does not decode raised as MalformedReply.
    (A body served as text/* comes back as a str instead; `reply_text` refuses that.)"""
    try:
        return client.chat.completions.create(**kwargs)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedReply(f"the reply body is not JSON ({exc})") from None


def _is_count(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def reply_usage(resp) -> tuple[int, int] | None:
    """(prompt tokens, completion tokens) as the provider reports them, or None when the reply has
    no readable usage block. The openai client does not validate replies, so check the types."""
    usage = getattr(resp, "usage", None)
    prompt, completion = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    if not _is_count(prompt):
        return None
    return prompt, completion if _is_count(completion) else 0


def reply_text(resp) -> str | None:
    """The first choice's message text (None when the model sent none); MalformedReply when the
    reply is not a chat completion at all."""
    if isinstance(resp, (str, bytes)):
        raise MalformedReply(f"the reply is not JSON: {str(resp)[:200]!r}")
    choices = getattr(resp, "choices", None)
    if choices is None:
        raise MalformedReply(f"the reply has no 'choices' ({type(resp).__name__})")
    if not isinstance(choices, list):
        raise MalformedReply(f"the reply's 'choices' is not a list: {str(choices)[:100]!r}")
    if not choices:
        return None
    message = getattr(choices[0], "message", None)
    if message is None or not hasattr(message, "content"):
        raise MalformedReply(f"the reply's first choice has no message: {str(choices[0])[:100]!r}")
    if message.content is not None and not isinstance(message.content, str):
        raise MalformedReply(f"the reply's message content is not text: {str(message.content)[:100]!r}")
    return message.content


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

    def __init__(
        self,
        policy: RetryPolicy,
        seed: int = 0,
        sleep: Callable[[float], None] | None = None,
        secret: Secret | None = None,
        on_retry: Callable[[], None] | None = None,
        endpoint: str = "the endpoint",
    ):
        import time

        self.policy = policy
        self.endpoint = endpoint  # named in account errors
        self._on_retry = on_retry
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._sleep = sleep or time.sleep
        self._secret = secret
        self.retries = 0  # total retries made (all calls)

    def delay(self, retry_index: int, exc: BaseException | None = None) -> float:
        with self._lock:
            jitter = 0.5 + self._rng.random()
        d = min(self.policy.max_delay_s, self.policy.base_delay_s * (2**retry_index)) * jitter
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
        """(result, attempts made). attempt(n) gets the 1-based attempt number. Raises
        JudgeAccountError, JudgeRequestError or JudgeUnavailable for HTTP trouble; anything else
        attempt() raises passes through."""
        n = 0
        while True:
            n += 1
            try:
                return attempt(n), n
            except openai.APIError as exc:
                account = account_error(exc, n, self._secret, self.endpoint)
                if account is not None:
                    raise account from None
                if not is_retryable(exc):
                    raise JudgeRequestError(self.describe(exc), n, getattr(exc, "status_code", None)) from None
                if n > self.policy.max_retries:
                    raise JudgeUnavailable(f"gave up after {n} attempts: {self.describe(exc)}", n) from None
                d = self.delay(n - 1, exc)
                with self._lock:
                    self.retries += 1
                if self._on_retry is not None:
                    self._on_retry()
                log.info("judge endpoint: %s; retry %d/%d in %.2fs", self.describe(exc), n, self.policy.max_retries, d)
                self._sleep(d)
