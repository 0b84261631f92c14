import time

import pytest

from atom.store import LocalStore, StoreError
from atom.store.s3 import S3Store
from atom.testing.s3server import s3_server


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("weed")) as endpoint:
        yield endpoint


def _ready_s3(endpoint: str, bucket: str) -> S3Store:
    deadline = time.monotonic() + 30
    while True:
        store = S3Store(endpoint, bucket, "runs")
        try:
            store.ping()
            return store
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    # A bucket per test keeps tests independent on the one shared server.
    return _ready_s3(endpoint, f"t{abs(hash(request.node.nodeid)) % 10**10}")
