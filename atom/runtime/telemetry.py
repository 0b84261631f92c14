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


# The RPC metrics every service exports.
def rpc_requests() -> Counter:
    return counter("atom_grpc_requests_total", "gRPC calls handled, by method and status code",
                   ("service", "method", "code"))


def rpc_errors() -> Counter:
    return counter("atom_grpc_errors_total", "gRPC calls that ended with a non-OK status",
                   ("service", "method", "code"))


def rpc_latency() -> Histogram:
    return histogram("atom_grpc_request_seconds", "gRPC call latency in seconds, by method and status code",
                     ("service", "method", "code"))


def rpc_in_flight() -> Gauge:
    return gauge("atom_grpc_in_flight", "gRPC calls being handled now", ("service", "method"))


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
