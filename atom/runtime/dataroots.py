"""Which local directories a service may read when a request names a path instead of a store key.

A gRPC request is anyone's input. Reading a path it names would let a caller read, and learn the
existence of, files anywhere the service's user can (`/etc`, `../../home`). So a service reads
only the store unless its operator allows local directories explicitly:

    ATOM_DATA_ROOTS=/data/humanml3d:/data/deps   # os.pathsep-separated absolute directories

A request's local path is used only when, fully resolved (symlinks and `..` followed), it lies
under one of those roots. The refusal is decided before the file system is touched, so it never
tells whether the path exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from atom.runtime.errors import PermissionDenied

ENV = "ATOM_DATA_ROOTS"


def looks_local(value: str) -> bool:
    """A value the caller meant as a file system path rather than a store prefix."""
    parts = value.replace("\\", "/").split("/")
    return value.startswith(("/", "~", ".")) or ".." in parts


def allowed_roots(env: dict | None = None) -> list[Path]:
    raw = (env if env is not None else os.environ).get(ENV, "")
    return [Path(p).resolve() for p in raw.split(os.pathsep) if p.strip()]


def resolve_local(value: str, field: str, env: dict | None = None) -> Path | None:
    """The local directory `value` names, if it is a path under an allowed root; None if it is a
    store prefix; PermissionDenied if it is a path outside every allowed root."""
    if not looks_local(value):
        return None
    roots = allowed_roots(env)
    if not roots:
        raise PermissionDenied(
            f"field '{field}': local paths are not read by this service; import the directory into the "
            f"store and pass its prefix, or start the service with {ENV}=<dir> to allow paths under <dir>"
        )
    path = Path(os.path.expanduser(value)).resolve()
    if not any(path == root or root in path.parents for root in roots):
        raise PermissionDenied(
            f"field '{field}': the path is outside the data roots this service may read "
            f"({ENV}); pass a store prefix or a path under one of those roots"
        )
    return path
