import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from atom.runtime.client import connect
from atom.runtime.net import free_port
from atom.runtime.server import ServeConfig, start_service
from atom.v1 import common_pb2, renderer_pb2

sys.path.insert(0, str(Path(__file__).parent))
from slow_service import SlowRenderer, spec  # noqa: E402


def _request(n=1, delay_ms=0, width=256):
    return renderer_pb2.RenderRequest(
        motions=[common_pb2.ArtifactRef(key=f"motions/{i}.npz") for i in range(n)],
        options=renderer_pb2.RenderOptions(form="full_image", width=width, height=delay_ms),
    )


@pytest.fixture
def running():
    servicer = SlowRenderer()
    svc = start_service(spec(servicer), ServeConfig(host="127.0.0.1", port=0, metrics_port=0, grace_s=5))
    svc.servicer = servicer
    yield svc
    svc.stop(0)


def test_health_reflection_info_and_metrics(running):
    ch = grpc.insecure_channel(running.address)
    health = health_pb2_grpc.HealthStub(ch)
    for name in ("", "atom.v1.Renderer"):
        assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(ch)
    resp = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in resp.list_services_response.service}
    assert {"atom.v1.Renderer", "atom.v1.Info", "grpc.health.v1.Health"} <= names
    client = connect("renderer", running.address)
    assert [r.motion.key for r in client.stream("Render", _request(3))] == [f"motions/{i}.npz" for i in range(3)]
    assert client.info(running.address).name == "renderer"
    body = urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics").read().decode()
    # go-grpc-prometheus's names and labels, so the ecosystem's dashboards and alerts apply.
    call = 'grpc_method="Render",grpc_service="atom.v1.Renderer",grpc_type="server_stream"'
    for series in (
        f"grpc_server_started_total{{{call}}}",
        f'grpc_server_handled_total{{grpc_code="OK",{call}}}',
        f"grpc_server_msg_received_total{{{call}}}",
        f"grpc_server_msg_sent_total{{{call}}}",
        f'grpc_server_handling_seconds_bucket{{grpc_code="OK",{call},le="+Inf"}}',
        f"atom_grpc_server_in_flight{{{call}}}",
        'grpc_server_handled_total{grpc_code="OK",grpc_method="GetInfo",grpc_service="atom.v1.Info",grpc_type="unary"}',
    ):
        assert series in body, series
    assert "grpc.health" not in body and "atom_grpc_requests_total" not in body
    ch.close()


def test_grpc_metrics_count_calls_and_messages(running):
    """One streamed call of 3 items: started, handled (OK), one message in, three out, timed."""
    from prometheus_client import REGISTRY

    call = {"grpc_type": "server_stream", "grpc_service": "atom.v1.Renderer", "grpc_method": "Render"}
    ok = {**call, "grpc_code": "OK"}
    names = {
        "started": ("grpc_server_started_total", call),
        "handled": ("grpc_server_handled_total", ok),
        "received": ("grpc_server_msg_received_total", call),
        "sent": ("grpc_server_msg_sent_total", call),
        "timed": ("grpc_server_handling_seconds_count", ok),
        "in_flight": ("atom_grpc_server_in_flight", call),
    }

    def values():
        return {k: REGISTRY.get_sample_value(name, labels) or 0.0 for k, (name, labels) in names.items()}

    before = values()
    client = connect("renderer", running.address)
    assert len(list(client.stream("Render", _request(3)))) == 3
    after = values()
    delta = {k: after[k] - before[k] for k in names}
    assert delta == {"started": 1, "handled": 1, "received": 1, "sent": 3, "timed": 1, "in_flight": 0}


