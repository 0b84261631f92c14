"""How good is a generator at events? Motions sampled for random event prompts of each sub-task,
run through the kinematic event detector (atom.motion.detector), scored as
- single: the one requested event is detected;
- integrity: every requested event (2-3) is detected;
- temporal: the 3 requested events are detected in the requested order;
- frequency: the requested event is detected, and with the requested count.

Pure library code over any sampler: `atomctl pretrain --quality` samples through the generator
service's Generate RPC (the controller loads no model), a test or an experiment can pass the
generator's in-process sampling instead. The VQ-VAE's reconstruction error, the other quality
figure of a pretrained model, is measured by the pretraining job itself (Job.figures).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from atom.motion.events import COUNTABLE_EVENTS, EVENT_NAMES, EventLabel

TASKS = ("single", "integrity", "temporal", "frequency")

# (captions, samples per caption, seed) -> per caption, its samples' joints (T, 22, 3), None where
# the model made no motion.
Sampler = Callable[[Sequence[str], int, int], list[list[np.ndarray | None]]]


@dataclass
class TaskScore:
    task: str
    samples: int
    all_events: float  # fraction with every requested event detected
    in_order: float  # ... and in the requested order
    count_exact: float  # ... and every count right
    empty: int  # samples with no motion at all

    @property
    def headline(self) -> float:
        return {"single": self.all_events, "integrity": self.all_events, "temporal": self.in_order, "frequency": self.count_exact}[
            self.task
        ]


@dataclass
class QualityReport:
    tasks: dict[str, TaskScore] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["headline"] = {k: v.headline for k, v in self.tasks.items()}
        return d

    def format(self) -> str:
        lines = [f"{'task':<10} {'samples':>7} {'all events':>10} {'in order':>9} {'counts':>7} {'empty':>6}"]
        for t in self.tasks.values():
            lines.append(f"{t.task:<10} {t.samples:>7} {t.all_events:>10.3f} {t.in_order:>9.3f} {t.count_exact:>7.3f} {t.empty:>6}")
        return "\n".join(lines)


def event_requests(task: str, n: int, rng: np.random.Generator) -> list[list[EventLabel]]:
    """n random label groups of a sub-task's shape."""
    out = []
    for _ in range(n):
        if task == "single":
            out.append([EventLabel(str(rng.choice(EVENT_NAMES)))])
        elif task == "frequency":
            out.append([EventLabel(str(rng.choice(COUNTABLE_EVENTS)), int(rng.integers(2, 4)))])
        else:
            k = 3 if task == "temporal" else int(rng.integers(2, 4))
            out.append([EventLabel(str(e)) for e in rng.choice(EVENT_NAMES, size=k, replace=False)])
    return out


def score(requested: list[EventLabel], detected: list[EventLabel]) -> tuple[bool, bool, bool]:
    """(all requested events present, present in order, counts right) for one motion."""
    names = [d.event for d in detected]
    present = all(r.event in names for r in requested)
    pos, ordered = 0, present
    for r in requested:  # requested names as a subsequence of the detected ones
        try:
            pos = names.index(r.event, pos) + 1
        except ValueError:
            ordered = False
            break
    totals: dict[str, int] = {}
    for d in detected:
        totals[d.event] = totals.get(d.event, 0) + int(d.count)
    counts = present and all(totals.get(r.event, 0) == r.count for r in requested)
    return present, ordered, counts


def event_fidelity(
    sample: Sampler, prompts_per_task: int = 40, samples_per_prompt: int = 2, seed: int = 0, tasks: Sequence[str] = TASKS
) -> QualityReport:
    """Event fidelity per sub-task of the model behind `sample`."""
    from atom.motion.detector import detect_events, summarize
    from atom.motion.world.captions import caption

    rng = np.random.default_rng(seed)
    out = {}
    for n, task in enumerate(tasks):
        groups = event_requests(task, prompts_per_task, rng)
        caps = [caption(g, rng) for g in groups]
        motions = sample(caps, samples_per_prompt, seed + n)
        res, empty = [], 0
        for group, joints_list in zip(groups, motions):
            for joints in joints_list:
                if joints is None or len(joints) < 2:
                    empty += 1
                    res.append((False, False, False))
                    continue
                res.append(score(group, summarize(detect_events(joints))))
        a = np.asarray(res, dtype=np.float64).reshape(-1, 3)
        out[task] = TaskScore(task, len(res), float(a[:, 0].mean()), float(a[:, 1].mean()), float(a[:, 2].mean()), empty)
    return QualityReport(out)
