"""Structured logs and Prometheus metrics, set up the same way in every process."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

_metrics_lock = threading.Lock()
_metrics: dict[str, object] = {}

# Latency buckets from 1 ms to 10 min: a render is milliseconds, a training job is minutes.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def _get_or_create(kind, name: str, doc: str, labels: tuple[str, ...], **kwargs):
    """Metrics are process-wide; creating the same one twice returns the first (several servers
    can run in one test process)."""
    with _metrics_lock:
        metric = _metrics.get(name)
        if metric is None:
            metric = kind(name, doc, labels, registry=REGISTRY, **kwargs)
            _metrics[name] = metric
        return metric


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return _get_or_create(Counter, name, doc, labels)


def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return _get_or_create(Gauge, name, doc, labels)


def histogram(name: str, doc: str, labels: tuple[str, ...] = (), buckets=LATENCY_BUCKETS) -> Histogram:
    return _get_or_create(Histogram, name, doc, labels, buckets=buckets)


# The RPC metrics every service exports, under the names and labels of go-grpc-prometheus and
# py-grpc-prometheus, so the ecosystem's gRPC dashboards and alerts work on them unchanged:
# grpc_type is "unary" or "server_stream", grpc_service the full service name
# ("atom.v1.Renderer"), grpc_method the method ("Render") and grpc_code the status code as gRPC
# spells it in Go ("OK", "InvalidArgument", "DeadlineExceeded", ...). Which atom service answered
# is the scrape target's own `job` label.
GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
GRPC_CODE_LABELS = (*GRPC_LABELS, "grpc_code")


def grpc_started() -> Counter:
    return counter("grpc_server_started_total", "Total number of RPCs started on the server.", GRPC_LABELS)


def grpc_handled() -> Counter:
    return counter(
        "grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure.", GRPC_CODE_LABELS
    )


def grpc_msg_received() -> Counter:
    return counter("grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", GRPC_LABELS)


def grpc_msg_sent() -> Counter:
    return counter("grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", GRPC_LABELS)


def grpc_handling_seconds() -> Histogram:
    return histogram(
        "grpc_server_handling_seconds",
        "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
        GRPC_CODE_LABELS,
    )


def grpc_in_flight() -> Gauge:
    """Not part of the convention (there it is started minus handled); a gauge is what an
    autoscaler's Pods metric reads (deploy/k8s/overlays/ops)."""
    return gauge("atom_grpc_server_in_flight", "gRPC calls being handled now", GRPC_LABELS)


class _GpuMemoryCollector:
    """atom_gpu_memory_bytes{device}: the bytes PyTorch has allocated on each visible CUDA device
    (torch.cuda.memory_allocated), read at scrape time."""

    def __init__(self, torch):
        self.torch = torch

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("atom_gpu_memory_bytes", "GPU memory allocated by PyTorch tensors, in bytes", labels=("device",))
        cuda = self.torch.cuda
        for idx in range(cuda.device_count()):
            family.add_metric((f"cuda:{idx}",), float(cuda.memory_allocated(idx)))
        yield family

    def describe(self):
        return []  # collected lazily: registering must not touch CUDA


_gpu_collector: _GpuMemoryCollector | None = None


def register_gpu_metrics(registry=REGISTRY) -> bool:
    """Export atom_gpu_memory_bytes when PyTorch is already imported and sees CUDA; returns whether
    it did. Never imports torch itself, so services without it (judge, renderer) pay nothing."""
    global _gpu_collector
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "cuda"):
        return False
    try:
        if not torch.cuda.is_available():
            return False
    except Exception:  # noqa: BLE001 - a broken driver means no GPU metrics, not a failed start
        return False
    with _metrics_lock:
        if _gpu_collector is None:
            _gpu_collector = _GpuMemoryCollector(torch)
            registry.register(_gpu_collector)
    return True


def serve_metrics(port: int, host: str = "0.0.0.0"):
    """Serve /metrics on its own HTTP port; returns the server (call .shutdown() to stop)."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(service: str, level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    try:
        root.setLevel(level.upper())
    except ValueError:
        raise ValueError(f"unknown log level {level!r}; use debug, info, warning or error") from None


def log_fields(**fields) -> dict:
    """extra= for a structured log line: logger.info("msg", extra=log_fields(key=value))."""
    return {"fields": fields}
