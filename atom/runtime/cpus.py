"""How many CPU threads a model service should use.

PyTorch sizes its thread pool by the CPUs the process may run on, not by the CPU time it is
allowed: a container limited to 2 CPUs on a 64-core node starts 64 threads that spin against
the quota, and two replicas on one 2-core machine each start 2 (four busy threads on two cores).
OpenMP threads that wait spin, so oversubscription costs far more than the share: two generator
replicas on 2 cores took 6x the time of one. The services set OMP_NUM_THREADS (which PyTorch,
OpenMP and MKL read when they load) from the CPUs this process is really allowed, unless the
user set it; the local launcher divides the CPUs between a service's replicas.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# cgroup v2 (one file: "<quota> <period>" or "max <period>"), then v1 (two files, quota -1 = none).
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def quota_cpus(quota: str, period: str) -> float | None:
    """CPUs a CFS quota allows ("max" or a negative quota: no limit)."""
    quota, period = quota.strip(), period.strip()
    if quota == "max" or not quota or not period:
        return None
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpus() -> float | None:
    """The CPU limit of this process's cgroup (Docker's --cpus, a Kubernetes limit), or None."""
    try:
        quota, period = _CGROUP_V2.read_text().split()[:2]
        return quota_cpus(quota, period)
    except (OSError, ValueError):
        pass
    try:
        return quota_cpus(_CGROUP_V1[0].read_text(), _CGROUP_V1[1].read_text())
    except OSError:
        return None


def available_cpus() -> int:
    """CPUs this process may use: those it may run on, capped by its cgroup's limit (rounded up)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    limit = cgroup_cpus()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def thread_env(threads: int) -> dict[str, str]:
    return {name: str(max(1, threads)) for name in THREAD_VARS}


def set_thread_env(threads: int | None = None) -> None:
    """Set the thread variables to `threads` (default: available_cpus()) where the user has not;
    call it before torch is imported."""
    for name, value in thread_env(threads or available_cpus()).items():
        os.environ.setdefault(name, value)
