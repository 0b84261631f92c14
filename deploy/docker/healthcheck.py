"""Container health probe: asks the service's grpc.health.v1 endpoint on loopback whether it is
SERVING. Docker's HEALTHCHECK runs it; Kubernetes uses its native grpc probes instead.

    python /usr/local/bin/atom-healthcheck.py [--port P] [--service NAME] [--timeout S]

The port defaults to $ATOM_PORT, which every service image sets. Exit 0 = serving, 1 = anything
else (not serving, unreachable, timed out), as Docker expects; the reason goes to stderr, which
`docker inspect` shows.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env_port = os.environ.get("ATOM_PORT", "").strip()
    p = argparse.ArgumentParser(prog="atom-healthcheck", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address of the service (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(env_port) if env_port.isdigit() else None, help="gRPC port (default $ATOM_PORT)")
    p.add_argument("--service", default="", help="health service name; empty = the whole server (default)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    args = p.parse_args(argv)
    if args.port is None or not 0 < args.port < 65536:
        p.error("no valid gRPC port: set ATOM_PORT or pass --port")
    return args


def check(host: str, port: int, service: str = "", timeout: float = 3.0) -> tuple[bool, str]:
    """(serving?, what was seen) for one grpc.health.v1 Check call."""
    # Imported here so that `--help` and argument errors answer without loading gRPC.
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            return False, f"{target}: {exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ok, seen = check(args.host, args.port, args.service, args.timeout)
    if not ok:
        print(f"unhealthy: {seen}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
