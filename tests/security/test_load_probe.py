"""A bounded load probe on a real renderer: many concurrent calls, cancelled streams, and a process
killed with SIGKILL mid-render. The service must keep serving, count no call as running once all
are over, and never serve a half-written render."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from atom.motion.events import EventLabel
from atom.motion.record import MotionRecord
from atom.motion.world.compose import compose
from atom.runtime.client import connect
from atom.runtime.net import free_port
from atom.store import LocalStore
from atom.v1 import common_pb2, renderer_pb2
from services.renderer.api import decode_png

pytestmark = pytest.mark.slow

EVENTS = ["walk_forward", "wave", "squat", "jump_in_place", "kick", "bow"]


def _motions(store, n):
    keys = []
    for i in range(n):
        labels = [EventLabel(EVENTS[i % len(EVENTS)]), EventLabel(EVENTS[(i + 1) % len(EVENTS)])]
        joints = compose(labels, np.random.default_rng(i)).joints
        keys.append(store.put_content_addressed("motions", MotionRecord(joints=joints).to_bytes(), ".npz").key)
    return keys


def _request(keys, form="full_image"):
    return renderer_pb2.RenderRequest(
        motions=[common_pb2.ArtifactRef(key=k) for k in keys],
        options=renderer_pb2.RenderOptions(form=form, width=64, height=64, interval=16),
    )


def _check_renders(store):
    """Every render with a manifest is whole: its files are there and decode."""
    manifests = [k for k in store.list("renders") if k.endswith("/manifest.json")]
    for key in manifests:
        prefix = key[: -len("manifest.json")]
        for name in store.get_json(key)["files"]:
            image = decode_png(store.get_bytes(prefix + name))
            assert image.ndim == 3 and min(image.shape[:2]) >= 64
    return len(manifests)


def test_concurrent_and_cancelled_calls(start):
    r = start("renderer")
    keys = _motions(r.store, 12)
    rng = np.random.default_rng(0)
    batches = [list(rng.choice(keys, size=int(rng.integers(1, 4)), replace=False)) for _ in range(200)]

    def call(batch):
        return [res.motion.key for res in r.client.stream("Render", _request(batch), timeout=300)]

    channel = grpc.insecure_channel(r.service.address)
    render = channel.unary_stream(
        "/atom.v1.Renderer/Render",
        request_serializer=renderer_pb2.RenderRequest.SerializeToString,
        response_deserializer=renderer_pb2.RenderResult.FromString,
    )

    def cancelled(i):
        stream = render(_request(keys, form="frame_by_frame"), timeout=300)
        time.sleep(0.01 * (i % 5))
        stream.cancel()

    with ThreadPoolExecutor(48) as pool:
        cancels = [pool.submit(cancelled, i) for i in range(50)]
        results = list(pool.map(call, batches))
        for c in cancels:
            c.result()
    channel.close()
    assert results == batches
    deadline = time.monotonic() + 60
    while r.service.observed.active() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.service.observed.active() == 0, "calls still counted as running after every client is gone"
    assert [res.cached for res in r.client.stream("Render", _request(keys[:3]))] == [True] * 3
    assert _check_renders(r.store) >= 12


def test_a_renderer_killed_mid_render_leaves_no_half_render(tmp_path):
    store = LocalStore(tmp_path / "store")
    keys = _motions(store, 16)

    def serve():
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atom.cli",
                "--store",
                str(tmp_path / "store"),
                "serve",
                "renderer",
                "--port",
                str(port),
                "--metrics-port",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = connect("renderer", f"127.0.0.1:{port}")
        client.wait_ready(120, check=lambda: proc.poll() is None or pytest.fail("renderer exited"))
        return proc, client

    proc, client = serve()
    stream = client.stream("Render", _request(keys, form="frame_by_frame"), timeout=300)
    next(stream)  # one motion done, the rest in progress
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    with pytest.raises(grpc.RpcError):
        list(stream)
    client.close()
    done_before = _check_renders(store)
    assert 1 <= done_before < len(keys)
    proc, client = serve()
    try:
        results = list(client.stream("Render", _request(keys, form="frame_by_frame"), timeout=600))
        assert [res.motion.key for res in results] == keys
        assert sum(res.cached for res in results) == done_before
        assert _check_renders(store) == len(keys)
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
