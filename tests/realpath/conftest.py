"""Session fixtures: a HumanML3D directory and a MotionGPT checkout's files, built once (about 15 s)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib does not add test dirs to sys.path
sys.path.insert(0, str(Path(__file__).parent.parent / "judge"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import realfiles  # noqa: E402


@pytest.fixture(scope="session")
def humanml(tmp_path_factory) -> Path:
    return realfiles.build_humanml3d(tmp_path_factory.mktemp("HumanML3D"))


@pytest.fixture(scope="session")
def release(tmp_path_factory, humanml) -> dict:
    """checkpoint, deps, t5_dir, mean_std: MotionGPT's checkout layout."""
    return realfiles.build_motiongpt_release(tmp_path_factory.mktemp("MotionGPT"), humanml)
