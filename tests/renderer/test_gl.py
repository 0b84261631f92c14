"""Headless platform choice and the numpy 2 shim. Platform tests run in fresh interpreters,
because PyOpenGL binds its platform once per process."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
from services.renderer.scene import SceneRenderer
import os
s = SceneRenderer(64, 64)
print("PLATFORM", os.environ["PYOPENGL_PLATFORM"])
"""


def _run(env_updates: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYOPENGL_PLATFORM", "ATOM_GL_PLATFORM")}
    env.update(env_updates)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)


def test_egl_is_the_default_platform():
    res = _run({})
    assert res.returncode == 0, res.stderr
    assert "PLATFORM egl" in res.stdout


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"PYOPENGL_PLATFORM": "x11"}, "not a headless platform"),
        ({"ATOM_GL_PLATFORM": "vulkan"}, "is unknown"),
    ],
)
def test_unusable_platform_choices_fail_clearly(env, needle):
    res = _run(env)
    assert res.returncode != 0
    assert "RendererUnavailable" in res.stderr and needle in res.stderr


def test_osmesa_fallback_either_works_or_says_why():
    res = _run({"ATOM_GL_PLATFORM": "osmesa"})
    if res.returncode == 0:
        assert "PLATFORM osmesa" in res.stdout
    else:
        assert "RendererUnavailable" in res.stderr and "OSMesa" in res.stderr and "EGL" in res.stderr


def test_numpy_shim_lets_pyrender_compute_bounds(motion_renderer, walk_motion):
    from services.renderer.skeleton_mesh import SkeletonTemplate

    assert np.infty == np.inf  # noqa: NPY201 - the alias pyrender needs
    motion_renderer.render_frames(walk_motion, [0], SkeletonTemplate(), width=64, height=64)
    bounds = motion_renderer.scene.scene.bounds  # pyrender starts from +-np.infty here
    assert np.isfinite(bounds).all()
