"""sha256 of local files and folders a user points the pipeline at (a checkpoint, a dataset, an
evaluator), remembered per (path, size, modification time) so a 1 GB checkpoint or a 5 GB dataset
is read once per machine rather than on every run. A file whose size or mtime changed is hashed
again; the memo lives in the cache directory (ATOM_CACHE_DIR) and is only a shortcut.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from atom.store.localcache import cache_root

_LOCK = threading.Lock()
_MEMO_NAME = "file-hashes.json"


def _memo_path() -> Path:
    return cache_root() / _MEMO_NAME


def _load_memo() -> dict:
    try:
        data = json.loads(_memo_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_memo(memo: dict) -> None:
    path = _memo_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time


def _hash_bytes_of(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def files_sha256(paths: list[Path]) -> list[str]:
    """sha256 of each file, from the memo where size and mtime still match."""
    resolved = [Path(p).resolve() for p in paths]
    keys = []
    for p in resolved:
        st = p.stat()
        keys.append(f"{p}|{st.st_size}|{st.st_mtime_ns}")
    with _LOCK:
        memo = _load_memo()
    missing = [i for i, k in enumerate(keys) if k not in memo]
    fresh = {keys[i]: _hash_bytes_of(resolved[i]) for i in missing}
    if fresh:
        with _LOCK:
            memo = _load_memo()
            memo.update(fresh)
            _save_memo(memo)
    return [fresh.get(k) or memo[k] for k in keys]


def file_sha256(path: str | Path) -> str:
    return files_sha256([Path(path)])[0]


def tree_sha256(root: str | Path) -> str:
    """One hash over a folder's files (relative names and contents), independent of where it lies."""
    root = Path(root)
    files = sorted(q for q in root.rglob("*") if q.is_file())
    h = hashlib.sha256()
    for p, digest in zip(files, files_sha256(files)):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + digest.encode() + b"\n")
    return h.hexdigest()
