"""Turn a store URL into a store.

  /some/dir, file:///some/dir           -> LocalStore
  http://host:9000/bucket[/prefix]       -> S3Store (https:// for TLS)
  s3://bucket[/prefix]                   -> S3Store at $ATOM_S3_ENDPOINT (host:port)
Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else a web identity
(IRSA), container credentials or the shared credentials file; see atom.store.s3.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from atom.store.base import ArtifactStore
from atom.store.local import LocalStore

DEFAULT_STORE = ".atom/store"


def open_store(url: str | None = None) -> ArtifactStore:
    url = url or os.environ.get("ATOM_STORE_URL") or DEFAULT_STORE
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStore(parsed.path if parsed.scheme == "file" else url)
    if parsed.scheme in ("http", "https", "s3"):
        from atom.store.s3 import S3Store

        if parsed.scheme == "s3":
            endpoint = os.environ.get("ATOM_S3_ENDPOINT")
            if not endpoint:
                raise ValueError(f"store {url!r}: set ATOM_S3_ENDPOINT=host:port, or use http://host:port/bucket")
            bucket, _, prefix = (parsed.netloc + parsed.path).partition("/")
            secure = os.environ.get("ATOM_S3_SECURE", "0") in ("1", "true", "yes")
        else:
            endpoint = parsed.netloc
            bucket, _, prefix = parsed.path.lstrip("/").partition("/")
            secure = parsed.scheme == "https"
        if not bucket:
            raise ValueError(f"store {url!r} names no bucket; expected e.g. http://127.0.0.1:9000/atom")
        return S3Store(endpoint, bucket, prefix, secure=secure)
    raise ValueError(f"unsupported store URL {url!r}; use a directory path, file://, http(s)://host:port/bucket or s3://bucket")
