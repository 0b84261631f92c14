"""MotionGPT's evaluation protocol as a plan: which test items exist, and per replication which
caption each item shows and which crop of its real motion it is compared with.

The controller uses the plan to know what to generate (one motion per item and replication, the
caption drawn for that replication); the evaluator uses the same plan to cut the real motions and
line them up. Both call these pure functions with the same dataset, seed and replication count,
so they agree without exchanging the plan.

The rules follow MotionGPT's test loader (`mGPT/data/humanml/dataset_t2m.py`,
`dataset_t2m_eval.py` and `models/mgpt.py` in OpenMotionLab/MotionGPT), which AToM's Table 5 used:
- items: a file is skipped when its whole clip is shorter than 40 or at least 200 frames; its
  whole-clip captions (from = to = 0) form one item over the whole clip; every caption with a time
  range is an item of its own over frames int(from * 20) .. int(to * 20), kept when that span is
  40..199 frames long. Items are ordered by length (stable), as its loader sorts them; batches
  of 32 consecutive items are embedded together.
- per replication and item: one caption drawn uniformly; a crop of "single" (probability 2/3)
  or "double" unit length: (L // 4) * 4 or (L // 4 - 1) * 4 frames, at a uniform start.
- MultiModality: per replication, `mm_texts` items drawn without replacement, each with a caption
  and crop drawn as above, generated `mm_samples` times with that one caption.
Random numbers come from numpy generators seeded by (seed, replication, stream), not MotionGPT's
global RNG state, so the draws are reproducible but not MotionGPT's very draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from atom.motion.humanml3d import Caption, HumanML3D, HumanML3DError

FPS = 20
UNIT = 4
MIN_LEN, MAX_LEN = 40, 200  # a span is kept when MIN_LEN <= frames < MAX_LEN
BATCH = 32  # MotionGPT's test batch: items embedded together, padded to the longest crop
_GENERAL_STREAM, _MM_STREAM = 101, 202


@dataclass(frozen=True)
class EvalItem:
    item_id: str  # the clip id, or "<clip id>#<caption line>" for a caption with a time range
    clip_id: str
    start: int  # frames [start, end) of the clip's features
    end: int
    captions: tuple[Caption, ...]

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Draw:
    """One item in one replication: the caption shown and the real crop compared against."""

    item: int  # index into the items
    caption: int  # index into the item's captions
    crop_start: int  # frames, relative to the item's start
    crop_len: int


def motiongpt_items(dataset: HumanML3D, split: str = "test") -> list[EvalItem]:
    """The test items under MotionGPT's rules (module docstring), ordered by length."""
    items: list[EvalItem] = []
    for cid in dataset.split_ids(split):
        try:
            length = int(dataset.load_features(cid).shape[0])
            captions = dataset.load_captions(cid)
        except HumanML3DError:
            continue  # MotionGPT's loader skips a file it cannot read
        if not MIN_LEN <= length < MAX_LEN:
            continue
        for line, cap in enumerate(captions):
            if cap.whole_clip:
                continue
            a = int(cap.start * FPS)
            n = len(range(length)[a : int(cap.end * FPS)])
            if MIN_LEN <= n < MAX_LEN:
                items.append(EvalItem(f"{cid}#{line}", cid, a, a + n, (cap,)))
        whole = tuple(c for c in captions if c.whole_clip)
        if whole:
            items.append(EvalItem(cid, cid, 0, length, whole))
    items.sort(key=lambda it: it.length)  # stable: ties keep file order
    return items


def _draw(rng: np.random.Generator, index: int, item: EvalItem) -> Draw:
    caption = int(rng.integers(len(item.captions)))
    double = int(rng.integers(3)) == 2  # ["single", "single", "double"]
    units = item.length // UNIT - (1 if double else 0)
    crop = units * UNIT
    return Draw(index, caption, int(rng.integers(item.length - crop + 1)), crop)


def general_draws(items: list[EvalItem], replication: int, seed: int) -> list[Draw]:
    """One draw per item (in item order) for this replication."""
    rng = np.random.default_rng([int(seed), int(replication), _GENERAL_STREAM])
    return [_draw(rng, i, it) for i, it in enumerate(items)]


def mm_draws(items: list[EvalItem], replication: int, seed: int, mm_texts: int) -> list[Draw]:
    """The MultiModality items of this replication (drawn without replacement), each with a draw."""
    rng = np.random.default_rng([int(seed), int(replication), _MM_STREAM])
    chosen = rng.choice(len(items), size=min(mm_texts, len(items)), replace=False)
    return [_draw(rng, int(i), items[int(i)]) for i in chosen]


def batches(n: int, size: int = BATCH) -> Iterable[range]:
    """Index ranges of the embedding batches: consecutive items, as the loader's batches."""
    return (range(lo, min(lo + size, n)) for lo in range(0, n, size))


def generation_seed(seed: int, replication: int, kind: str) -> int:
    """The Generate request seed for one replication's general ("general") or MultiModality
    ("mm") motions: every replication samples afresh, as MotionGPT's does."""
    return int(seed) * 1_000_003 + (2 * int(replication) + (kind == "mm")) + 1


def items_to_json(items: list[EvalItem]) -> list[dict]:
    return [
        {"item_id": it.item_id, "clip_id": it.clip_id, "start": it.start, "end": it.end, "captions": [c.to_line() for c in it.captions]}
        for it in items
    ]


def items_from_json(rows: list[dict]) -> list[EvalItem]:
    return [
        EvalItem(
            r["item_id"],
            r["clip_id"],
            int(r["start"]),
            int(r["end"]),
            tuple(Caption.from_line(line, f"item {r['item_id']}") for line in r["captions"]),
        )
        for r in rows
    ]


def store_items(store, dataset_prefix: str, split: str = "test") -> list[EvalItem]:
    """The items of a dataset in the store, computed once from the split's files only and kept
    beside the dataset (its prefix is keyed by its content, so the list never goes stale)."""
    import tempfile
    from pathlib import Path

    from atom.motion.humanml3d import FEATURES_DIR, TEXTS_DIR
    from atom.store import ArtifactNotFound

    key = f"{dataset_prefix.rstrip('/')}/cache/motiongpt-items-{split}.json"
    try:
        return items_from_json(store.get_json(key))
    except ArtifactNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="atom-items-") as tmp:
        root = Path(tmp)
        store.get_file(f"{dataset_prefix}/{split}.txt", root / f"{split}.txt")
        (root / FEATURES_DIR).mkdir()
        (root / TEXTS_DIR).mkdir()
        for cid in (line.strip() for line in (root / f"{split}.txt").read_text().splitlines()):
            if not cid:
                continue
            for sub, ext in ((FEATURES_DIR, ".npy"), (TEXTS_DIR, ".txt")):
                try:
                    store.get_file(f"{dataset_prefix}/{sub}/{cid}{ext}", root / sub / f"{cid}{ext}")
                except ArtifactNotFound:
                    pass  # a listed clip without its files is skipped, as MotionGPT's loader does
        items = motiongpt_items(HumanML3D(root), split)
    store.put_json(key, items_to_json(items))
    return items
