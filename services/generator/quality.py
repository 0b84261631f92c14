"""How good is a generator? Two figures, both measurable on the procedural world:

1. VQ-VAE reconstruction: MPJPE (mm) between the joints of held-out clips and the joints of their
   encode -> decode round trip (global, and root-relative so root drift does not dominate).
2. Event fidelity: motions sampled for held-out event prompts of each sub-task, run through the
   kinematic event detector (atom.motion.detector), scored as
   - single: the one requested event is detected;
   - integrity: every requested event (2-3) is detected;
   - temporal: the 3 requested events are detected in the requested order;
   - frequency: the requested event is detected, and with the requested count.

Run: python -m services.generator.quality --store DIR --model models/base-world --data WORLD_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from atom.mgpt.bundle import ModelBundle
from atom.motion.events import COUNTABLE_EVENTS, EVENT_NAMES, EventLabel
from services.generator.sampling import sample_motions

TASKS = ("single", "integrity", "temporal", "frequency")


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
        return {"single": self.all_events, "integrity": self.all_events, "temporal": self.in_order,
                "frequency": self.count_exact}[self.task]


@dataclass
class QualityReport:
    vq_mpjpe_mm: float | None
    vq_mpjpe_rootrel_mm: float | None
    vq_clips: int
    tasks: dict[str, TaskScore] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["headline"] = {k: v.headline for k, v in self.tasks.items()}
        return d

    def format(self) -> str:
        lines = []
        if self.vq_mpjpe_mm is not None:
            lines.append(f"VQ reconstruction on {self.vq_clips} held-out clips: MPJPE {self.vq_mpjpe_mm:.1f} mm "
                         f"(root-relative {self.vq_mpjpe_rootrel_mm:.1f} mm)")
        lines.append(f"{'task':<10} {'samples':>7} {'all events':>10} {'in order':>9} {'counts':>7} {'empty':>6}")
        for t in self.tasks.values():
            lines.append(f"{t.task:<10} {t.samples:>7} {t.all_events:>10.3f} {t.in_order:>9.3f} "
                         f"{t.count_exact:>7.3f} {t.empty:>6}")
        return "\n".join(lines)


@torch.no_grad()
def vq_reconstruction(bundle: ModelBundle, features: list[np.ndarray]) -> tuple[float, float]:
    """features: un-normalised (N, 263) clips -> (MPJPE mm, root-relative MPJPE mm), mean over clips."""
    from atom.motion.features import features_to_joints

    k = bundle.vqvae.config.frames_per_token
    errs = []
    for f in features:
        n = len(f) // k * k
        if n < k:
            continue
        f = np.asarray(f[:n], np.float32)
        x = torch.from_numpy(bundle.normalize(f))[None].to(next(bundle.vqvae.parameters()).device)
        rec = bundle.denormalize(bundle.vqvae.decode(bundle.vqvae.encode(x))[0].cpu().numpy())
        j0, j1 = features_to_joints(f), features_to_joints(rec)
        glob = np.linalg.norm(j0 - j1, axis=-1).mean()
        rel = np.linalg.norm((j0 - j0[:, :1]) - (j1 - j1[:, :1]), axis=-1).mean()
        errs.append((glob, rel))
    if not errs:
        raise ValueError("no clip long enough to reconstruct")
    g, r = np.mean(errs, axis=0) * 1000.0
    return float(g), float(r)


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


def event_fidelity(bundle: ModelBundle, prompts_per_task: int = 40, samples_per_prompt: int = 2, seed: int = 0,
                   model=None, batch_size: int = 32, tasks=TASKS) -> dict[str, TaskScore]:
    from atom.motion.detector import detect_events, summarize
    from atom.motion.world.captions import caption

    rng = np.random.default_rng(seed)
    out = {}
    for task in tasks:
        groups = event_requests(task, prompts_per_task, rng)
        caps = [caption(g, rng) for g in groups]
        prompts = [c for c in caps for _ in range(samples_per_prompt)]
        req = [g for g in groups for _ in range(samples_per_prompt)]
        seeds = [int(rng.integers(2**62)) for _ in prompts]
        motions = sample_motions(bundle, prompts, seeds, batch_size=batch_size, model=model)
        res, empty = [], 0
        for m, r in zip(motions, req):
            if not m.valid or m.num_frames < 2:
                empty += 1
                res.append((False, False, False))
                continue
            res.append(score(r, summarize(detect_events(m.joints))))
        a = np.asarray(res, dtype=np.float64)
        out[task] = TaskScore(task, len(res), float(a[:, 0].mean()), float(a[:, 1].mean()), float(a[:, 2].mean()), empty)
    return out


def measure_quality(bundle: ModelBundle, dataset_root=None, split: str = "test", max_clips: int = 100,
                    prompts_per_task: int = 40, samples_per_prompt: int = 2, seed: int = 0, model=None,
                    tasks=TASKS) -> QualityReport:
    """VQ reconstruction on up to `max_clips` clips of `split` (skipped without a dataset) and the
    event fidelity per sub-task."""
    mpjpe = rel = None
    n = 0
    if dataset_root is not None:
        from atom.motion.humanml3d import HumanML3D

        data = HumanML3D(dataset_root)
        feats = [data.load_features(cid) for cid in data.split_ids(split)[:max_clips]]
        mpjpe, rel = vq_reconstruction(bundle, feats)
        n = len(feats)
    tasks_scores = event_fidelity(bundle, prompts_per_task, samples_per_prompt, seed, model, tasks=tasks)
    return QualityReport(mpjpe, rel, n, tasks_scores)


def main(argv=None) -> int:
    from atom.mgpt.bundle import load_bundle
    from atom.store import open_store

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="artifact store URL or directory")
    ap.add_argument("--model", default="models/base-world", help="bundle prefix in the store")
    ap.add_argument("--data", default=None, help="HumanML3D-layout directory for the VQ reconstruction")
    ap.add_argument("--prompts", type=int, default=40, help="prompts per sub-task")
    ap.add_argument("--samples", type=int, default=2, help="samples per prompt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    bundle = load_bundle(open_store(a.store), a.model)
    rep = measure_quality(bundle, a.data, prompts_per_task=a.prompts, samples_per_prompt=a.samples, seed=a.seed)
    print(json.dumps(rep.to_dict(), indent=1) if a.json else rep.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
