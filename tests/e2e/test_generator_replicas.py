"""An embedded run starts two one-thread generator processes on CPUs (generate.replicas: auto) and
they make the same motions, byte for byte, as one generator process with both threads."""

import sys
from pathlib import Path

import pytest

from atom.mgpt.bundle import save_bundle
from atom.pipeline.config import load_config
from atom.pipeline.runner import generator_replicas
from atom.pipeline.stages import sampling_params
from atom.runtime.client import connect
from atom.runtime.cpus import available_cpus
from atom.runtime.launch import LocalServices
from atom.store import LocalStore
from atom.v1 import common_pb2, generator_pb2

sys.path.insert(0, str(Path(__file__).parent.parent / "generator"))
from gen_tiny_models import make_tiny_bundle  # noqa: E402

pytestmark = pytest.mark.slow

BASE = "models/base-test"
TEXTS = ["a person walks forward then squats", "a man jumps two times", "someone waves then turns", "a person squats three times"]


def test_auto_is_two_processes_on_cpus_and_one_on_a_gpu():
    cpu = load_config(overrides={"model.device": "cpu"})
    assert generator_replicas(cpu) == (2 if available_cpus() >= 2 else 1)
    assert generator_replicas(load_config(overrides={"model.device": "cuda"})) == 1
    assert generator_replicas(load_config(overrides={"model.device": "cuda", "generate.replicas": 3})) == 3


def _motions(root: Path, replicas: int, logs: Path) -> dict:
    """Every motion of the prompts, two prompts a request, from `replicas` generator processes."""
    store = LocalStore(root)
    save_bundle(store, BASE, make_tiny_bundle())
    prompts = [common_pb2.Prompt(prompt_id=f"p{i}", text=t, task="temporal") for i, t in enumerate(TEXTS * 2)]
    sampling = sampling_params(load_config().generate)
    out = {}
    with LocalServices(str(root), ["generator"], replicas={"generator": replicas}, log_dir=logs) as group:
        group.wait_ready()
        with connect("generator", group.endpoints()["generator"]) as client:
            assert len(client.addresses) == replicas
            for i in range(0, len(prompts), 2):  # the client sends each request to the next process
                req = generator_pb2.GenerateRequest(
                    prompts=prompts[i : i + 2], samples_per_prompt=4, model=common_pb2.ModelRef(base=BASE), sampling=sampling, seed=0
                )
                for m in client.stream("Generate", req, timeout=600):
                    out[(m.prompt_id, m.sample_index)] = store.get_bytes(m.motion.key)
    return out


@pytest.mark.skipif(available_cpus() < 2, reason="one CPU: nothing to split")
def test_two_one_thread_generators_make_the_same_motions_as_one_with_both_threads(tmp_path):
    two = _motions(tmp_path / "two", 2, tmp_path / "logs")
    one = _motions(tmp_path / "one", 1, tmp_path / "logs")
    assert len(two) == 8 * 4 and two == one
