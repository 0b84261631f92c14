"""The store interface and its errors. Backends implement the five primitive methods;
everything else (JSON, content addressing, files) is built on them here, once."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import tempfile
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from atom.store.jsonl import encode_jsonl, encode_jsonl_row, iter_jsonl, iter_jsonl_chunks

CHUNK = 1 << 20
_KEY_RE = re.compile(r"^[A-Za-z0-9._\-=+@,]+(/[A-Za-z0-9._\-=+@,]+)*$")


class StoreError(Exception):
    """Base class of store failures; the message says what failed and what to do."""


class ArtifactNotFound(StoreError, KeyError):
    def __init__(self, key: str, where: str = ""):
        self.key = key
        super().__init__(f"artifact {key!r} not found{(' in ' + where) if where else ''}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class CorruptArtifact(StoreError, ValueError):
    """An artifact exists but its bytes are not what its kind must be (JSON that does not parse)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (S3 endpoint down, directory not writable)."""


@dataclass(frozen=True)
class ArtifactInfo:
    key: str
    sha256: str
    size: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StoreSink:
    """What a streaming write (ArtifactStore.open_writer) writes through: bytes go to `fh`, and the
    size and sha256 are counted on the way, so the ArtifactInfo needs no second read."""

    def __init__(self, key: str, fh: BinaryIO):
        self.key, self._fh, self._sha, self.size = key, fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._sha.update(data)
        self.size += len(data)

    def write_row(self, row: dict) -> None:
        """One JSON Lines row, encoded as put_jsonl encodes it."""
        self.write(encode_jsonl_row(row))

    @property
    def info(self) -> ArtifactInfo:
        return ArtifactInfo(self.key, self._sha.hexdigest(), self.size)


def content_key(prefix: str, data: bytes, suffix: str = "") -> str:
    return f"{prefix.rstrip('/')}/{sha256_hex(data)}{suffix}"


MAX_KEY_BYTES = 1024  # S3's limit; every backend keeps it so a key works everywhere


def check_key(key: str) -> str:
    """Keys are relative, slash-separated, with no '..' parts: the same key works on every backend."""
    if isinstance(key, str) and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        # Not echoed: a caller's oversized key would otherwise travel back in every error reply.
        raise ValueError(f"invalid artifact key: {len(key)} characters, more than the {MAX_KEY_BYTES} bytes allowed")
    if not isinstance(key, str) or not _KEY_RE.match(key) or any(p in (".", "..") for p in key.split("/")):
        shown = repr(key[:80] + "..." if isinstance(key, str) and len(key) > 80 else key)
        raise ValueError(
            f"invalid artifact key {shown}: use relative slash-separated names of letters, digits and ._-=+@, (no leading slash, no '..')"
        )
    return key


class ArtifactStore(ABC):
    """Put/get/stream/exists/list/delete over keys. Writes are atomic: a reader sees the whole
    object or nothing, also after a crash mid-write."""

    url: str

    # -- primitives each backend implements -------------------------------------------------
    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ArtifactInfo: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """All keys that start with `prefix`, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a key; removing a missing key is not an error."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be used right now."""

    # -- built on the primitives --------------------------------------------------------------
    def put_content_addressed(
        self, prefix: str, data: bytes, suffix: str = "", content_type: str = "application/octet-stream"
    ) -> ArtifactInfo:
        key = content_key(prefix, data, suffix)
        if self.exists(key):  # same bytes, same key: nothing to write
            return ArtifactInfo(key, key.rsplit("/", 1)[1][:64], len(data))
        return self.put_bytes(key, data, content_type)

    def put_json(self, key: str, obj) -> ArtifactInfo:
        data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
        return self.put_bytes(key, data, "application/json")

    def get_json(self, key: str):
        data = self.get_bytes(key)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise CorruptArtifact(f"artifact {key!r} in {self.url} is not valid JSON ({exc}); delete it to regenerate") from None

    def put_jsonl(self, key: str, rows) -> ArtifactInfo:
        return self.put_bytes(key, encode_jsonl(rows), "application/x-ndjson")

    def get_jsonl(self, key: str) -> builtins.list:  # builtins: the method list() shadows the type in here
        return [obj for _where, obj in iter_jsonl(self.get_bytes(key), f"artifact {key!r}", CorruptArtifact)]

    def stream_jsonl(self, key: str) -> Iterator:
        """The rows of a JSONL artifact one at a time, read in chunks: memory holds one line, not
        the file (get_jsonl's rows and errors, line numbers included)."""
        for _where, obj in iter_jsonl_chunks(self.iter_chunks(key), f"artifact {key!r}", CorruptArtifact):
            yield obj

    @contextmanager
    def open_writer(self, key: str, content_type: str = "application/octet-stream") -> Iterator[StoreSink]:
        """Write an artifact piece by piece (sink.write, sink.write_row); it appears under `key` only
        when the block ends without an exception, whole (the store's atomic-write promise), and
        sink.info is then its ArtifactInfo. This default spools to a local temporary file and
        uploads it with put_file; a backend that can do better overrides it."""
        fd, tmp = tempfile.mkstemp(prefix="atom-spool-")
        try:
            with os.fdopen(fd, "wb") as fh:
                sink = StoreSink(key, fh)
                yield sink
            self.put_file(key, tmp, content_type)
        finally:
            os.unlink(tmp)

    def put_file(self, key: str, path: str | Path, content_type: str = "application/octet-stream") -> ArtifactInfo:
        return self.put_bytes(key, Path(path).read_bytes(), content_type)

    def get_file(self, key: str, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as fh:
            for chunk in self.iter_chunks(key):
                fh.write(chunk)
        tmp.replace(path)
        return path

    def put_tree(self, prefix: str, root: str | Path) -> builtins.list[ArtifactInfo]:
        """Upload every file under `root` to prefix/<relative path>."""
        root = Path(root)
        return [self.put_file(f"{prefix.rstrip('/')}/{p.relative_to(root).as_posix()}", p) for p in sorted(root.rglob("*")) if p.is_file()]

    def get_tree(self, prefix: str, root: str | Path) -> Path:
        """Download every key under prefix/ into root, keeping relative paths."""
        prefix = prefix.rstrip("/") + "/"
        keys = self.list(prefix)
        if not keys:
            raise ArtifactNotFound(prefix, self.url)
        for key in keys:
            self.get_file(key, Path(root) / key[len(prefix) :])
        return Path(root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
