"""Fixtures for the generator tests; the tiny models live in gen_tiny_models.py."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib does not add test dirs to sys.path
# peft looks the base model up on the Hub when saving an adapter; there is no network here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from gen_tiny_models import make_tiny_bundle  # noqa: E402

# Tiny models: one thread is fastest, and on a busy machine two OpenMP threads spin-wait on each
# other (a 32-wide matmul took 15 ms instead of microseconds).
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_bundle():
    return make_tiny_bundle()
