"""Domain errors and the gRPC status each one becomes.

Servicers raise plain Python exceptions; the server interceptor turns them into status codes with
the exception's message, so a client always learns what was wrong and what to do.
"""

from __future__ import annotations

import grpc

from atom.store import ArtifactNotFound, StoreUnavailable
from atom.store.base import check_key


class InvalidArgument(ValueError):
    """A request field is wrong. The message names the field."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"field '{field}': {problem}")


class FailedPrecondition(RuntimeError):
    """The request is well-formed but the system is not in a state to serve it."""


class Unavailable(RuntimeError):
    """Something this service depends on (a GL context, an upstream API) cannot be used now."""


class ResourceExhausted(RuntimeError):
    """A budget or quota would be exceeded."""


class Unauthenticated(RuntimeError):
    """An upstream API refused our credentials (HTTP 401). The message names the variable to set."""


class PermissionDenied(RuntimeError):
    """An upstream API or this service's policy refuses the request (HTTP 403, a path outside the
    allowed data roots)."""


def require(condition: bool, field: str, problem: str) -> None:
    if not condition:
        raise InvalidArgument(field, problem)


def require_key(value: str, field: str, hint: str) -> str:
    """A store key or prefix named in a request: present and well-formed, checked before the
    request reads or writes anything. Returns it without a trailing slash."""
    require(bool(value), field, f"is empty; {hint}")
    try:
        return check_key(value.rstrip("/"))
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from None


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The status code for an exception raised inside a handler."""
    # Order matters: ArtifactNotFound is a KeyError and StoreError; MotionFormatError a ValueError.
    if isinstance(exc, ArtifactNotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, (StoreUnavailable, Unavailable)):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, ResourceExhausted):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED
    if isinstance(exc, PermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED
    if isinstance(exc, FailedPrecondition):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL
