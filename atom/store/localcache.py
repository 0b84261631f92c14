"""Local copies of store trees, for code that reads files (dataset readers, training).

A tree is copied once per host into a cache directory and reused. Each copy is made in a folder
of its own and renamed into place with its completion marker inside, so an interrupted copy is
redone, never half-used, and jobs that ask for the same tree at once (a first run's pretraining and
evaluator training) do not write into each other's files: the first rename wins, the other copy
is dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from atom.store.base import ArtifactStore, sha256_hex

_MARKER = ".atom-complete"


def cache_root() -> Path:
    return Path(os.environ.get("ATOM_CACHE_DIR") or Path(tempfile.gettempdir()) / "atom-cache")


def local_tree(store: ArtifactStore, prefix: str, root: Path | None = None) -> Path:
    """A local directory holding every key under `prefix/`; a plain local path is used as is."""
    if Path(prefix).is_dir() and (Path(prefix).is_absolute() or prefix.startswith(".")):
        return Path(prefix)
    tag = sha256_hex(f"{store.url}|{prefix}".encode())[:12]
    local = (root or cache_root()) / f"{prefix.strip('/').replace('/', '_')}-{tag}"
    if (local / _MARKER).exists():
        return local
    local.parent.mkdir(parents=True, exist_ok=True)
    part = Path(tempfile.mkdtemp(prefix=f"{local.name}.part-", dir=local.parent))
    try:
        store.get_tree(prefix, part)
        (part / _MARKER).write_text("ok\n")
        for attempt in range(2):
            try:
                part.rename(local)
                break
            except OSError:  # a folder is there: another copy won, or an unfinished one was left
                if (local / _MARKER).exists():
                    break
                if attempt:
                    raise
                shutil.rmtree(local, ignore_errors=True)
        return local
    finally:
        shutil.rmtree(part, ignore_errors=True)
