"""Calling atom services: round-robin over a service's addresses, retry on UNAVAILABLE.

gRPC keeps one HTTP/2 connection open per channel, so a load balancer in front of several
replicas would pin all calls to one of them. Instead the client holds one channel per address and
spreads calls itself (per request). For Kubernetes, give the headless Service's name with the
dns:/// scheme and gRPC round-robins over its pod addresses inside that channel too.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from typing import Callable, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from atom.v1 import common_pb2, common_pb2_grpc

log = logging.getLogger("atom.client")

RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)
_CHANNEL_OPTIONS = [
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.enable_retries", 1),
]


def parse_addresses(spec: str | Sequence[str]) -> list[str]:
    """'a:1,b:2' or ['a:1', 'b:2'] -> ['a:1', 'b:2'], with a clear error for junk."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = [s.strip() for s in items if s and s.strip()]
    for addr in out:
        if ":" not in addr:
            raise ValueError(f"service address {addr!r} has no port; expected host:port")
    if not out:
        raise ValueError("no service address given; expected host:port[,host:port...]")
    return out


class ServiceClient:
    """Calls one service (possibly several replicas).

    call()/stream() pick the next address round-robin; when an address answers UNAVAILABLE the
    call moves to the next one, with exponential backoff, up to `attempts` tries in all.
    """

    def __init__(
        self,
        service: str,
        addresses: str | Sequence[str],
        stub_factory: Callable,
        attempts: int = 5,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
    ):
        self.service = service
        self.addresses = parse_addresses(addresses)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._channels = {a: grpc.insecure_channel(a, options=_CHANNEL_OPTIONS) for a in self.addresses}
        self._stubs = {a: stub_factory(ch) for a, ch in self._channels.items()}
        self._next = itertools.cycle(range(len(self.addresses)))
        self._lock = threading.Lock()

    def _order(self) -> list[str]:
        with self._lock:
            start = next(self._next)
        return [self.addresses[(start + i) % len(self.addresses)] for i in range(len(self.addresses))]

    def _sleep(self, attempt: int) -> None:
        delay = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        time.sleep(delay * (0.5 + random.random() / 2))

    def call(self, method: str, request, timeout: float | None = None):
        """A unary call with failover and retry on UNAVAILABLE."""
        order = self._order()
        last: grpc.RpcError | None = None
        for attempt in range(self.attempts):
            addr = order[attempt % len(order)]
            try:
                return getattr(self._stubs[addr], method)(request, timeout=timeout)
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE:
                    raise
                last = exc
                log.info("%s.%s on %s unavailable (attempt %d)", self.service, method, addr, attempt + 1)
                if attempt + 1 < self.attempts:
                    self._sleep(attempt)
        raise last  # type: ignore[misc]

    def stream(self, method: str, request, timeout: float | None = None) -> Iterator:
        """A server-streaming call. Retried only while nothing has arrived yet: once items have
        been yielded, a failure is raised so the caller can resend just the unfinished work."""
        order = self._order()
        for attempt in range(self.attempts):
            addr = order[attempt % len(order)]
            started = False
            try:
                for item in getattr(self._stubs[addr], method)(request, timeout=timeout):
                    started = True
                    yield item
                return
            except grpc.RpcError as exc:
                if started or exc.code() not in RETRYABLE or attempt + 1 == self.attempts:
                    raise
                log.info("%s.%s on %s unavailable (attempt %d)", self.service, method, addr, attempt + 1)
                self._sleep(attempt)

    @property
    def full_name(self) -> str:
        """The gRPC service name, also its readiness name in the health protocol."""
        return f"atom.v1.{self.service.capitalize()}"

    def health(self, timeout: float = 2.0, service: str = "") -> dict[str, str]:
        """Health status per address: SERVING, NOT_SERVING, or the error code name. `service` ""
        asks whether the process serves (liveness); `full_name` whether it can take work now."""
        out = {}
        for addr, ch in self._channels.items():
            try:
                # types-grpcio-health-checking declares HealthStub without its methods
                stub = health_pb2_grpc.HealthStub(ch)
                resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)  # type: ignore[attr-defined]
                out[addr] = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
            except grpc.RpcError as exc:
                out[addr] = exc.code().name
        return out

    def info(self, address: str, timeout: float = 2.0) -> common_pb2.ServiceInfo:
        return common_pb2_grpc.InfoStub(self._channels[address]).GetInfo(common_pb2.GetInfoRequest(), timeout=timeout)

    def wait_ready(self, timeout_s: float = 60.0, check: Callable[[], None] | None = None) -> None:
        """Block until every address reports SERVING. `check` runs between polls and may raise
        (e.g. when the process behind an address has died) to stop waiting early."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.health(timeout=1.0)
            if all(s == "SERVING" for s in status.values()):
                return
            if check is not None:
                check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.service} not ready after {timeout_s:.0f}s: {status}")
            time.sleep(0.1)

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def stub_factory(service: str) -> Callable:
    """The generated stub class for an atom service name."""
    from atom.v1 import evaluator_pb2_grpc, generator_pb2_grpc, judge_pb2_grpc, renderer_pb2_grpc, trainer_pb2_grpc

    return {
        "generator": generator_pb2_grpc.GeneratorStub,
        "renderer": renderer_pb2_grpc.RendererStub,
        "judge": judge_pb2_grpc.JudgeStub,
        "trainer": trainer_pb2_grpc.TrainerStub,
        "evaluator": evaluator_pb2_grpc.EvaluatorStub,
    }[service]


def connect(service: str, addresses: str | Sequence[str], **kwargs) -> ServiceClient:
    return ServiceClient(service, addresses, stub_factory(service), **kwargs)
