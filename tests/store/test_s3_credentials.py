"""Where S3Store's credentials come from, against a real S3 server that checks them.

The server is the store tests' SeaweedFS, started here with one identity (`-s3.config`), so an
anonymous request, a wrong secret or an unknown session token is refused by the server itself.
The web-identity test (IRSA's path) exchanges a token file at a small STS on loopback that
answers AssumeRoleWithWebIdentity as AWS STS does; the keys it hands out are the identity's, so the
whole chain ends in a real signed request.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from atom.store import StoreError, StoreUnavailable
from atom.store.s3 import S3Store, credentials_provider
from atom.testing.s3server import s3_server

KEY, SECRET = "atomsvcaccess", "atom-svc-secret-for-tests"
AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_PROFILE",
    "ATOM_S3_IMDS",
    "ATOM_S3_STS_ENDPOINT",
)


@contextmanager
def auth_s3_server(data_dir: Path):
    """atom.testing.s3server's `weed mini`, with an identity file: unsigned requests are refused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "atom-service",
                        "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    with s3_server(data_dir / "data", config) as endpoint:
        yield endpoint


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch, tmp_path):
    """No credential source leaks in from the machine: no AWS_* variable, no ~/.aws/credentials."""
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-credentials"))


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    with auth_s3_server(tmp_path_factory.mktemp("weed-auth")) as ep:
        # The filer takes a moment after the port opens; wait with good keys until a write passes.
        deadline = time.monotonic() + 60
        while True:
            try:
                S3Store(ep, "warmup", access_key=KEY, secret_key=SECRET).put_bytes("x", b"x")
                break
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield ep


def _round_trip(store: S3Store) -> bytes:
    store.put_bytes("creds/probe.bin", b"signed")
    return store.get_bytes("creds/probe.bin")


def test_keys_from_the_environment(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    store = S3Store(endpoint, "envkeys")
    assert type(store.credentials.inner).__name__ == "EnvAWSProvider"
    assert _round_trip(store) == b"signed"


def test_no_credentials_is_anonymous_and_the_server_refuses(endpoint):
    assert credentials_provider() is None  # nothing configured: nothing probed (no instance metadata)
    with pytest.raises(StoreError, match="AccessDenied"):
        _round_trip(S3Store(endpoint, "anonymous"))


def test_wrong_secret_is_refused(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StoreError, match="SignatureDoesNotMatch"):
        _round_trip(S3Store(endpoint, "wrongsecret"))


def test_session_token_is_sent(endpoint, monkeypatch):
    """Temporary keys come with AWS_SESSION_TOKEN, which must travel with every request
    (X-Amz-Security-Token): this server knows no session, so the same keys that work alone are
    refused once a token rides along."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    assert _round_trip(S3Store(endpoint, "sessiontoken")) == b"signed"
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a-session-this-server-never-issued")
    store = S3Store(endpoint, "sessiontoken")
    assert store.credentials.retrieve().session_token == "a-session-this-server-never-issued"
    with pytest.raises(StoreError, match="InvalidAccessKeyId"):
        _round_trip(store)
    # The same for keys passed in code.
    explicit = S3Store(endpoint, "sessiontoken", access_key=KEY, secret_key=SECRET, session_token="another")
    assert explicit.credentials.retrieve().session_token == "another"
    with pytest.raises(StoreError, match="InvalidAccessKeyId"):
        _round_trip(explicit)


def test_shared_credentials_file(endpoint, monkeypatch, tmp_path):
    path = tmp_path / "credentials"
    path.write_text(
        f"[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
        f"[atom]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("AWS_PROFILE", "atom")
    assert _round_trip(S3Store(endpoint, "sharedfile")) == b"signed"


class _Sts(BaseHTTPRequestHandler):
    """AssumeRoleWithWebIdentity as AWS STS answers it (the fields minio's provider reads)."""

    calls: list[dict] = []
    refuse = False

    def do_POST(self):  # noqa: N802 - http.server's name
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        type(self).calls.append(query)
        if type(self).refuse:
            self.send_response(403)
            self.end_headers()
            self.wfile.write(b"<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>")
            return
        body = (
            '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<AssumeRoleWithWebIdentityResult><Credentials>"
            f"<AccessKeyId>{KEY}</AccessKeyId><SecretAccessKey>{SECRET}</SecretAccessKey>"
            "<SessionToken></SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
            "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def sts():
    _Sts.calls, _Sts.refuse = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Sts
    server.shutdown()
    server.server_close()


def test_web_identity_token_file_irsa(endpoint, sts, monkeypatch, tmp_path):
    """IRSA: EKS mounts a projected service-account token and sets AWS_WEB_IDENTITY_TOKEN_FILE and
    AWS_ROLE_ARN; the token is exchanged for keys at STS (here the loopback one)."""
    url, handler = sts
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.the-service-account-token")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/atom-generator")
    monkeypatch.setenv("ATOM_S3_STS_ENDPOINT", url)
    store = S3Store(endpoint, "webidentity")
    assert _round_trip(store) == b"signed"
    (call,) = handler.calls  # exchanged once, then reused until it expires
    assert call["Action"] == "AssumeRoleWithWebIdentity"
    assert call["WebIdentityToken"] == token.read_text()
    assert call["RoleArn"] == "arn:aws:iam::123456789012:role/atom-generator"


def test_a_credential_source_that_fails_says_so(endpoint, sts, monkeypatch, tmp_path):
    url, handler = sts
    handler.refuse = True
    token = tmp_path / "token"
    token.write_text("expired")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/atom-generator")
    monkeypatch.setenv("ATOM_S3_STS_ENDPOINT", url)
    with pytest.raises(StoreUnavailable, match="no S3 credentials from IamAwsProvider"):
        S3Store(endpoint, "webidentity").ping()


def test_static_keys_win_and_instance_metadata_is_opt_in(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    assert credentials_provider("given", "given").retrieve().access_key == "given"
    assert credentials_provider("", "") is None  # explicitly empty: anonymous
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert credentials_provider() is None
    monkeypatch.setenv("ATOM_S3_IMDS", "1")  # only then is the EC2 instance role asked (not here)
    assert type(credentials_provider().inner).__name__ == "IamAwsProvider"
