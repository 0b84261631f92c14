"""Domain errors and the gRPC status each one becomes.

Servicers raise plain Python exceptions; the server interceptor turns them into status codes with
the exception's message, so a client always learns what was wrong and what to do.
"""

from __future__ import annotations

import grpc

from atom.store import ArtifactNotFound, StoreUnavailable


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


def require(condition: bool, field: str, problem: str) -> None:
    if not condition:
        raise InvalidArgument(field, problem)


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The status code for an exception raised inside a handler."""
    # Order matters: ArtifactNotFound is a KeyError and StoreError; MotionFormatError a ValueError.
    if isinstance(exc, ArtifactNotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, (StoreUnavailable, Unavailable)):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, ResourceExhausted) or type(exc).__name__ in ("BudgetExceeded",):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, FailedPrecondition):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL
