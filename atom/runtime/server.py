"""How an atom service starts, reports health, exports metrics and shuts down.

    spec = ServiceSpec(name="renderer", servicer=..., add_to_server=add_RendererServicer_to_server,
                       full_name="atom.v1.Renderer")
    run_service(spec, ServeConfig.from_env("renderer"))   # blocks until SIGTERM/SIGINT

Health has two names. The whole server ("") answers SERVING while the process runs: liveness.
The service's own name (e.g. "atom.v1.Renderer") answers SERVING only while it can take work:
readiness. A watcher re-checks every `health_interval_s` (the store answers; `ServiceSpec.ready`
has no objection, e.g. the evaluator is not busy) and flips it, logging each change.

On SIGTERM both turn NOT_SERVING (so balancers stop sending), new calls are refused, calls in
flight get `grace_s` seconds and are then cancelled; work that does not notice its cancellation
is abandoned and the process exits, so a stop never takes longer than the grace.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from atom import __version__
from atom.runtime import telemetry
from atom.runtime.errors import status_for
from atom.runtime.net import free_port
from atom.runtime.ports import GRPC_PORTS, METRICS_PORTS
from atom.v1 import common_pb2, common_pb2_grpc

log = logging.getLogger("atom.runtime")


@dataclass
class ServiceSpec:
    name: str  # "generator", ...
    servicer: object
    add_to_server: Callable  # the generated add_XServicer_to_server
    full_name: str  # "atom.v1.Generator"
    details: Callable[[], dict] = field(default=lambda: {})  # extra facts for GetInfo
    on_shutdown: Callable[[], None] | None = None
    # Why the service cannot take work now (None = it can); checked by the readiness watcher.
    ready: Callable[[], str | None] = field(default=lambda: None)


def store_problem(store) -> str | None:
    """Why `store` cannot be used now, or None: the readiness check every service shares."""
    try:
        store.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is logged
        return f"store {getattr(store, 'url', '')}: {exc}"
    return None


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    metrics_port: int | None = None  # None = no metrics server; 0 = pick a free port
    store_url: str = ""
    log_level: str = "info"
    max_workers: int = 16
    grace_s: float = 30.0
    health_interval_s: float = 5.0

    @classmethod
    def from_env(cls, service: str, **overrides) -> "ServeConfig":
        env = os.environ
        cfg = cls(
            host=env.get("ATOM_HOST", "0.0.0.0"),
            port=int(env.get("ATOM_PORT", GRPC_PORTS[service])),
            metrics_port=int(env.get("ATOM_METRICS_PORT", METRICS_PORTS[service])),
            store_url=env.get("ATOM_STORE_URL", ""),
            log_level=env.get("ATOM_LOG_LEVEL", "info"),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        return cfg


# grpc_code as gRPC spells it in Go, and so go-grpc-prometheus's dashboards and alerts
# (grpc_code!="OK", grpc_code=~"Unknown|Internal|Unavailable|..."): INVALID_ARGUMENT -> InvalidArgument.
_GO_CODE_NAMES = {grpc.StatusCode.CANCELLED: "Canceled", grpc.StatusCode.OK: "OK"}


def _code_name(code: grpc.StatusCode) -> str:
    return _GO_CODE_NAMES.get(code) or "".join(part.capitalize() for part in code.name.split("_"))


class _Undecodable:
    """Stands in for a request whose bytes did not parse (e.g. a string field that is not UTF-8),
    so the handler can answer INVALID_ARGUMENT instead of gRPC's generic INTERNAL."""

    def __init__(self, problem: str):
        self.problem = problem


def _lenient(deserialize):
    if deserialize is None:
        return None

    def parse(data: bytes):
        try:
            return deserialize(data)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
            return _Undecodable(f"{type(exc).__name__}: {str(exc)[:200]}")

    return parse


def _refuse_undecodable(request, context) -> None:
    if isinstance(request, _Undecodable):
        raise ValueError(f"the request does not parse as this method's message ({request.problem}); string fields must be valid UTF-8")


class _Observed(grpc.ServerInterceptor):
    """Counts, times and maps errors of every call. Handlers raise Python exceptions; this turns
    them into proper status codes with the exception's message."""

    def __init__(self, service: str):
        self.service = service
        self.started = telemetry.grpc_started()
        self.handled = telemetry.grpc_handled()
        self.msg_received = telemetry.grpc_msg_received()
        self.msg_sent = telemetry.grpc_msg_sent()
        self.latency = telemetry.grpc_handling_seconds()
        self.in_flight = telemetry.grpc_in_flight()
        # atom_gpu_memory_bytes, where the service's code has imported torch and it sees CUDA.
        telemetry.register_gpu_metrics()
        self._active = 0
        self._active_lock = threading.Lock()

    def active(self) -> int:
        """Calls of this service whose handlers are running now."""
        with self._active_lock:
            return self._active

    def _count(self, delta: int) -> None:
        with self._active_lock:
            self._active += delta

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None:
            return None
        grpc_service, _, method = details.method.lstrip("/").rpartition("/")
        if details.method.startswith("/grpc."):  # health and reflection: not ours to count
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method, ("unary", grpc_service, method)),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method, ("server_stream", grpc_service, method)),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    def _begin(self, labels: tuple[str, str, str]):
        """Count a started call and its request message; returns its in-flight gauge (raised)."""
        self.started.labels(*labels).inc()
        self.msg_received.labels(*labels).inc()  # unary and server-streaming calls get one request
        gauge = self.in_flight.labels(*labels)
        gauge.inc()
        return gauge

    def _finish(self, labels: tuple[str, str, str], code: grpc.StatusCode, t0: float) -> None:
        name = _code_name(code)
        self.handled.labels(*labels, name).inc()
        self.latency.labels(*labels, name).observe(time.perf_counter() - t0)

    def _fail(self, context, method: str, exc: BaseException):
        code = status_for(exc)
        if code == grpc.StatusCode.INTERNAL:
            log.exception("unhandled error in %s", method, extra=telemetry.log_fields(method=method))
            message = f"internal error in {self.service}.{method}: {type(exc).__name__}: {exc}"
        else:
            log.info("%s -> %s: %s", method, code.name, exc, extra=telemetry.log_fields(method=method, code=code.name))
            message = str(exc)
        return code, message

    def _wrap_unary(self, fn, method, labels):
        def handler(request, context):
            t0 = time.perf_counter()
            gauge = self._begin(labels)
            self._count(1)
            code = grpc.StatusCode.OK
            try:
                _refuse_undecodable(request, context)
                response = fn(request, context)
                self.msg_sent.labels(*labels).inc()
                return response
            except grpc.RpcError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as exc:  # noqa: BLE001 - every error becomes a status
                code, message = self._fail(context, method, exc)
                context.abort(code, message)
            finally:
                code = _aborted_code(context, code)
                gauge.dec()
                self._count(-1)
                self._finish(labels, code, t0)

        return handler

    def _wrap_stream(self, fn, method, labels):
        def handler(request, context):
            t0 = time.perf_counter()
            gauge = self._begin(labels)
            sent = self.msg_sent.labels(*labels)
            self._count(1)
            code = grpc.StatusCode.OK
            try:
                _refuse_undecodable(request, context)
                for item in fn(request, context):
                    if not context.is_active():
                        code = grpc.StatusCode.CANCELLED
                        return
                    sent.inc()
                    yield item
            except grpc.RpcError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as exc:  # noqa: BLE001
                code, message = self._fail(context, method, exc)
                context.abort(code, message)
            finally:
                code = _aborted_code(context, code)
                gauge.dec()
                self._count(-1)
                self._finish(labels, code, t0)

        return handler


def _aborted_code(context, code: grpc.StatusCode) -> grpc.StatusCode:
    if code == grpc.StatusCode.OK and not context.is_active():
        return (
            grpc.StatusCode.CANCELLED
            if context.time_remaining() is None or context.time_remaining() > 0
            else grpc.StatusCode.DEADLINE_EXCEEDED
        )
    return code


class _InfoServicer(common_pb2_grpc.InfoServicer):
    def __init__(self, spec: ServiceSpec, store_url: str):
        self.spec = spec
        self.store_url = store_url
        self.not_ready: str | None = None  # the readiness watcher's latest reason

    def GetInfo(self, request, context):
        details = {k: str(v) for k, v in self.spec.details().items()}
        if self.not_ready:
            details["not_ready"] = self.not_ready
        return common_pb2.ServiceInfo(name=self.spec.name, version=__version__, store_url=_redact(self.store_url), details=details)


def _redact(url: str) -> str:
    # A URL may carry credentials (user:secret@host); never echo them.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


