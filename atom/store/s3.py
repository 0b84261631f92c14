"""A store on any S3-compatible server (MinIO in deployments) through the `minio` client.

Credentials, first that applies (`credentials_provider`):
  1. keys passed to S3Store (access_key, secret_key, session_token);
  2. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN when the keys are temporary;
  3. a web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: IRSA on EKS, or any OIDC token
     that an STS accepts; ATOM_S3_STS_ENDPOINT points the exchange at another STS, e.g. MinIO's),
     or container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI: ECS, EKS Pod
     Identity), renewed before they expire;
  4. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, AWS_PROFILE);
  5. the EC2 instance role, only when ATOM_S3_IMDS=1 (never probed otherwise);
and anonymous requests when none applies.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Iterator

import urllib3
from minio import Minio
from minio.credentials import AWSConfigProvider, ChainedProvider, EnvAWSProvider, IamAwsProvider, Provider, StaticProvider
from minio.error import S3Error

from atom.store.base import CHUNK, ArtifactInfo, ArtifactNotFound, ArtifactStore, StoreError, StoreUnavailable, check_key, sha256_hex

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NotFound"}


def _shared_credentials_file() -> str | None:
    path = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(os.path.expanduser("~"), ".aws", "credentials")
    return path if os.path.isfile(path) else None


def credentials_provider(
    access_key: str | None = None, secret_key: str | None = None, session_token: str | None = None, *, http_client=None
) -> Provider | None:
    """Where the S3 credentials come from (see the module's docstring); None = anonymous. Only the
    sources that are configured are chained, so nothing is probed that was not asked for."""
    if access_key is not None or secret_key is not None:
        if not access_key:
            return None  # explicitly empty keys: anonymous, as before
        return StaticProvider(access_key, secret_key or "", session_token)
    env = os.environ
    providers: list[Provider] = []
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY"):
        providers.append(EnvAWSProvider())
    web_identity = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN")
    container = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    if web_identity or container:
        providers.append(IamAwsProvider(custom_endpoint=env.get("ATOM_S3_STS_ENDPOINT") or None, http_client=http_client))
    if _shared_credentials_file():
        providers.append(AWSConfigProvider())
    if env.get("ATOM_S3_IMDS", "").lower() in ("1", "true", "yes") and not (web_identity or container):
        providers.append(IamAwsProvider(http_client=http_client))
    if not providers:
        return None
    return _Explained(providers[0] if len(providers) == 1 else ChainedProvider(providers))


class _Explained(Provider):
    """A provider whose failure (an STS that refuses the token, a missing file) is reported as an
    unreachable store naming the source, not as a bare ValueError from deep in the client."""

    def __init__(self, inner: Provider):
        self.inner = inner

    def retrieve(self):
        try:
            return self.inner.retrieve()
        except (ValueError, OSError, urllib3.exceptions.HTTPError, S3Error) as exc:
            raise StoreUnavailable(f"no S3 credentials from {type(self.inner).__name__}: {exc}") from None


class S3Store(ArtifactStore):
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        prefix: str = "",
        *,
        secure: bool = False,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        region: str | None = None,
        timeout_s: float = 10.0,
        create_bucket: bool = True,
    ):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        scheme = "https" if secure else "http"
        self.url = f"{scheme}://{endpoint}/{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        # Our own pool: short timeouts and few retries, so a store that is down is reported in
        # seconds rather than after minio's default minutes of backoff.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=max(timeout_s, 60.0)),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
            maxsize=16,
        )
        self.credentials = credentials_provider(access_key, secret_key, session_token, http_client=http)
        self.client = Minio(
            endpoint,
            credentials=self.credentials,
            secure=secure,
            region=region or os.environ.get("AWS_REGION"),
            http_client=http,
        )
        self._create_bucket = create_bucket
        self._bucket_ready = False

    # Every call goes through here so that connection failures become StoreUnavailable.
    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise
            raise StoreError(f"S3 {what} failed on {self.url}: {exc.code}: {exc.message}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(
                f"S3 store {self.url} is unreachable ({type(exc).__name__}); check that the server is up and --store points at it"
            ) from None

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        if not self._call("bucket check", self.client.bucket_exists, self.bucket):
            if not self._create_bucket:
                raise StoreError(f"bucket {self.bucket!r} does not exist on {self.url}; create it first")
            try:
                self._call("make bucket", self.client.make_bucket, self.bucket)
            except StoreError:
                if not self._call("bucket check", self.client.bucket_exists, self.bucket):
                    raise
        self._bucket_ready = True

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ArtifactInfo:
        name = self._object(key)
        self._ensure_bucket()
        # A single PUT is atomic on S3: readers never see a partial object.
        self._call("put", self.client.put_object, self.bucket, name, io.BytesIO(data), len(data), content_type=content_type)
        return ArtifactInfo(key, sha256_hex(data), len(data))

    def put_file(self, key: str, path: str | Path, content_type: str = "application/octet-stream") -> ArtifactInfo:
        """Upload from the file, not from a copy in memory: minio sends a large file as a multipart
        upload, part by part, and S3 shows the object only once the upload completes."""
        name = self._object(key)
        self._ensure_bucket()
        size, sha = os.path.getsize(path), hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                sha.update(chunk)
            fh.seek(0)
            self._call("put", self.client.put_object, self.bucket, name, fh, size, content_type=content_type)
        return ArtifactInfo(key, sha.hexdigest(), size)

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_chunks(key))

    def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        name = self._object(key)
        try:
            resp = self._call("get", self.client.get_object, self.bucket, name)
        except S3Error:
            raise ArtifactNotFound(key, self.url) from None
        try:
            yield from resp.stream(chunk_size)
        finally:
            resp.close()
            resp.release_conn()

    def exists(self, key: str) -> bool:
        name = self._object(key)
        try:
            self._call("stat", self.client.stat_object, self.bucket, name)
            return True
        except S3Error:
            return False
        except StoreError as exc:
            if "NoSuchBucket" in str(exc):
                return False
            raise

    def list(self, prefix: str = "") -> list[str]:
        if ".." in prefix.split("/"):
            raise ValueError(f"invalid list prefix {prefix!r}: '..' is not allowed")
        full = (self.prefix + "/" if self.prefix else "") + prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            objs = self._call("list", lambda: list(self.client.list_objects(self.bucket, prefix=full, recursive=True)))
        except S3Error:
            return []
        except StoreError as exc:
            if "NoSuchBucket" in str(exc):
                return []
            raise
        return sorted(o.object_name[strip:] for o in objs if not o.is_dir)

    def delete(self, key: str) -> None:
        try:
            self._call("delete", self.client.remove_object, self.bucket, self._object(key))
        except S3Error:
            pass

    def ping(self) -> None:
        self._bucket_ready = False
        self._ensure_bucket()
