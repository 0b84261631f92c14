import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from atom.runtime.net import port_open
from atom.runtime.ports import GRPC_PORTS, METRICS_PORTS


def _atomctl(*args, **kw):
    return subprocess.run([sys.executable, "-m", "atom.cli", *args], capture_output=True, text=True, **kw)


def test_services_up_then_status(tmp_path):
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-m", "atom.cli", "--store", str(store), "services", "up", "--log-dir", str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("store "):
                break
        assert any(line.startswith("evaluator") for line in lines), "".join(lines)
        out = _atomctl("status", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        rows = json.loads(out.stdout)
        assert {r["service"] for r in rows} == set(GRPC_PORTS)
        assert all(r["health"] == "SERVING" and r["version"] for r in rows)
        assert all(r["store"] == str(store) for r in rows)
        # The services that compute report their device (auto: the CPU here, CUDA where there is one).
        assert all(r["device"] in ("cpu", "cuda:0") for r in rows if r["service"] in ("generator", "trainer", "evaluator"))
        for name, port in METRICS_PORTS.items():
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            assert "# TYPE grpc_server_started_total counter" in body or "python_info" in body
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    for port in GRPC_PORTS.values():
        assert not port_open("127.0.0.1", port)


def test_status_reports_down_services_with_exit_3():
    out = _atomctl("--endpoint", "all=127.0.0.1:1", "status", "--timeout", "0.5")
    assert out.returncode == 3
    assert "UNAVAILABLE" in out.stdout


def test_bad_endpoint_flag_is_a_usage_error():
    out = _atomctl("--endpoint", "nonsense", "status")
    assert out.returncode == 2 and "expected SERVICE=HOST:PORT" in out.stderr


def test_serve_refuses_a_device_it_does_not_have():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: asking for it is not an error here")
    out = _atomctl("serve", "generator", "--device", "cuda", "--port", "0", "--metrics-port", "0")
    assert out.returncode == 5, out.stdout + out.stderr
    assert "no CUDA device" in out.stderr and "Traceback" not in out.stderr
