"""Shared fixtures: `start(name, store_root)` runs a real service on loopback for a test."""

import os
import time

import pytest

# Headless rendering on every machine that runs the tests (Mesa llvmpipe here, the GPU elsewhere).
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Running:
    """A real service on a free loopback port, its store and a client."""

    def __init__(self, name, store_root):
        from atom.runtime.client import connect
        from atom.runtime.registry import build_spec
        from atom.runtime.server import ServeConfig, start_service
        from atom.store import LocalStore

        self.store = LocalStore(store_root)
        self.service = start_service(build_spec(name, str(store_root)), ServeConfig(host="127.0.0.1", port=0, metrics_port=0, grace_s=2))
        self.client = connect(name, self.service.address)

    def stop(self):
        self.client.close()
        self.service.stop(2)


@pytest.fixture
def start(tmp_path):
    """start(name, store_root=None) -> Running; every service started is stopped after the test."""
    started = []

    def _start(name, store_root=None):
        r = Running(name, store_root or tmp_path / "store")
        started.append(r)
        return r

    yield _start
    for r in started:
        r.stop()


def _wait_for(condition, timeout_s: float, what: str = "the condition", interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"{what} was not met within {timeout_s} s")
        time.sleep(interval_s)


@pytest.fixture
def wait_for():
    """wait_for(condition, timeout_s, what=...): poll `condition()` until it is true and fail the
    test after `timeout_s`; a test waits for what it needs instead of sleeping a fixed time."""
    return _wait_for