class RunningService:
    """A started server: its ports, and how to stop it."""

    def __init__(
        self,
        spec: ServiceSpec,
        server: grpc.Server,
        health_servicer,
        port: int,
        metrics_server,
        metrics_port: int | None,
        grace_s: float,
        info: _InfoServicer,
        observed: _Observed,
    ):
        self.spec = spec
        self.info = info
        self.observed = observed
        self.server = server
        self.health = health_servicer
        self.port = port
        self.metrics_server = metrics_server
        self.metrics_port = metrics_port
        self.grace_s = grace_s
        self._stopped = threading.Event()
        self.not_ready_reason: str | None = None

    def check_ready(self) -> str | None:
        """Re-check readiness now and publish it on the service's health name."""
        try:
            reason = self.spec.ready()
        except Exception as exc:  # noqa: BLE001 - a failing check means not ready
            reason = f"readiness check failed: {type(exc).__name__}: {exc}"
        if self._stopped.is_set():
            return reason
        if reason != self.not_ready_reason:
            if reason:
                log.warning("not ready: %s", reason, extra=telemetry.log_fields(service=self.spec.name))
            else:
                log.info("ready again", extra=telemetry.log_fields(service=self.spec.name))
        self.not_ready_reason = self.info.not_ready = reason
        status = health_pb2.HealthCheckResponse.NOT_SERVING if reason else health_pb2.HealthCheckResponse.SERVING
        self.health.set(self.spec.full_name, status)
        return reason

    def watch_readiness(self, interval_s: float) -> None:
        def loop():
            while not self._stopped.wait(interval_s):
                self.check_ready()

        threading.Thread(target=loop, name=f"{self.spec.name}-readiness", daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, grace_s: float | None = None) -> None:
        """Drain: health goes NOT_SERVING, new calls are refused, calls in flight get the grace."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(self.grace_s if grace_s is None else grace_s).wait()
        if self.spec.on_shutdown:
            self.spec.on_shutdown()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        log.info("stopped", extra=telemetry.log_fields(port=self.port))

    def wait(self) -> None:
        self.server.wait_for_termination()


def start_service(spec: ServiceSpec, cfg: ServeConfig) -> RunningService:
    observed = _Observed(spec.name)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix=f"{spec.name}-rpc"),
        interceptors=[observed],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 16 << 20),
            # Clients re-resolve when a connection ages out, so replicas added by a scale-up
            # get traffic; the long grace lets streams in flight (training watches) finish.
            ("grpc.max_connection_age_ms", 300_000),
            ("grpc.max_connection_age_grace_ms", 24 * 3600_000),
        ],
    )
    spec.add_to_server(spec.servicer, server)
    info = _InfoServicer(spec, cfg.store_url)
    common_pb2_grpc.add_InfoServicer_to_server(info, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (spec.full_name, "atom.v1.Info", health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port(f"{cfg.host}:{cfg.port}")
    if port == 0:
        raise OSError(f"{spec.name}: cannot listen on {cfg.host}:{cfg.port} (port in use?)")
    metrics_server = None
    metrics_port = cfg.metrics_port
    if metrics_port is not None:
        if metrics_port == 0:
            metrics_port = free_port()
        metrics_server = telemetry.serve_metrics(metrics_port, cfg.host)
    server.start()
    for name in ("", spec.full_name):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving", extra=telemetry.log_fields(service=spec.name, port=port, metrics_port=metrics_port))
    running = RunningService(spec, server, health_servicer, port, metrics_server, metrics_port, cfg.grace_s, info, observed)
    running.check_ready()
    if cfg.health_interval_s > 0:
        running.watch_readiness(cfg.health_interval_s)
    return running


def run_service(spec: ServiceSpec, cfg: ServeConfig, ready: Callable[[RunningService], None] | None = None) -> None:
    """Start, then block until SIGTERM or SIGINT, then drain and exit."""
    running = start_service(spec, cfg)
    stop = threading.Event()

    def _on_signal(signum, _frame):
        log.info("signal %s: draining", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if ready:
        ready(running)
    while not stop.wait(0.5):
        pass
    running.stop()
    _exit_without_stragglers(running)


def _exit_without_stragglers(running: RunningService) -> None:
    """After the drain, calls still running are ones that ignored their cancellation. Python would
    wait for their threads forever at exit (it joins the server's pool); a stop must not, so leave
    without them."""
    busy = running.observed.active()
    if busy:
        log.warning("exiting with %d calls still running after the drain", busy)
        logging.shutdown()
        os._exit(0)
