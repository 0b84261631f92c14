"""Start atom services as local processes on loopback: `atomctl services up`, the embedded
pipeline, and the tests. Each one is `atomctl serve NAME`, exactly what a container runs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping

from atom.runtime.client import connect
from atom.runtime.cpus import THREAD_VARS, available_cpus, thread_env
from atom.runtime.net import free_port
from atom.runtime.ports import GRPC_PORTS, METRICS_PORTS, SERVICES, check_service

log = logging.getLogger("atom.launch")

# The directory that holds the `atom` and `services` packages this process imported.
CODE_ROOT = str(Path(__file__).resolve().parent.parent.parent)


def die_with_parent() -> None:
    """Linux: the service gets SIGTERM when the process that started it dies, even by SIGKILL,
    so an interrupted `atomctl run-pipeline` leaves no orphan servers behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalService:
    name: str
    port: int
    metrics_port: int
    proc: subprocess.Popen
    log_path: Path | None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_local_service(
    name: str,
    store_url: str,
    *,
    port: int = 0,
    metrics_port: int = 0,
    log_dir: Path | None = None,
    log_level: str = "info",
    extra_env: dict | None = None,
) -> LocalService:
    check_service(name)
    port = port or free_port()
    metrics_port = metrics_port or free_port()
    env = dict(os.environ)
    env.update(
        {
            "ATOM_HOST": "127.0.0.1",
            "ATOM_PORT": str(port),
            "ATOM_METRICS_PORT": str(metrics_port),
            "ATOM_STORE_URL": store_url,
            "ATOM_LOG_LEVEL": log_level,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    # The service imports the code this process runs, whatever the working directory holds: `-P`
    # keeps `python -m` from putting the cwd first on sys.path (run from inside another checkout,
    # the services loaded that checkout's code while the controller ran the installed one).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (CODE_ROOT, env.get("PYTHONPATH", "")) if p)
    log_path = None
    out: int | IO[bytes] = subprocess.DEVNULL
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}-{port}.log"
        out = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "atom.cli", "serve", name],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    return LocalService(name, port, metrics_port, proc, log_path)


class LocalServices:
    """A set of local service processes; a context manager that stops them all on exit."""

    def __init__(
        self,
        store_url: str,
        names=SERVICES,
        *,
        replicas: int | Mapping[str, int] = 1,
        default_ports: bool = False,
        log_dir: Path | None = None,
        log_level: str = "info",
        extra_env: dict | None = None,
    ):
        """`replicas`: processes per service, one number for all or per name (1 where unnamed)."""
        self.store_url = store_url
        self.services: dict[str, list[LocalService]] = {}
        for name in names:
            count = replicas if isinstance(replicas, int) else replicas.get(name, 1)
            env = dict(extra_env or {})
            if count > 1 and not any(v in os.environ or v in env for v in THREAD_VARS):
                # Replicas of one service share this machine's CPUs: each gets its part of them, or
                # their thread pools oversubscribe the cores (see atom.runtime.cpus).
                env.update(thread_env(available_cpus() // count))
            self.services[name] = [
                start_local_service(
                    name,
                    store_url,
                    port=GRPC_PORTS[name] if default_ports and i == 0 else 0,
                    metrics_port=METRICS_PORTS[name] if default_ports and i == 0 else 0,
                    log_dir=log_dir,
                    log_level=log_level,
                    extra_env=env,
                )
                for i in range(count)
            ]

    def endpoints(self) -> dict[str, str]:
        return {name: ",".join(s.address for s in group) for name, group in self.services.items()}

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        for name, group in self.services.items():

            def alive(group=group) -> None:
                for svc in group:
                    if svc.proc.poll() is not None:
                        raise RuntimeError(self.died_message(svc))

            with connect(name, [s.address for s in group], attempts=1) as client:
                client.wait_ready(max(0.0, deadline - time.monotonic()), check=alive)

    @staticmethod
    def died_message(svc: LocalService) -> str:
        tail = ""
        if svc.log_path and svc.log_path.exists():
            tail = "\n" + "\n".join(svc.log_path.read_text(errors="replace").splitlines()[-15:])
        return f"service {svc.name} on port {svc.port} exited with code {svc.proc.returncode}{tail}"

    def stop(self, timeout_s: float = 30.0) -> None:
        procs = [s.proc for group in self.services.values() for s in group if s.proc.poll() is None]
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
