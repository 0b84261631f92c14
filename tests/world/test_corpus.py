"""The corpus: HumanML3D layout, readable by the reader, byte-for-byte deterministic per seed."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from atom.motion.features import FEATURE_DIM, joints_to_features, round_trip_error
from atom.motion.humanml3d import HumanML3D
from atom.motion.world.corpus import CorpusError, build_corpus, make_world_clip, sample_events, clip_rng


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("world") / "a"
    summary = build_corpus(root, 20, seed=5)
    return root, summary


def test_layout_and_reader(corpus):
    root, summary = corpus
    for name in ("new_joints", "new_joint_vecs", "texts", "labels"):
        assert len(list((root / name).iterdir())) == 20
    for name in ("Mean.npy", "Std.npy", "train.txt", "val.txt", "test.txt", "world.json"):
        assert (root / name).is_file()
    splits = {s: (root / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == [f"{i:06d}" for i in range(20)]  # a partition
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (16, 2, 2)
    assert summary.splits == {"train": 16, "val": 2, "test": 2}
    assert sum(summary.kinds.values()) == 20

    ds = HumanML3D(root)
    clip = ds.load_clip(splits["test"][0])
    assert clip.features.shape[1] == FEATURE_DIM and np.all(np.isfinite(clip.features))
    assert len(clip.captions) == 3 and all(c.tokens for c in clip.captions)
    assert all("/" in tok for c in clip.captions for tok in c.tokens)  # word/POS
    labels = json.loads((root / "labels" / f"{clip.clip_id}.json").read_text())
    assert labels["num_frames"] == clip.features.shape[0] + 1
    assert all(o["end"] <= labels["num_frames"] - 1 for o in labels["occurrences"])
    mean, std = np.load(root / "Mean.npy"), np.load(root / "Std.npy")
    assert mean.shape == std.shape == (FEATURE_DIM,) and np.all(std > 0)


def test_same_seed_same_bytes_other_seed_differs(corpus, tmp_path):
    root, _ = corpus
    again = tmp_path / "b"
    build_corpus(again, 20, seed=5, workers=2)  # the pipeline builds with worker processes
    assert _tree_hash(root) == _tree_hash(again)
    other = tmp_path / "c"
    build_corpus(other, 20, seed=6)
    assert _tree_hash(other) != _tree_hash(root)


def test_clip_i_does_not_depend_on_corpus_size():
    _, a, ta = make_world_clip(9, 3)
    _, b, tb = make_world_clip(9, 3)
    assert np.array_equal(a.joints, b.joints) and ta == tb


def test_features_finite_and_round_trip():
    errs = []
    for i in range(12):
        _, wc, _ = make_world_clip(21, i)
        f = joints_to_features(wc.joints)
        assert np.all(np.isfinite(f))
        errs.append(round_trip_error(wc.joints))
    assert max(errs) < 1e-4


def test_request_mix_covers_all_kinds():
    kinds = {}
    for i in range(300):
        kind, events = sample_events(clip_rng(0, i))
        kinds.setdefault(kind, []).append(events)
        if kind == "repeat":
            assert len(events) == 1 and 1 <= events[0].count <= 5
        if kind == "sequence":
            assert 2 <= len(events) <= 5
            assert all(a.event != b.event for a, b in zip(events, events[1:]))
    assert set(kinds) == {"single", "sequence", "repeat"}
    assert {e[0].count for e in kinds["repeat"]} == {1, 2, 3, 4, 5}


def test_bad_parameters(tmp_path):
    with pytest.raises(CorpusError, match="num_clips"):
        build_corpus(tmp_path / "x", 0, seed=1)
    with pytest.raises(CorpusError, match="splits"):
        build_corpus(tmp_path / "x", 5, seed=1, splits=(0.5, 0.2, 0.2))
