"""HumanML3D directory I/O: caption lines, writer determinism and atomicity, the reader on a
released-style directory and on one written here, evaluation-style iteration, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from atom.motion import humanml3d as H
from atom.motion.features import MeanStd, canonicalize, compute_mean_std
from atom.motion.humanml3d import Caption, Clip, HumanML3D, HumanML3DError
from atom.motion.record import MotionFormatError
from atom.motion.skeleton import FEATURE_DIM
from rest_skeleton import rest_joints


def walk_joints(t: int, seed: int = 0) -> np.ndarray:
    rest = rest_joints()
    rng = np.random.default_rng(seed)
    joints = np.repeat(rest[None], t, axis=0) + 0.02 * rng.normal(size=(t, 22, 3))
    joints[:, :, 2] += 0.04 * np.arange(t)[:, None]
    return joints


def feats(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, FEATURE_DIM)).astype(np.float32)


REAL_LINES = [
    "a man kicks something or someone with his left leg.#a/DET man/NOUN kick/VERB something/PRON or/CCONJ someone/PRON with/ADP his/DET left/ADJ leg/NOUN#0.0#0.0",
    "the standing person kicks with their left foot before going back to their original stance.#the/DET stand/VERB person/NOUN kick/VERB with/ADP their/DET left/ADJ foot/NOUN before/ADP go/VERB back/ADV to/ADP their/DET original/ADJ stance/NOUN#0.0#0.0",
    "a person walks then turns.#a/DET person/NOUN walk/VERB then/ADV turn/VERB#1.5#6.25",
    "#  #0.0#0.0",
]


# ------------------------------------------------------------------------------ captions


@pytest.mark.parametrize("line", REAL_LINES[:3])
def test_caption_line_round_trips_exactly(line):
    cap = Caption.from_line(line)
    assert cap.to_line() == line
    assert Caption.from_line(cap.to_line()) == cap


def test_caption_fields():
    cap = Caption.from_line(REAL_LINES[2] + "\r\n")
    assert cap.text == "a person walks then turns."
    assert cap.tokens == ("a/DET", "person/NOUN", "walk/VERB", "then/ADV", "turn/VERB")
    assert (cap.start, cap.end, cap.whole_clip) == (1.5, 6.25, False)
    assert Caption.from_line(REAL_LINES[0]).whole_clip
    empty = Caption.from_line(REAL_LINES[3])
    assert empty.text == "" and empty.tokens == ()
    nan = Caption.from_line("a person jumps.#a/DET person/NOUN jump/VERB#nan#nan")
    assert nan.whole_clip  # released texts hold NaN ranges; the loaders read them as 0


def test_caption_from_text_tags():
    cap = Caption.from_text("  A person walks forward.  ")
    assert cap.text == "A person walks forward."
    assert cap.tokens == ("a/DET", "person/NOUN", "walk/VERB", "forward/ADV")
    assert Caption.from_line(cap.to_line()) == cap


@pytest.mark.parametrize(
    "line, match",
    [
        ("no hashes at all", "4 fields"),
        ("a#b#c#d#e", "4 fields"),
        ("a man walks.#a/DET#zero#0.0", "numbers"),
        ("a man walks.#a/DET#-1.0#0.0", ">= 0"),
        ("a man walks.#a/DET#inf#0.0", "finite"),
    ],
)
def test_bad_caption_lines(line, match):
    with pytest.raises(HumanML3DError, match=match):
        Caption.from_line(line, source="texts/x.txt:3")


def test_bad_caption_objects():
    with pytest.raises(HumanML3DError, match="one line"):
        Caption("two\nlines")
    with pytest.raises(HumanML3DError, match="'#'"):
        Caption("a # in it")
    with pytest.raises(HumanML3DError, match="token"):
        Caption("ok", tokens=("two words/NOUN",))


# ------------------------------------------------------------------------------ writer


def make_clip(cid="w000001", n=60, labels=None, seed=0) -> Clip:
    return Clip(
        cid,
        np.zeros((n + 1, 22, 3), np.float32) + seed,
        feats(n, seed),
        (Caption.from_text("a person walks forward."), Caption.from_text("someone walks.", 0.5, 2.0)),
        labels,
    )


def tree_bytes(root) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def write_world(root, clips, ms):
    for c in clips:
        H.write_clip(root, c)
    H.write_split(root, "train", [c.clip_id for c in clips[:2]])
    H.write_split(root, "test", [c.clip_id for c in clips[2:]])
    H.write_mean_std(root, ms)


def test_write_read_round_trip(tmp_path):
    labels = {"task": "integrity", "events": [{"event": "walk_forward", "count": 1}], "b": 2}
    clips = [make_clip(f"w{i:06d}", n=50 + i, labels=labels if i == 1 else None, seed=i) for i in range(3)]
    ms = compute_mean_std([c.features for c in clips])
    write_world(tmp_path, clips, ms)

    ds = HumanML3D(tmp_path)
    assert ds.split_ids("train") == ["w000000", "w000001"] and ds.split_ids("test") == ["w000002"]
    assert ds.all_ids() == ["w000000", "w000001", "w000002"]
    for c in clips:
        got = ds.load_clip(c.clip_id)
        np.testing.assert_array_equal(got.features, c.features)
        np.testing.assert_array_equal(got.joints, c.joints)
        assert got.captions == c.captions and got.labels == c.labels
        assert got.features.dtype == np.float32
    back = ds.mean_std()
    np.testing.assert_array_equal(back.mean, ms.mean)
    np.testing.assert_array_equal(back.std, ms.std)
    # Labels are JSON with sorted keys.
    text = (tmp_path / "labels" / "w000001.json").read_text()
    assert json.loads(text) == labels and text.index('"b"') < text.index('"events"') < text.index('"task"')
    assert not (tmp_path / "labels" / "w000000.json").exists()


def test_writes_are_byte_deterministic(tmp_path):
    clips = [make_clip(f"w{i:06d}", labels={"k": [1, 2.5, "x"]}, seed=i) for i in range(3)]
    ms = compute_mean_std([c.features for c in clips])
    write_world(tmp_path / "a", clips, ms)
    write_world(tmp_path / "b", clips, ms)
    a, b = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert a == b and len(a) == 3 * 4 + 2 + 2
    write_world(tmp_path / "a", clips, ms)  # rewriting gives the same bytes again
    assert tree_bytes(tmp_path / "a") == a
    assert not [k for k in a if os.path.basename(k).startswith(".")]  # no temp files
    assert oct((tmp_path / "a" / "Mean.npy").stat().st_mode & 0o777) == "0o644"


def test_write_is_atomic(tmp_path, monkeypatch):
    H.write_clip(tmp_path, make_clip(seed=1))
    before = tree_bytes(tmp_path)

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(H.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        H.write_clip(tmp_path, make_clip(seed=2))
    assert tree_bytes(tmp_path) == before  # old files intact, no temp files left


def test_rewrite_without_labels_or_joints_removes_stale_files(tmp_path):
    H.write_clip(tmp_path, make_clip(labels={"a": 1}))
    clip = make_clip()
    H.write_clip(tmp_path, Clip(clip.clip_id, None, clip.features, clip.captions, None))
    assert not (tmp_path / "labels" / "w000001.json").exists()
    assert not (tmp_path / "new_joints" / "w000001.npy").exists()
    assert HumanML3D(tmp_path).load_clip("w000001").joints is None


def test_writer_rejects_bad_input(tmp_path):
    with pytest.raises(HumanML3DError, match="clip id"):
        make_clip(cid="../escape")
    with pytest.raises(HumanML3DError, match="split name"):
        H.write_split(tmp_path, "../train", ["a"])
    with pytest.raises(HumanML3DError, match="clip id"):
        H.write_split(tmp_path, "train", ["ok", "has space"])
    with pytest.raises(HumanML3DError, match="JSON"):
        H.write_clip(tmp_path, make_clip(labels={"x": np.float32(1)}))
    with pytest.raises(HumanML3DError, match="joint frames"):
        Clip("a", np.zeros((70, 22, 3)), feats(60))
    with pytest.raises(HumanML3DError, match="shape"):
        Clip("a", None, np.zeros((60, 259)))
    with pytest.raises(HumanML3DError, match="NaN"):
        Clip("a", None, np.full((60, FEATURE_DIM), np.nan))


def test_clip_from_joints_follows_humanml3d(tmp_path):
    joints = walk_joints(61)
    clip = H.clip_from_joints("g000001", joints, ["a person walks forward."], {"task": "frequency"})
    assert clip.features.shape == (60, FEATURE_DIM) and clip.joints.shape == (60, 22, 3)
    np.testing.assert_allclose(clip.joints, canonicalize(joints)[:-1], atol=1e-4)
    assert clip.captions[0].tokens[2] == "walk/VERB"
    H.write_clip(tmp_path, clip)
    got = HumanML3D(tmp_path).load_clip("g000001")
    np.testing.assert_array_equal(got.joints, clip.joints)


# ------------------------------------------------------------------------------ released-style data


@pytest.fixture
def released(tmp_path):
    """A directory laid out like the released HumanML3D: float64 arrays, new_joints with as many
    rows as new_joint_vecs, CRLF split files, NaN and ranged captions, no labels/."""
    root = tmp_path / "HumanML3D"
    (root / "new_joints").mkdir(parents=True)
    (root / "new_joint_vecs").mkdir()
    (root / "texts").mkdir()
    lengths = {"000000": 39, "000001": 40, "000002": 199, "000003": 200, "M000004": 150, "000005": 90}
    for i, (cid, n) in enumerate(lengths.items()):
        np.save(root / "new_joint_vecs" / f"{cid}.npy", feats(n, i).astype(np.float64))
        np.save(root / "new_joints" / f"{cid}.npy", np.random.default_rng(i).normal(size=(n, 22, 3)))
        lines = [REAL_LINES[0], REAL_LINES[1].replace("#0.0#0.0", "#nan#nan")]
        if cid == "M000004":
            lines.append("a person walks then turns.#a/DET person/NOUN walk/VERB then/ADV turn/VERB#1.0#4.0")
            lines.append("walks.#walk/VERB#1.0#2.0")  # 20 frames: too short to keep
        if cid == "000005":
            lines = ["only a part.#only/ADV a/DET part/NOUN#0.5#2.0"]
        (root / "texts" / f"{cid}.txt").write_text("\n".join(lines) + "\n")
    (root / "test.txt").write_bytes(b"000000\r\n000001\r\n000002\r\n000003\r\nM000004\r\n000005\r\n\r\n")
    (root / "train.txt").write_text("000001\n")
    np.save(root / "Mean.npy", np.zeros(FEATURE_DIM))
    np.save(root / "Std.npy", np.ones(FEATURE_DIM))
    return root


def test_reads_released_layout(released):
    ds = HumanML3D(released)
    clip = ds.load_clip("000001")
    assert clip.features.dtype == np.float32 and clip.joints.shape == (40, 22, 3)
    assert clip.labels is None and len(clip.captions) == 2 and all(c.whole_clip for c in clip.captions)
    assert isinstance(ds.mean_std(), MeanStd)


def test_iter_clips_evaluation_rules(released):
    ds = HumanML3D(released)
    got = {c.clip_id: c for c in ds.iter_clips("test")}
    # 39 and 200 frames are out; 000005 has only a ranged caption and its part is too short.
    assert list(got) == ["000001", "000002", "M000004", "M000004@1.0-4.0"]
    assert got["000002"].length == 199
    sub = got["M000004@1.0-4.0"]
    full = ds.load_clip("M000004")
    np.testing.assert_array_equal(sub.features, full.features[20:80])
    np.testing.assert_array_equal(sub.joints, full.joints[20:80])
    assert [c.text for c in sub.captions] == ["a person walks then turns."]
    assert all(c.whole_clip for c in got["M000004"].captions)

    cropped = {c.clip_id: c for c in ds.iter_clips("test", crop_multiple=4)}
    assert cropped["000002"].length == 196 and cropped["000002"].joints.shape[0] == 196
    assert all(c.length % 4 == 0 for c in cropped.values())
    assert [c.clip_id for c in ds.iter_clips("test", sub_clips=False)] == ["000001", "000002", "M000004"]
    assert [c.clip_id for c in ds.iter_clips("test", min_len=100, max_len=196)] == ["M000004"]


def test_written_directory_goes_through_the_same_reader(tmp_path):
    clips = [H.clip_from_joints(f"g{i:06d}", walk_joints(n + 1, i), ["a person walks."]) for i, n in enumerate((39, 40, 120))]
    write_world(tmp_path, clips, compute_mean_std([c.features for c in clips]))
    ds = HumanML3D(tmp_path)
    assert [c.clip_id for c in ds.iter_clips("train")] == ["g000001"]
    assert [c.length for c in ds.iter_clips("test", crop_multiple=4)] == [120]


# ------------------------------------------------------------------------------ reader errors


def test_missing_directory_and_layout(tmp_path):
    with pytest.raises(HumanML3DError, match="does not exist"):
        HumanML3D(tmp_path / "nope")
    (tmp_path / "texts").mkdir()
    with pytest.raises(HumanML3DError, match="new_joint_vecs"):
        HumanML3D(tmp_path)


def test_missing_split_lists_available(released):
    with pytest.raises(HumanML3DError, match=r"val.txt: split file missing \(splits present: test, train\)"):
        HumanML3D(released).split_ids("val")


def test_corrupt_npy_names_the_file(released):
    path = released / "new_joint_vecs" / "000001.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(MotionFormatError, match=r"000001\.npy: not a readable \.npy file.*regenerate"):
        HumanML3D(released).load_clip("000001")
    with pytest.raises(MotionFormatError, match="000001.npy"):
        list(HumanML3D(released).iter_clips("train"))


def test_wrong_shapes_and_values(released):
    np.save(released / "new_joint_vecs" / "000001.npy", np.zeros((40, 251)))
    with pytest.raises(MotionFormatError, match=r"000001\.npy: features must have shape"):
        HumanML3D(released).load_clip("000001")
    np.save(released / "new_joint_vecs" / "000001.npy", np.full((40, FEATURE_DIM), np.nan))
    with pytest.raises(MotionFormatError, match="NaN"):
        HumanML3D(released).load_clip("000001")
    np.save(released / "new_joint_vecs" / "000001.npy", np.array(["a"] * 3))
    with pytest.raises(MotionFormatError, match="floating point"):
        HumanML3D(released).load_clip("000001")


def test_missing_and_bad_texts(released):
    (released / "texts" / "000001.txt").unlink()
    with pytest.raises(HumanML3DError, match=r"000001\.txt: caption file missing"):
        HumanML3D(released).load_clip("000001")
    (released / "texts" / "000001.txt").write_text("good.#good/ADJ#0.0#0.0\nbroken line\n")
    with pytest.raises(HumanML3DError, match=r"000001\.txt:2: expected"):
        HumanML3D(released).load_clip("000001")


def test_missing_and_bad_statistics(released):
    (released / "Std.npy").unlink()
    with pytest.raises(HumanML3DError, match="Std.npy: missing"):
        HumanML3D(released).mean_std()
    np.save(released / "Std.npy", np.zeros(FEATURE_DIM))
    with pytest.raises(HumanML3DError, match="positive"):
        HumanML3D(released).mean_std()


def test_bad_labels_file(tmp_path):
    H.write_clip(tmp_path, make_clip(labels={"a": 1}))
    (tmp_path / "labels" / "w000001.json").write_text("{not json")
    with pytest.raises(HumanML3DError, match="not valid JSON"):
        HumanML3D(tmp_path).load_clip("w000001")
