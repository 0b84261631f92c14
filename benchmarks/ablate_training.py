"""Preference-training ablation: train one LoRA adapter on a run's pairs with given settings, then
compare it with the base model on held-out prompts (kinematic judge) and on FID.

It needs a store in which `atomctl run-pipeline` (or the stages up to `pairs`) has run, so that
the base model, the embedded evaluator, the world's test split and the pairs are there. Base and
tuned model sample with the same seeds, so the per-prompt differences come from the weights.

  python benchmarks/ablate_training.py --store .atom/store --name sum --set average_logprobs=false
  python benchmarks/ablate_training.py --store .atom/store --name mean1 --set average_logprobs=true --set beta=1
  python benchmarks/ablate_training.py --store .atom/store --name rpo --set average_logprobs=false --set rpo_alpha=1
  python benchmarks/ablate_training.py --store .atom/store --name all --set lora.target_modules=q,k,v,o,wi_0,wi_1,wo
  python benchmarks/ablate_training.py --store .atom/store --name x --eval-only --adapter run

Prints, per sub-task, base -> tuned mean judge score and the paired difference with its 95% CI,
and FID (embedded evaluator) on the first --general test captions, base -> tuned, averaged over
--fid-seeds.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from atom.pipeline.manifest import run_output  # noqa: E402
from atom.mgpt.bundle import load_bundle  # noqa: E402
from atom.motion.events import TASKS  # noqa: E402
from atom.pipeline.bootstrap import base_model_prefix, evaluator_prefix, world_prefix  # noqa: E402
from atom.pipeline.config import PipelineConfig  # noqa: E402
from atom.store import open_store  # noqa: E402
from services.evaluator.alignment import paired_difference  # noqa: E402
from services.evaluator.embedded import EmbeddedEvaluator  # noqa: E402
from services.evaluator.metrics import fid  # noqa: E402
from services.evaluator.records import hold_to_min_length  # noqa: E402
from services.generator.adapters import AdapterPool  # noqa: E402
from services.judge.kinematic import KinematicJudge  # noqa: E402
from services.judge.records import read_prompts_jsonl  # noqa: E402
from services.trainer.config import TrainConfig  # noqa: E402
from services.trainer.train import train_preference  # noqa: E402

# The stores' default names, as the embedded pipeline names them.
DEFAULT_BASE = base_model_prefix(PipelineConfig())
DEFAULT_DATASET = world_prefix(PipelineConfig())


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def sample_held_out(pool: AdapterPool, prompts, adapter: str | None, seed: int, samples: int):
    """(prompt, motion) for `samples` motions per prompt; the seeds depend only on the prompt's
    position and the sample index, so base and adapters are sampled with the same dice."""
    texts = [p.text for p in prompts for _ in range(samples)]
    seeds = [seed + samples * k + i for k in range(len(prompts)) for i in range(samples)]
    for k, motion in enumerate(pool.sample(texts, seeds, adapter=adapter)):
        yield prompts[k // samples], motion


def judge_scores(pool: AdapterPool, prompts, adapter: str | None, seed: int, samples: int) -> dict[str, dict[str, float]]:
    """Mean kinematic-judge score per prompt, by task."""
    judge = KinematicJudge()
    scores: dict[str, dict[str, list[float]]] = {}
    for prompt, motion in sample_held_out(pool, prompts, adapter, seed, samples):
        if not len(motion.tokens):
            continue
        j = judge.score_labels(prompt.labels, motion.joints)
        if j.ok:
            scores.setdefault(prompt.task, {}).setdefault(prompt.prompt_id, []).append(float(j.score))
    return {t: {pid: float(np.mean(v)) for pid, v in d.items()} for t, d in scores.items()}


def general_fid(pool: AdapterPool, evaluator: EmbeddedEvaluator, real: np.ndarray, texts: list[str],
                adapter: str | None, seed: int) -> float:
    """FID as the evaluator service computes it: a motion with no frames is left out, a short one
    is held on its last pose (dropping short motions instead flattered the base model, which makes
    the most of them)."""
    motions = pool.sample(texts, [seed + i for i in range(len(texts))], adapter=adapter)
    feats = [hold_to_min_length(m.features)[0] for m in motions if m.features is not None and len(m.features)]
    return fid(real, evaluator.embed_motions(feats))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=".atom/store")
    ap.add_argument("--base", default=DEFAULT_BASE)
    ap.add_argument("--dataset", default=DEFAULT_DATASET)
    ap.add_argument("--evaluator", default="", help="default: the embedded evaluator of --dataset")
    ap.add_argument("--run", default="default", help="the run whose pairs and held-out prompts are used by default")
    ap.add_argument("--pairs", default="", help="default: the run's mixed pairs")
    ap.add_argument("--eval-prompts", default="", help="default: the run's held-out prompts")
    ap.add_argument("--name", required=True, help="the adapter goes to models/ablate-<name>/adapter")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a services.trainer.config.TrainConfig field, e.g. beta=0.05 or lora.r=16 (repeat)")
    ap.add_argument("--eval-only", action="store_true", help="evaluate an existing adapter (--adapter)")
    ap.add_argument("--adapter", default="", help="adapter prefix to evaluate (default models/ablate-<name>/adapter; "
                                                "'run': the run's own adapter)")
    ap.add_argument("--general", type=int, default=400, help="test captions for FID")
    ap.add_argument("--fid-seeds", default="",
                    help="comma-separated sampling seeds; FID is the mean over them (default: --seed + 100000). "
                         "One draw moved a model's FID by up to 15%%; the README's figures use "
                         "101000,7,20000,31337,555555")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=4, help="motions per held-out prompt and model")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    store = open_store(a.store)
    a.pairs = a.pairs or run_output(store, a.run, "pairs", "pairs")
    a.eval_prompts = a.eval_prompts or run_output(store, a.run, "prompts", "eval")
    if a.adapter == "run":
        a.adapter = run_output(store, a.run, "train", "adapter")
    overrides: dict = {}
    for item in a.set:
        key, value = item.split("=", 1)
        if key.startswith("lora."):  # lora.r=16, lora.target_modules=q,k,v,o
            field_name = key.split(".", 1)[1]
            overrides.setdefault("lora", {})[field_name] = (
                value.split(",") if field_name == "target_modules" else parse_value(value))
        else:
            overrides[key] = parse_value(value)
    prefix = f"models/ablate-{a.name}"
    t0 = time.monotonic()
    if not a.eval_only:
        config = TrainConfig(base_model=a.base, pairs_key=a.pairs, output_prefix=prefix, **overrides)
        result = train_preference(load_bundle(store, a.base).lm, store, config)
        final = {k: round(v, 3) for k, v in result.final_metrics.items() if isinstance(v, float)}
        print(f"[{a.name}] {result.steps} steps in {result.seconds:.0f}s, final {json.dumps(final)}", flush=True)

    pool = AdapterPool(load_bundle(store, a.base), store)
    prompts = read_prompts_jsonl(store.get_bytes(a.eval_prompts))
    test_ids = [l.strip() for l in store.get_bytes(f"{a.dataset}/test.txt").decode().splitlines() if l.strip()]
    test_ids = test_ids[: a.general]
    texts = [store.get_bytes(f"{a.dataset}/texts/{c}.txt").decode().splitlines()[0].split("#")[0] for c in test_ids]
    evaluator = EmbeddedEvaluator.load(store, a.evaluator or evaluator_prefix(a.dataset))
    real = evaluator.embed_motions([np.load(io.BytesIO(store.get_bytes(f"{a.dataset}/new_joint_vecs/{c}.npy")))
                                    for c in test_ids])
    fid_seeds = [int(x) for x in a.fid_seeds.split(",") if x.strip()] or [a.seed + 100_000]
    results = {}
    for model, adapter in (("base", None), ("tuned", a.adapter or f"{prefix}/adapter")):
        results[model] = (judge_scores(pool, prompts, adapter, a.seed, a.samples),
                          float(np.mean([general_fid(pool, evaluator, real, texts, adapter, s) for s in fid_seeds])))
    parts = [f"[{a.name}]"]
    for task in TASKS:
        base, tuned = results["base"][0].get(task), results["tuned"][0].get(task)
        if not base or not tuned:
            continue
        d = paired_difference(tuned, base)
        parts.append(f"{task} {np.mean(list(base.values())):.3f}->{np.mean(list(tuned.values())):.3f} "
                     f"d={d.mean:+.3f}±{d.half_width:.3f} (n={d.n})")
    parts.append(f"FID {results['base'][1]:.3f}->{results['tuned'][1]:.3f} "
                 f"({results['tuned'][1] / results['base'][1]:.2f}x, {len(fid_seeds)} seeds; {time.monotonic() - t0:.0f}s)")
    print("  ".join(parts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
