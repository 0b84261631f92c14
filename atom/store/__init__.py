"""The artifact store: one interface, two backends (local directory, S3 via minio).

Every artifact that crosses a service boundary lives here; gRPC messages carry only keys.
"""

from atom.store.base import (
    ArtifactInfo,
    ArtifactNotFound,
    ArtifactStore,
    CorruptArtifact,
    StoreError,
    StoreUnavailable,
    content_key,
    sha256_hex,
)
from atom.store.local import LocalStore
from atom.store.open import open_store

__all__ = [
    "ArtifactInfo",
    "ArtifactNotFound",
    "ArtifactStore",
    "CorruptArtifact",
    "LocalStore",
    "StoreError",
    "StoreUnavailable",
    "content_key",
    "open_store",
    "sha256_hex",
]
