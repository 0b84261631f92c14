"""Time a full evaluation of the embedded setup (procedural world + embedded evaluator).

Builds a world corpus, trains the embedded evaluator (printing its ground-truth figures), then
evaluates two stand-in models on the test split's task subsets with 20 replications. The
stand-in models are the real test motions with Gaussian feature noise (base: more noise, tuned:
less) and synthetic judge scores: what is timed is the evaluation, not a generator.

Figures printed: corpus and training time; evaluation time with 1 and with N replications in the
same run (their ratio is the marginal cost of replications, the rest being embedding); embedding
throughput.

    PYTHONPATH=. .venv/bin/python benchmarks/evaluate.py [--clips 2000] [--data DIR] [--store DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from atom.settings import EvalSettings

EVALUATOR_PREFIX = "evaluators/embedded-benchmark"


def stand_in_models(subsets, std, gens: int, seed: int):
    """Each generation is the prompt's real motion with feature noise, or - with a model's
    error rate - another clip's motion (wrong content); base errs more than tuned."""
    from services.evaluator.records import ModelSample

    rng = np.random.default_rng(seed)
    pool = subsets["general"]
    models: dict[str, list[ModelSample]] = {"base": [], "tuned": []}
    for task, clips in subsets.items():
        for clip in clips:
            pid = f"{task}/{clip.clip_id}"
            for _ in range(gens):
                for name, error_rate, noise in (("base", 0.4, 1.0), ("tuned", 0.15, 0.5)):
                    wrong = rng.random() < error_rate
                    src = pool[int(rng.integers(len(pool)))].features if wrong else clip.features
                    f = src + noise * std * rng.normal(size=src.shape).astype(np.float32)
                    score = float(rng.integers(0, 3) if wrong else rng.integers(3, 6))
                    models[name].append(ModelSample(clip.texts[0], task, pid, features=f, score=score))
    return models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2000, help="world corpus size (80/10/10 split)")
    ap.add_argument("--data", type=Path, help="use an existing HumanML3D-layout directory instead")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replications", type=int, default=EvalSettings().replications)
    ap.add_argument("--gens", type=int, default=6, help="stand-in generations per prompt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--store", type=Path, help="local store caching the trained evaluator (reused when present)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from atom.motion.humanml3d import HumanML3D
    from atom.store import LocalStore
    from atom.embedded_evaluator import EmbeddedConfig, EmbeddedEvaluator
    from services.evaluator.embedded import ground_truth_summary
    from services.trainer.evaluator_training import train_embedded_evaluator
    from services.evaluator.report import evaluate
    from services.evaluator.stats import ConfidenceInterval
    from services.evaluator.subsets import build_subsets, subset_sizes

    tmp = tempfile.TemporaryDirectory()
    root = args.data
    if root is None:
        from atom.motion.world.corpus import build_corpus

        root = Path(tmp.name) / "world"
        t = time.perf_counter()
        build_corpus(root, args.clips, args.seed, workers=args.threads)
        print(f"corpus: {args.clips} clips in {time.perf_counter() - t:.1f} s")

    store = LocalStore(args.store) if args.store else None
    if store is not None and store.exists(f"{EVALUATOR_PREFIX}/evaluator.json"):
        ev = EmbeddedEvaluator.load(store, EVALUATOR_PREFIX)
        print(f"embedded evaluator: loaded from {args.store}")
    else:
        t = time.perf_counter()
        ev = train_embedded_evaluator(root, EmbeddedConfig(seed=args.seed, num_threads=args.threads))
        print(
            f"embedded evaluator: trained in {time.perf_counter() - t:.1f} s "
            f"({ev.summary['steps']} steps, final loss {ev.summary['final_loss']:.3f})"
        )
        if store is not None:
            ev.save(store, EVALUATOR_PREFIX)
    # The evaluator service measures these on first use; measured here the same way.
    gt = ev.summary.get("gt") or ground_truth_summary(ev, root)
    ci = {k: ConfidenceInterval.from_dict(gt[k]) for k in ("r1", "r2", "r3", "mm_dist", "diversity", "fid")}
    print(
        f"  GT on {gt['split']} ({gt['clips']} clips, {gt['replications']} replications): "
        + ", ".join(f"{k} {ci[k].format()}" for k in ("r1", "r2", "r3", "mm_dist", "diversity"))
        + f"; FID vs {gt['reference_split']} {ci['fid'].mean:.3f}"
    )
    for k in ("order", "count"):
        if k in gt:
            print(f"  {k} contrast: {gt[k]['accuracy']:.3f} over {gt[k]['pairs']} pairs (chance 0.5)")

    ds = HumanML3D(root)
    real = build_subsets(ds, "test")
    reference = build_subsets(ds, "val")
    print(f"test subsets: {subset_sizes(real)}")
    models = stand_in_models(real, ds.mean_std().std, args.gens, args.seed)
    n_motions = sum(len(v) for v in models.values())

    t = time.perf_counter()
    evaluate(models, real, ev, replications=1, seed=args.seed, reference=reference)
    t1 = time.perf_counter() - t
    t = time.perf_counter()
    report = evaluate(models, real, ev, replications=args.replications, seed=args.seed, reference=reference)
    tn = time.perf_counter() - t
    t = time.perf_counter()
    ev.embed_motions([s.features for s in models["base"]])
    te = time.perf_counter() - t
    print(f"evaluate: 2 models x {n_motions // 2} motions, {len(report.tasks)} tasks")
    print(f"  1 replication: {t1:.1f} s;  {args.replications} replications: {tn:.1f} s;  ratio {tn / t1:.2f}")
    print(f"  embedding: {len(models['base']) / te:.0f} motions/s ({2 * te:.1f} s of the total)")
    print()
    print(report.to_markdown())


if __name__ == "__main__":
    main()
