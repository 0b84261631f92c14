"""The evaluator service's side of the embedded text/motion evaluator: loading it (its model is
shared library code, atom/embedded_evaluator.py; the trainer service trains it) and measuring how
well it separates real data, the figures a report shows beside it.

The trainer cannot measure them itself: they are this service's metrics (services/evaluator/report.py),
and no service imports another. So an evaluator trained by the trainer arrives without them, and
this service measures them the first time it evaluates with it, on the dataset of that evaluation.
They are a pure function of the weights, the dataset and the seed, so they come out the same as
when training measured them (an evaluator stored by an older version keeps the ones it has).
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from atom.embedded_evaluator import EmbeddedEvaluator
from atom.settings import EvalSettings

GT_SPLIT, REFERENCE_SPLIT = "test", "val"


def contrast_accuracy(evaluator, real, seed: int = 0) -> dict:
    """Order and count awareness on procedural-world clips (labels required).

    For each clip, its events are captioned twice with the same phrasing draws: once as they
    happened and once altered - two adjacent different events swapped (order), or one
    countable event's count changed (count). A hit when the motion is nearer the true caption;
    chance is 0.5.
    """
    from atom.motion.events import COUNTABLE_EVENTS, EventLabel
    from atom.motion.world.captions import caption

    texts: list[str] = []
    motions: list[np.ndarray] = []
    kinds: list[str] = []
    for n, r in enumerate(real):
        labels = r.tags.get("labels")
        if not labels or not isinstance(labels.get("events"), list):
            continue
        events = [EventLabel(e["event"], int(e.get("count", 1))) for e in labels["events"]]
        rng = np.random.default_rng([seed, n])
        swaps = [i for i in range(len(events) - 1) if events[i].event != events[i + 1].event]
        if swaps:
            i = swaps[int(rng.integers(len(swaps)))]
            altered = events[:i] + [events[i + 1], events[i]] + events[i + 2 :]
            kinds.append("order")
            texts += [caption(events, np.random.default_rng([seed, n, 1])), caption(altered, np.random.default_rng([seed, n, 1]))]
            motions.append(r.features)
        countable = [i for i, e in enumerate(events) if e.event in COUNTABLE_EVENTS]
        if countable:
            i = countable[int(rng.integers(len(countable)))]
            other = [c for c in range(1, 6) if c != events[i].count]
            altered = list(events)
            altered[i] = EventLabel(events[i].event, other[int(rng.integers(len(other)))])
            kinds.append("count")
            texts += [caption(events, np.random.default_rng([seed, n, 2])), caption(altered, np.random.default_rng([seed, n, 2]))]
            motions.append(r.features)
    out = {}
    if kinds:
        t = evaluator.embed_texts(texts).reshape(len(kinds), 2, -1)
        m = evaluator.embed_motions(motions)
        d = np.linalg.norm(t - m[:, None, :], axis=-1)
        hit = d[:, 0] < d[:, 1]
        for kind in ("order", "count"):
            sel = np.array([k == kind for k in kinds])
            out[kind] = {"pairs": int(sel.sum()), "accuracy": float(hit[sel].mean()) if sel.any() else None}
    return out


_measured: dict[str, dict] = {}  # evaluator weights + dataset -> its ground-truth figures
_measured_lock = threading.Lock()


def ground_truth_summary(ev: EmbeddedEvaluator, dataset_root, replications: int = EvalSettings().replications) -> dict:
    """The ground-truth figures of an embedded evaluator on `dataset_root`: R@k, MM-Dist and
    Diversity of the test split's real clips against their own captions, FID against the val split
    (when there is one), and order and count awareness."""
    from services.evaluator.report import ground_truth_metrics
    from services.evaluator.subsets import build_subsets

    test = build_subsets(dataset_root, GT_SPLIT)["general"]
    try:
        ref = build_subsets(dataset_root, REFERENCE_SPLIT)["general"]
    except (ValueError, FileNotFoundError):
        ref = None
    gt = ground_truth_metrics(ev, test, ref, replications=replications, seed=ev.config.seed)
    return {
        "split": GT_SPLIT,
        "reference_split": REFERENCE_SPLIT if ref else None,
        "clips": len(test),
        "replications": replications,
        **{k: v.to_dict() for k, v in gt.items()},
        **contrast_accuracy(ev, test, ev.config.seed),
    }


def with_ground_truth(ev: EmbeddedEvaluator, dataset_root, dataset_id: str) -> EmbeddedEvaluator:
    """`ev` with summary['gt'] filled in, measured once per (weights, dataset) in this process."""
    if "gt" in ev.summary:
        return ev
    weights, _ = ev.to_artifacts()
    key = hashlib.sha256(weights + b"|" + dataset_id.encode()).hexdigest()
    with _measured_lock:  # two evaluations at once measure it once
        if key not in _measured:
            _measured[key] = ground_truth_summary(ev, dataset_root)
        ev.summary["gt"] = _measured[key]
    return ev
