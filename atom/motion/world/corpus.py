"""Build a HumanML3D-layout corpus from the procedural world.

Layout (atom.motion.humanml3d): new_joints/, new_joint_vecs/, texts/, labels/<id>.json,
Mean.npy / Std.npy (from the train split only, so val/test statistics do not leak), train.txt,
val.txt, test.txt, plus world.json describing how the corpus was made.

Clip i depends only on (seed, i): the same seed gives the same corpus byte for byte, and a
larger corpus with the same seed starts with the same clips.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence, TypeVar

import numpy as np

from atom.motion.events import COUNTABLE_EVENTS, EVENT_NAMES, EventLabel
from atom.motion.features import compute_mean_std
from atom.motion.humanml3d import Caption, Clip, clip_from_joints, write_clip, write_mean_std, write_split
from atom.motion.world.captions import captions, details_from_occurrences
from atom.motion.world.compose import CompositionError, WorldClip, compose

WORLD_VERSION = 1
CAPTIONS_PER_CLIP = 3

# Share of each kind of clip: one event; a sequence of 2-5 different events; one countable
# event performed 1-5 times (the frequency task's shape).
MIX = (("single", 0.2), ("sequence", 0.45), ("repeat", 0.35))
SEQUENCE_LENGTHS = ((2, 0.25), (3, 0.35), (4, 0.2), (5, 0.2))


class CorpusError(ValueError):
    """Bad corpus parameters (count, splits, output directory)."""


@dataclass
class CorpusSummary:
    root: str
    num_clips: int
    seed: int
    splits: dict[str, int]
    kinds: dict[str, int]
    event_occurrences: dict[str, int]
    total_frames: int
    version: int = WORLD_VERSION
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


_T = TypeVar("_T")


def _pick(rng: np.random.Generator, table: Sequence[tuple[_T, float]]) -> _T:
    names = [t[0] for t in table]
    p = np.array([t[1] for t in table], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_events(rng: np.random.Generator) -> tuple[str, list[EventLabel]]:
    """A random request: (kind, events). Sequences never repeat an event back to back."""
    kind = _pick(rng, MIX)
    if kind == "single":
        return kind, [EventLabel(str(EVENT_NAMES[int(rng.integers(len(EVENT_NAMES)))]))]
    if kind == "repeat":
        ev = str(COUNTABLE_EVENTS[int(rng.integers(len(COUNTABLE_EVENTS)))])
        return kind, [EventLabel(ev, int(rng.integers(1, 6)))]
    length = int(_pick(rng, SEQUENCE_LENGTHS))
    events: list[str] = []
    while len(events) < length:
        ev = str(EVENT_NAMES[int(rng.integers(len(EVENT_NAMES)))])
        if events and ev == events[-1]:
            continue
        events.append(ev)
    labels = [EventLabel(e) for e in events]
    # Now and then one step of a short sequence is repeated ("walks forward and squats twice").
    if length <= 3 and rng.random() < 0.25:
        idx = [i for i, e in enumerate(events) if e in COUNTABLE_EVENTS]
        if idx:
            i = idx[int(rng.integers(len(idx)))]
            labels[i] = EventLabel(events[i], int(rng.integers(2, 4)))
    return kind, labels


def clip_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def make_world_clip(seed: int, index: int) -> tuple[str, WorldClip, list[str]]:
    """(kind, clip, captions) for clip `index` of the corpus with this seed."""
    rng = clip_rng(seed, index)
    for _ in range(20):
        kind, events = sample_events(rng)
        try:
            clip = compose(events, rng)
        except CompositionError:
            continue  # too long for one clip: draw another request
        texts = captions(events, rng, CAPTIONS_PER_CLIP, details_from_occurrences(events, clip.occurrences))
        return kind, clip, texts
    raise AssertionError("no composable request in 20 draws")  # cannot happen with the mix above


def build_clip(seed: int, index: int, clip_id: str | None = None) -> Clip:
    """Clip `index` as a HumanML3D record (features, recovered joints, tagged captions, labels)."""
    kind, wc, texts = make_world_clip(seed, index)
    labels = wc.labels_dict()
    labels.update({"kind": kind, "seed": int(seed), "index": int(index), "world_version": WORLD_VERSION})
    caps = [Caption.from_text(t) for t in texts]
    return clip_from_joints(clip_id or f"{index:06d}", wc.joints, caps, labels)


def split_ids(ids: list[str], seed: int, splits=(0.8, 0.1, 0.1)) -> dict[str, list[str]]:
    fr = np.asarray(splits, dtype=np.float64)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise CorpusError(f"splits must be three non-negative fractions (train, val, test) summing to 1, got {splits}")
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5B117])).permutation(len(ids))
    n = len(ids)
    n_val = int(round(fr[1] * n))
    n_test = int(round(fr[2] * n))
    n_train = n - n_val - n_test
    shuffled = [ids[i] for i in order]
    out = {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }
    return out


def _clips(seed: int, num_clips: int, workers: int) -> Iterator[Clip]:
    if workers <= 1:
        for i in range(num_clips):
            yield build_clip(seed, i)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the controller calling this has gRPC channels and their threads, which a
    # forked child would inherit half-locked.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # map keeps the order, so the corpus (and its statistics) do not depend on `workers`.
        yield from pool.map(build_clip, [seed] * num_clips, range(num_clips), chunksize=16)


def build_corpus(
    out_dir: str | os.PathLike, num_clips: int, seed: int, splits=(0.8, 0.1, 0.1), workers: int = 1, progress=None
) -> CorpusSummary:
    """Write `num_clips` world clips in the HumanML3D layout under out_dir.

    progress: optional callable(done, total), called after each clip.
    """
    if not isinstance(num_clips, (int, np.integer)) or num_clips < 1:
        raise CorpusError(f"num_clips must be a positive integer, got {num_clips!r}")
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise CorpusError(f"{root} exists and is not a directory; choose another output path")
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"{i:06d}" for i in range(num_clips)]
    parts = split_ids(ids, seed, splits)
    train = set(parts["train"]) or set(ids)  # a corpus too small for a train split uses all

    kinds: Counter = Counter()
    occ: Counter = Counter()
    frames = 0

    def written_train_features() -> Iterator[np.ndarray]:
        # Streams: each clip is written, counted, and its features (train only) handed to the
        # statistics, so memory stays flat however large the corpus.
        nonlocal frames
        for i, clip in enumerate(_clips(seed, int(num_clips), workers)):
            write_clip(root, clip)
            labels = clip.labels
            assert labels is not None  # build_clip always labels its clips
            kinds[labels["kind"]] += 1
            for o in labels["occurrences"]:
                occ[o["event"]] += 1
            frames += labels["num_frames"]
            if progress is not None:
                progress(i + 1, num_clips)
            if clip.clip_id in train:
                yield clip.features

    write_mean_std(root, compute_mean_std(written_train_features()))
    for name in ("train", "val", "test"):
        write_split(root, name, parts[name])
    summary = CorpusSummary(
        root=str(root),
        num_clips=int(num_clips),
        seed=int(seed),
        splits={k: len(v) for k, v in parts.items()},
        kinds=dict(sorted(kinds.items())),
        event_occurrences=dict(sorted(occ.items())),
        total_frames=int(frames),
    )
    manifest = summary.to_dict()
    manifest.pop("root")  # the manifest must not depend on where the corpus was written
    (root / "world.json").write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return summary
