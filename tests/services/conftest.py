"""Real services on loopback for the service tests: each test module starts what it needs."""

import pytest

from atom.runtime.client import connect
from atom.runtime.registry import build_spec
from atom.runtime.server import ServeConfig, start_service
from atom.store import LocalStore


class Running:
    def __init__(self, name, store_root):
        self.store = LocalStore(store_root)
        self.service = start_service(build_spec(name, str(store_root)),
                                     ServeConfig(host="127.0.0.1", port=0, metrics_port=0, grace_s=2))
        self.client = connect(name, self.service.address)

    def stop(self):
        self.client.close()
        self.service.stop(2)


@pytest.fixture
def start(tmp_path):
    started = []

    def _start(name, store_root=None):
        r = Running(name, store_root or tmp_path / "store")
        started.append(r)
        return r

    yield _start
    for r in started:
        r.stop()