def test_bad_input_is_invalid_argument_naming_the_field(running):
    client = connect("renderer", running.address)
    with pytest.raises(grpc.RpcError) as err:
        list(client.stream("Render", _request(1, width=1)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "options.width" in err.value.details()
    body = urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics").read().decode()
    assert (
        'grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="Render",'
        'grpc_service="atom.v1.Renderer",grpc_type="server_stream"}'
    ) in body


def test_unimplemented_is_honest(running):
    from atom.v1 import judge_pb2

    client = connect("judge", running.address, attempts=1)
    with pytest.raises(grpc.RpcError) as err:
        client.call("ComposePrompts", judge_pb2.ComposePromptsRequest())
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_deadline_and_cancellation_stop_work(running, wait_for):
    client = connect("renderer", running.address)
    with pytest.raises(grpc.RpcError) as err:
        list(client.stream("Render", _request(50, delay_ms=50), timeout=0.3))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: running.servicer.ended == 1, 5, "the server ending the call")
    produced = running.servicer.produced
    assert produced < 20  # the server stopped soon after the deadline, not after all 50
    time.sleep(0.3)  # a window in which the ended call may finish its one motion in hand, no more
    assert running.servicer.produced <= produced + 1

    call = client._stubs[running.address].Render(_request(50, delay_ms=50))
    next(call)
    call.cancel()
    wait_for(lambda: running.servicer.ended == 2, 5, "the server ending the cancelled call")
    before = running.servicer.produced
    time.sleep(0.3)  # the same window
    assert running.servicer.produced <= before + 1


def test_retry_on_unavailable_and_round_robin(running, wait_for):
    dead = f"127.0.0.1:{free_port()}"
    client = connect("renderer", [dead, running.address], backoff_s=0.01)
    for _ in range(4):  # every call lands, whichever address the round-robin starts with
        assert len(list(client.stream("Render", _request(1)))) == 1

    # A server that comes up while the client is retrying.
    port = free_port()
    late = connect("renderer", f"127.0.0.1:{port}", attempts=8, backoff_s=0.2)
    holder = {}
    threading.Timer(
        0.4, lambda: holder.setdefault("svc", start_service(spec(), ServeConfig(host="127.0.0.1", port=port, metrics_port=None)))
    ).start()
    try:
        assert len(list(late.stream("Render", _request(2)))) == 2
    finally:
        wait_for(lambda: "svc" in holder, 5, "the late server's start")
        holder["svc"].stop(0)


def test_all_down_raises_unavailable():
    client = connect("renderer", f"127.0.0.1:{free_port()}", attempts=2, backoff_s=0.01)
    with pytest.raises(grpc.RpcError) as err:
        list(client.stream("Render", _request(1)))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_sigterm_drains_calls_in_flight(wait_for):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "slow_service.py"), str(port)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert proc.stdout.readline().strip() == b"ready"
        client = connect("renderer", f"127.0.0.1:{port}")
        results = []

        def call():
            for r in client.stream("Render", _request(5, delay_ms=200)):
                results.append(r)

        worker = threading.Thread(target=call)
        worker.start()
        wait_for(lambda: results, 10, "the call's first result")  # the call is in flight, 4 to go
        proc.send_signal(signal.SIGTERM)
        worker.join(10)
        assert len(results) == 5  # the call in flight finished
        assert proc.wait(10) == 0
        with pytest.raises(grpc.RpcError) as err:  # and the server is gone
            list(connect("renderer", f"127.0.0.1:{port}", attempts=1).stream("Render", _request(1)))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_exits_within_the_grace_even_when_work_ignores_cancellation():
    """A call whose work never checks for cancellation must not keep a stopped service alive."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "slow_service.py"), str(port), "1"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert proc.stdout.readline().strip() == b"ready"
        client = connect("renderer", f"127.0.0.1:{port}", attempts=1)
        deaf = threading.Thread(
            target=lambda: list(_ignore_errors(client.stream("Render", _request(1, delay_ms=120_000, width=2)))), daemon=True
        )
        deaf.start()
        assert proc.stdout.readline().strip() == b"busy"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - t0 < 10  # the grace (1 s) and the exit, not the 120 s of work
    finally:
        if proc.poll() is None:
            proc.kill()


def _ignore_errors(stream):
    try:
        yield from stream
    except grpc.RpcError:
        return


def test_readiness_follows_the_service_check_while_liveness_stays(wait_for):
    reason = {"now": None}
    svc_spec = spec()
    svc_spec.ready = lambda: reason["now"]
    svc = start_service(svc_spec, ServeConfig(host="127.0.0.1", port=0, metrics_port=None, grace_s=1, health_interval_s=0.05))
    try:
        ch = grpc.insecure_channel(svc.address)
        health = health_pb2_grpc.HealthStub(ch)

        def status(name):
            return health.Check(health_pb2.HealthCheckRequest(service=name)).status

        assert status("atom.v1.Renderer") == health_pb2.HealthCheckResponse.SERVING
        reason["now"] = "store down"
        wait_for(lambda: status("atom.v1.Renderer") == health_pb2.HealthCheckResponse.NOT_SERVING, 5)
        assert status("") == health_pb2.HealthCheckResponse.SERVING  # alive: not to be restarted
        assert connect("renderer", svc.address).info(svc.address).details["not_ready"] == "store down"
        reason["now"] = None
        wait_for(lambda: status("atom.v1.Renderer") == health_pb2.HealthCheckResponse.SERVING, 5)
        ch.close()
    finally:
        svc.stop(0)
