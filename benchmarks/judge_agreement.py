"""How well does the kinematic judge agree with ground truth on procedural world clips?

For each composed prompt, world clips perform the prompt's events and deliberate variations of
them (one missing, wrong order, wrong count, ...); the rules applied to what a clip really
performs give the true score. The judge sees only the joints. Printed per task: agreement with
the truth, accuracy per variation, and a random judge (uniform over the task's scores, seeded)
as the baseline measured in the same run.

    PYTHONPATH=. .venv/bin/python benchmarks/judge_agreement.py --per-task 20 --seed 0
"""

from __future__ import annotations

import argparse
import random
import time

from atom.agreement import agreement
from services.judge.compose import compose_prompts
from services.judge.kinematic import KinematicJudge, ground_truth_agreement, ground_truth_cases
from services.judge.rules import ALLOWED_SCORES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-task", type=int, default=20, help="prompts per sub-task (each gives 4-5 clips)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    prompts = compose_prompts(list(ALLOWED_SCORES), args.per_task, seed=args.seed)
    cases = ground_truth_cases(prompts, seed=args.seed)
    t1 = time.perf_counter()
    judge = KinematicJudge()
    results = ground_truth_agreement(cases, judge)
    t2 = time.perf_counter()
    print(
        f"{len(prompts)} prompts -> {len(cases)} world clips (composed in {t1 - t0:.1f}s); "
        f"judged in {t2 - t1:.1f}s ({1000 * (t2 - t1) / max(len(cases), 1):.1f} ms per clip)\n"
    )

    rng = random.Random(args.seed)
    for task, r in results.items():
        rand = [rng.choice(ALLOWED_SCORES[task]) for _ in r.truth]
        base = agreement(rand, r.truth, labels=ALLOWED_SCORES[task], names=("random", "truth"))
        print(f"== {task}: {judge.judge_id} vs truth ==")
        print(r.report.render())
        ratio = r.report.exact / base.exact if base.exact else float("inf")
        print(f"  random-judge baseline: exact {base.exact:.3f}  -> kinematic / random = {ratio:.2f}x")
        print("  per variation (judge == truth / clips):")
        for variant, (hit, total) in r.per_variant.items():
            print(f"    {variant:<15} {hit:>3}/{total:<3} {hit / total:.2f}")
        print()


if __name__ == "__main__":
    main()
