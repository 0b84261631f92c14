"""Fixtures for evaluator tests. A tiny synthetic HumanML3D-layout corpus for evaluator tests: each event is a distinct
oscillation on its own feature dims, clips are 1-3 events in order, captions say which."""

from __future__ import annotations

import numpy as np

from atom.motion.features import MeanStd
from atom.motion.humanml3d import Caption, Clip, write_clip, write_mean_std, write_split

EVENTS = ("walk_forward", "squat", "jump_in_place", "wave", "kick", "clap")
PHRASES = {
    "walk_forward": "walks forward",
    "squat": "squats",
    "jump_in_place": "jumps in place",
    "wave": "waves",
    "kick": "kicks",
    "clap": "claps",
}
COUNTS = {1: "", 2: " twice", 3: " three times"}


def event_segment(event: str, count: int, rng) -> np.ndarray:
    k = EVENTS.index(event)
    n = int(rng.integers(20, 30)) * count
    t = np.arange(n)
    f = rng.normal(0, 0.05, size=(n, 263))
    dims = np.arange(k * 20, k * 20 + 20)
    f[:, dims] += np.sin(2 * np.pi * t[:, None] * count / n + dims / 7.0)
    return f


def make_clip(clip_id: str, seq: list[tuple[str, int]], rng) -> Clip:
    feats = np.concatenate([event_segment(e, c, rng) for e, c in seq]).astype(np.float32)
    text = "a person " + ", then ".join(PHRASES[e] + COUNTS[c] for e, c in seq) + "."
    labels = {"task": "integrity", "events": [{"event": e, "count": c} for e, c in seq]}
    return Clip(clip_id, None, feats, (Caption.from_text(text),), labels)


def random_seq(rng) -> list[tuple[str, int]]:
    n = int(rng.integers(1, 4))
    names = list(rng.choice(len(EVENTS), n, replace=False))
    return [(EVENTS[i], int(rng.integers(2, 4)) if (n == 1 and i in (1, 2, 5)) else 1) for i in names]


def write_corpus(root, sizes=None, seed=0) -> None:
    sizes = sizes or {"train": 192, "val": 64, "test": 64}
    rng = np.random.default_rng(seed)
    for split, n in sizes.items():
        ids = []
        for i in range(n):
            cid = f"{split}_{i:04d}"
            write_clip(root, make_clip(cid, random_seq(rng), rng))
            ids.append(cid)
        write_split(root, split, ids)
    write_mean_std(root, MeanStd(np.zeros(263), np.ones(263)))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory):
    """Path of a small synthetic HumanML3D-layout corpus (train 192 / val 64 / test 64)."""
    root = tmp_path_factory.mktemp("synthetic_world")
    write_corpus(root)
    return root
