"""One check for records read from JSON into dataclasses: every key must be a field."""

from __future__ import annotations

from dataclasses import fields


def check_fields(cls: type, d: dict, what: str, error: type[Exception] = ValueError) -> None:
    """Raise `error` naming the keys of `d` that are not fields of the dataclass `cls`, and the
    fields it has: a typo in a config or job file is an error, not a silently ignored setting."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise error(f"unknown {what} fields {unknown}; known fields: {sorted(known)}")
