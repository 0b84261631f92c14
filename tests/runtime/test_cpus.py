"""The model services size their thread pools to the CPUs they may use (atom.runtime.cpus)."""

import os

import pytest

from atom.runtime import cpus
from atom.runtime.client import connect
from atom.runtime.launch import LocalServices


def test_quota_parsing():
    assert cpus.quota_cpus("200000", "100000") == 2.0
    assert cpus.quota_cpus("150000", "100000") == 1.5
    assert cpus.quota_cpus("max", "100000") is None  # cgroup v2: no limit
    assert cpus.quota_cpus("-1", "100000") is None  # cgroup v1: no limit
    assert cpus.quota_cpus("", "") is None
    assert cpus.quota_cpus("lots", "100000") is None


def test_available_cpus_is_capped_by_the_cgroup_limit(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(cpus, "cgroup_cpus", lambda: None)
    assert cpus.available_cpus() == affinity
    monkeypatch.setattr(cpus, "cgroup_cpus", lambda: 0.5)
    assert cpus.available_cpus() == 1  # a fraction of a CPU still runs one thread
    monkeypatch.setattr(cpus, "cgroup_cpus", lambda: 1000.0)
    assert cpus.available_cpus() == affinity


def test_set_thread_env_keeps_the_users_setting(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    cpus.set_thread_env(1)
    assert os.environ["OMP_NUM_THREADS"] == "3" and os.environ["MKL_NUM_THREADS"] == "1"


@pytest.mark.parametrize("replicas", [1, 2])
def test_model_service_threads_follow_the_cpus_and_the_replicas(tmp_path, monkeypatch, replicas):
    # One replica sizes its pool to the CPUs it may use (`atomctl serve`, before torch loads);
    # replicas on one machine share them (the launcher). The service reports what torch uses.
    for name in cpus.THREAD_VARS:
        monkeypatch.delenv(name, raising=False)
    with LocalServices(str(tmp_path / "store"), ["trainer"], replicas=replicas, log_dir=tmp_path / "logs") as group:
        group.wait_ready(120)
        client = connect("trainer", group.endpoints()["trainer"])
        try:
            threads = [client.info(s.address).details["cpu_threads"] for s in group.services["trainer"]]
        finally:
            client.close()
    assert threads == [str(max(1, cpus.available_cpus() // replicas))] * replicas
