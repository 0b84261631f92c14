"""What every atomctl command shares: the store, the service endpoints, error handling."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import click
import grpc

from atom.runtime.ports import GRPC_PORTS, SERVICES, check_service
from atom.store import ArtifactNotFound, StoreError, StoreUnavailable, open_store

# Exit codes: documented in `atomctl --help` and the README.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # click's own code for bad options
EXIT_UNAVAILABLE = 3  # a service or the store cannot be reached
EXIT_NOT_FOUND = 4  # an artifact or model is missing
EXIT_BAD_INPUT = 5  # input data or a request was rejected
EXIT_BUDGET = 6  # a judge budget cap stopped the work


@dataclass
class Ctx:
    store_url: str
    endpoints: dict[str, str] = field(default_factory=dict)  # service -> "host:port[,host:port]"
    log_level: str = "info"
    metrics_port: int = 0

    def store(self):
        return open_store(self.store_url)

    def endpoint(self, service: str) -> str | None:
        """The given endpoint of a service, or None (= start it embedded)."""
        return self.endpoints.get(check_service(service))


def parse_endpoints(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    env = os.environ.get("ATOM_ENDPOINTS", "")
    items = [v for v in env.split(";") if v.strip()] + list(values)
    for item in items:
        name, sep, addrs = item.partition("=")
        if not sep or not addrs:
            raise click.BadParameter(f"{item!r}: expected SERVICE=HOST:PORT[,HOST:PORT]", param_hint="--endpoint")
        name = name.strip()
        if name == "all":
            for s in SERVICES:
                out[s] = addrs
            continue
        if name not in SERVICES:
            raise click.BadParameter(f"unknown service {name!r} in {item!r}; services: {', '.join(SERVICES)}", param_hint="--endpoint")
        out[name] = addrs
    return out


def default_endpoints() -> dict[str, str]:
    """Where `atomctl services up` puts the services."""
    return {s: f"127.0.0.1:{GRPC_PORTS[s]}" for s in SERVICES}


class CommandError(click.ClickException):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        # click types exit_code as a ClassVar; click reads it from the instance, so one per error works
        self.exit_code = exit_code  # type: ignore[misc]


def handle_errors(fn):
    """Known failures become one clear line and a meaningful exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except StoreUnavailable as exc:
            raise CommandError(f"store unavailable: {exc}", EXIT_UNAVAILABLE) from None
        except ArtifactNotFound as exc:
            raise CommandError(f"not found: {exc}", EXIT_NOT_FOUND) from None
        except StoreError as exc:
            raise CommandError(f"store error: {exc}", EXIT_FAILED) from None
        except grpc.RpcError as exc:
            code = exc.code()
            exit_code = {
                grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
                grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
                grpc.StatusCode.INVALID_ARGUMENT: EXIT_BAD_INPUT,
                grpc.StatusCode.RESOURCE_EXHAUSTED: EXIT_BUDGET,
            }.get(code, EXIT_FAILED)
            raise CommandError(f"{code.name}: {exc.details()}", exit_code) from None
        except (ValueError, FileNotFoundError) as exc:
            raise CommandError(str(exc), EXIT_BAD_INPUT) from None
        except TimeoutError as exc:
            raise CommandError(f"timed out: {exc}", EXIT_UNAVAILABLE) from None

    return wrapper
