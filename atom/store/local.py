"""A store in a local directory: the embedded default."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from atom.store.base import CHUNK, ArtifactInfo, ArtifactNotFound, ArtifactStore, StoreSink, StoreUnavailable, check_key

_TMP_PREFIX = ".tmp-"


class LocalStore(ArtifactStore):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ArtifactInfo:
        # Written beside the target, fsynced, then renamed (open_writer): rename is atomic on POSIX,
        # so a reader (or a process restarted after a crash) sees the old object or the new one.
        try:
            with self.open_writer(key, content_type) as sink:
                sink.write(data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {key!r} under {self.root}: {exc.strerror or exc}") from None
        return sink.info

    @contextmanager
    def open_writer(self, key: str, content_type: str = "application/octet-stream") -> Iterator[StoreSink]:
        """As put_bytes, piece by piece: the pieces go to a temporary file beside the target, which
        is renamed onto it only after the last one (a crash leaves a .tmp- file that list() skips
        and nothing under `key`)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {key!r} under {self.root}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                sink = StoreSink(key, fh)
                yield sink
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArtifactNotFound(key, self.url) from None

    def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        try:
            fh = open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArtifactNotFound(key, self.url) from None
        with fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        if ".." in prefix.split("/") or prefix.startswith("/"):
            raise ValueError(f"invalid list prefix {prefix!r}: use a relative prefix without '..'")
        if not self.root.is_dir():
            return []
        # Walk only the deepest directory the prefix names, not the whole store.
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(_TMP_PREFIX):
                    continue  # an unfinished write: not an artifact
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"store directory {self.root} cannot be created: {exc.strerror or exc}") from None
        if not os.access(self.root, os.W_OK):
            raise StoreUnavailable(f"store directory {self.root} is not writable; pass --store with a writable path")
