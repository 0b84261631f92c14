"""Local copies of store trees, for code that reads files (dataset readers, training).

A tree is copied once per process host into a cache directory and reused; a marker written
after the copy says it is complete, so an interrupted copy is redone, never half-used.
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
    if local.exists():
        shutil.rmtree(local)
    store.get_tree(prefix, local)
    (local / _MARKER).write_text("ok\n")
    return local
