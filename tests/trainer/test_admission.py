"""Which trainer jobs run at once: one-thread model jobs side by side (a first run trains the
evaluator while the base model pretrains), a preference job alone; first come, first served; and
model jobs side by side (each in a process of its own) make the same bytes as one after the
other."""

import threading
import time

import pytest

from atom.store import LocalStore
from services.trainer.admission import Admission
from services.trainer.jobs import RUNNING, SUCCEEDED, JobManager
from services.trainer.model_jobs import EvaluatorSpec, PretrainSpec

DATASET = "datasets/world-test"


def test_jobs_fit_the_threads_first_come_first_served():
    a = Admission(2)
    never = threading.Event()
    assert (a.fit(0), a.fit(1), a.fit(5)) == (1, 1, 2)
    assert a.acquire(1, never) and a.acquire(1, never) and a.in_use == 2
    order = []

    def ask(name, threads):
        assert a.acquire(threads, never)
        order.append(name)

    # An all-threads job asks first, then a one-thread job: the latter does not overtake it.
    big = threading.Thread(target=ask, args=("big", 2))
    big.start()
    time.sleep(0.3)
    small = threading.Thread(target=ask, args=("small", 1))
    small.start()
    time.sleep(0.3)
    a.release(1)  # one thread free: enough for "small", but "big" is first in line
    time.sleep(0.5)
    assert order == []
    a.release(1)
    big.join(5)
    assert order == ["big"]
    a.release(2)
    small.join(5)
    assert order == ["big", "small"] and a.in_use == 1


def test_a_waiting_job_gives_up_when_cancelled():
    a = Admission(1)
    never, cancel = threading.Event(), threading.Event()
    assert a.acquire(1, never)
    threading.Timer(0.3, cancel.set).start()
    assert a.acquire(1, cancel, poll_s=0.05) is False and a.in_use == 1
    a.release(1)
    assert a.acquire(1, never)  # the cancelled asker left the line


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from atom.motion.world.corpus import build_corpus

    root = tmp_path_factory.mktemp("admission")
    build_corpus(root / "world", 90, seed=2)
    return root


def _run_model_jobs(world, root, threads):
    store = LocalStore(root)
    store.put_tree(DATASET, world / "world")
    store.put_bytes(f"{DATASET}/DONE", b"ok\n")
    m = JobManager(store, lambda config: None, threads=threads, persist_interval_s=0.0)
    pre = m.start(PretrainSpec(dataset=DATASET, output_prefix="models/base", preset="tiny"))
    ev = m.start(EvaluatorSpec(dataset=DATASET, output_prefix="models/evaluator", steps=20))
    together = False
    while not (m.get(pre).terminal and m.get(ev).terminal):
        together = together or (m.get(pre).state == RUNNING and m.get(ev).state == RUNNING)
        time.sleep(0.01)
    assert m.get(pre).state == m.get(ev).state == SUCCEEDED, (m.get(pre).error, m.get(ev).error)
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "models").rglob("*") if p.is_file()}
    return together, files


@pytest.mark.slow
def test_model_jobs_run_side_by_side_and_make_the_same_bytes(world, tmp_path):
    together, side_by_side = _run_model_jobs(world, tmp_path / "two", threads=2)
    apart, one_by_one = _run_model_jobs(world, tmp_path / "one", threads=1)
    assert together and not apart
    assert sorted(side_by_side) == sorted(one_by_one) and len(side_by_side) > 4
    for name in side_by_side:
        assert side_by_side[name] == one_by_one[name], name
