"""The metrics beyond the gRPC interceptor's: the GPU memory gauge, the trainer's per-job series
and what the controller pushes to a Pushgateway."""

from __future__ import annotations

import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from atom.runtime import telemetry


def _fake_torch(devices: dict[int, int], available: bool = True):
    cuda = types.SimpleNamespace(
        is_available=lambda: available, device_count=lambda: len(devices), memory_allocated=lambda idx: devices[idx]
    )
    return types.SimpleNamespace(cuda=cuda)


def test_gpu_gauge_reads_each_device_at_scrape_time(monkeypatch):
    devices = {0: 5 << 20, 1: 0}
    registry = CollectorRegistry()
    monkeypatch.setattr(telemetry, "_gpu_collector", None)
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(devices))
    assert telemetry.register_gpu_metrics(registry) is True
    assert registry.get_sample_value("atom_gpu_memory_bytes", {"device": "cuda:0"}) == 5 << 20
    devices[1] = 7 << 30  # read live, not cached at registration
    assert registry.get_sample_value("atom_gpu_memory_bytes", {"device": "cuda:1"}) == 7 << 30
    assert telemetry.register_gpu_metrics(registry) is True  # a second server in the process: no duplicate
    assert generate_latest(registry).decode().count("# TYPE atom_gpu_memory_bytes gauge") == 1


def test_no_gpu_gauge_without_cuda_or_without_torch(monkeypatch):
    registry = CollectorRegistry()
    monkeypatch.setattr(telemetry, "_gpu_collector", None)
    monkeypatch.setitem(sys.modules, "torch", _fake_torch({}, available=False))
    assert telemetry.register_gpu_metrics(registry) is False
    monkeypatch.delitem(sys.modules, "torch")  # a service that never imported torch
    assert telemetry.register_gpu_metrics(registry) is False
    assert "torch" not in sys.modules, "registering must never import torch itself"
    assert "atom_gpu_memory_bytes" not in generate_latest(registry).decode()


def test_cpu_service_exports_no_gpu_gauge(start):
    """Here (no CUDA) a torch service exports nothing for the GPU, not a zero."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the gauge is expected here")
    import urllib.request

    gen = start("generator")
    body = urllib.request.urlopen(f"http://127.0.0.1:{gen.service.metrics_port}/metrics").read().decode()
    assert "atom_gpu_memory_bytes" not in body and "grpc_server_started_total" in body


def test_trainer_series_use_train_job_and_go_when_the_job_ends():
    from services.trainer.jobs import JobStatus
    from services.trainer.server import _export_job_metrics

    def value(name, labels):
        return REGISTRY.get_sample_value(name, labels)

    job = "train-metrics-test-1"
    finished = {s: value("atom_train_jobs_finished_total", {"state": s}) or 0.0 for s in ("SUCCEEDED", "FAILED")}
    _export_job_metrics(JobStatus(job_id=job, state="RUNNING", config={}, step=3, loss=0.69, margin=0.1))
    assert value("atom_train_loss", {"train_job": job}) == pytest.approx(0.69)
    assert value("atom_train_step", {"train_job": job}) == 3
    body = generate_latest(REGISTRY).decode()
    assert f'atom_train_step{{train_job="{job}"}}' in body and "atom_train_step{job=" not in body
    end = JobStatus(job_id=job, state="SUCCEEDED", config={}, step=10, loss=0.4)
    _export_job_metrics(end)
    _export_job_metrics(end)  # a second watcher sees the same end: counted once
    for name in ("atom_train_loss", "atom_train_step", "atom_train_margin"):
        assert value(name, {"train_job": job}) is None, f"{name} kept a finished job's series"
    assert value("atom_train_jobs_finished_total", {"state": "SUCCEEDED"}) == finished["SUCCEEDED"] + 1
    # Started again (resumed) and then diverged: counted again, as a failure with a non-finite loss.
    nonfinite = value("atom_train_loss_nonfinite_total", {}) or 0.0
    _export_job_metrics(JobStatus(job_id=job, state="RUNNING", config={}, step=11, loss=float("nan")))
    assert value("atom_train_loss", {"train_job": job}) != value("atom_train_loss", {"train_job": job})  # NaN
    _export_job_metrics(
        JobStatus(
            job_id=job, state="FAILED", config={}, step=12, error="TrainingError: loss became nan at step 12; lower lr or check the pairs"
        )
    )
    assert value("atom_train_jobs_finished_total", {"state": "FAILED"}) == finished["FAILED"] + 1
    assert value("atom_train_loss_nonfinite_total", {}) == nonfinite + 1
    assert value("atom_train_loss", {"train_job": job}) is None


class _Gateway(BaseHTTPRequestHandler):
    bodies: list[tuple[str, str, bytes]] = []

    def do_PUT(self):  # noqa: N802 - push_to_gateway sends PUT
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append((self.command, self.path, self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args):
        pass


def test_pushgateway_gets_only_the_pipeline_metrics(monkeypatch):
    from atom.pipeline import metrics

    _Gateway.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ATOM_PUSHGATEWAY", f"127.0.0.1:{server.server_address[1]}")
        metrics.stage_seconds.labels("push-test", "world").set(1.5)
        metrics.record_failure("push-test", "judge")
        (method, path, body) = _Gateway.bodies[-1]
    finally:
        server.shutdown()
        server.server_close()
    text = body.decode()
    assert method == "PUT" and path == "/metrics/job/atom-pipeline-push-test"
    assert 'atom_pipeline_stage_seconds{run="push-test",stage="world"} 1.5' in text
    assert 'atom_pipeline_stage_failed{run="push-test",stage="judge"} 1.0' in text
    for foreign in ("process_", "python_", "grpc_server_", "atom_train_", "atom_judge_"):
        assert foreign not in text, f"a push must carry the pipeline's metrics only, not {foreign}*"
    # The controller's own /metrics page (the default registry) still shows them.
    assert REGISTRY.get_sample_value("atom_pipeline_stage_seconds", {"run": "push-test", "stage": "world"}) == 1.5
