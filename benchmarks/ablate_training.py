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
and FID (embedded evaluator) on the first --general test captions, base -> tuned.

The evaluation is the pipeline's, in process: the motions are sampled with the seeds the
generator service derives for a request (services.generator.sampling.derive_seed), with the
evaluate stage's seed offsets (atom.pipeline.stages) from --seed as the run seed; the metrics are
services.evaluator.report.evaluate's against the evaluator service's real test subsets, so a
figure here and one in a run's report mean the same thing. Training takes a
services.trainer.config.TrainConfig, its defaults those of atom.settings.TrainSettings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from atom.pipeline.manifest import run_output  # noqa: E402
from atom.mgpt.bundle import load_bundle  # noqa: E402
from atom.motion.events import TASKS  # noqa: E402
from atom.pipeline.bootstrap import base_model_prefix, evaluator_prefix, world_prefix  # noqa: E402
from atom.pipeline.config import PipelineConfig, parse_value  # noqa: E402
from atom.pipeline.stages import (
    EVAL_GENERAL_SEED_OFFSET,
    EVAL_PROMPTS_SEED_OFFSET,  # noqa: E402
    general_captions,
)
from atom.settings import EvalSettings  # noqa: E402
from atom.store import open_store  # noqa: E402
from atom.store.localcache import local_tree  # noqa: E402
from atom.embedded_evaluator import EmbeddedEvaluator  # noqa: E402
from services.evaluator.records import GENERAL, ModelSample, hold_to_min_length  # noqa: E402
from services.evaluator.report import evaluate  # noqa: E402
from services.evaluator.subsets import build_subsets  # noqa: E402
from services.generator.adapters import AdapterPool  # noqa: E402
from services.generator.sampling import derive_seed  # noqa: E402
from services.judge.kinematic import KinematicJudge  # noqa: E402
from services.judge.records import read_prompts_jsonl  # noqa: E402
from services.trainer.config import TrainConfig  # noqa: E402
from services.trainer.train import train_preference  # noqa: E402

# The stores' default names, as the embedded pipeline names them.
DEFAULT_BASE = base_model_prefix(PipelineConfig())
DEFAULT_DATASET = world_prefix(PipelineConfig())


def train_config(sets: list[str], **fields) -> TrainConfig:
    """`--set FIELD=VALUE` items (values typed as the pipeline's --set types them; lora.FIELD for
    the LoRA settings, lora.target_modules comma-separated) on top of `fields`, checked by
    TrainConfig.from_dict (an unknown or invalid field is named)."""
    d: dict = dict(fields)
    for item in sets:
        key, _, value = item.partition("=")
        if key.startswith("lora."):  # lora.r=16, lora.target_modules=q,k,v,o
            name = key.split(".", 1)[1]
            d.setdefault("lora", {})[name] = value.split(",") if name == "target_modules" else parse_value(value)
        else:
            d[key] = parse_value(value)
    return TrainConfig.from_dict(d)


def sample(pool: AdapterPool, prompts, adapter: str | None, request_seed: int, samples: int, decoding: str | None = None):
    """(prompt, motion) for `samples` motions per prompt, seeded as the generator service seeds a
    Generate request with `request_seed`: base and adapters are sampled with the same dice."""
    texts = [p.text for p in prompts for _ in range(samples)]
    seeds = [derive_seed(request_seed, p.text, i) for p in prompts for i in range(samples)]
    for k, motion in enumerate(pool.sample(texts, seeds, adapter=adapter, decoding=decoding)):
        yield prompts[k // samples], motion


def sample_held_out(pool: AdapterPool, prompts, adapter: str | None, seed: int, samples: int, decoding: str | None = None):
    """The held-out prompts' motions the evaluate stage of a run with seed `seed` asks for."""
    return sample(pool, prompts, adapter, seed + EVAL_PROMPTS_SEED_OFFSET, samples, decoding)


def model_samples(
    pool: AdapterPool, prompts, captions, adapter: str | None, seed: int, samples: int, fid_seeds: list[int], decoding: str | None = None
) -> list[ModelSample]:
    """One model's evaluation samples, as the evaluator service reads them from a run: held-out
    prompts' motions with their kinematic-judge scores, and the test captions' motions (one per
    FID seed, else the evaluate stage's general_samples); a motion with no frames is left out, a
    short one held on its last pose (services.evaluator.records.hold_to_min_length)."""
    judge = KinematicJudge()
    out = []
    for prompt, motion in sample_held_out(pool, prompts, adapter, seed, samples, decoding):
        if not motion.valid or motion.num_frames < 2:
            continue  # the generator stores no motion for it; nothing is judged or evaluated
        j = judge.score_labels(prompt.labels, motion.joints)
        out.append(
            ModelSample(
                prompt.text,
                prompt.task,
                prompt.prompt_id,
                hold_to_min_length(motion.features)[0],
                score=float(j.score) if j.ok and j.score is not None else None,
                kind="judge",
            )
        )
    draws = [(s, 1) for s in fid_seeds] if fid_seeds else [(seed + EVAL_GENERAL_SEED_OFFSET, EvalSettings().general_samples)]
    for request_seed, n in draws:
        for caption, motion in sample(pool, captions, adapter, request_seed, n, decoding):
            if motion.valid and motion.num_frames >= 2:
                out.append(ModelSample(caption.text, GENERAL, caption.prompt_id, hold_to_min_length(motion.features)[0], kind=GENERAL))
    return out


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
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a services.trainer.config.TrainConfig field, e.g. beta=0.05 or lora.r=16 (repeat)",
    )
    ap.add_argument("--eval-only", action="store_true", help="evaluate an existing adapter (--adapter)")
    ap.add_argument(
        "--adapter", default="", help="adapter prefix to evaluate (default models/ablate-<name>/adapter; 'run': the run's own adapter)"
    )
    ap.add_argument("--general", type=int, default=400, help="test captions for FID")
    ap.add_argument(
        "--fid-seeds",
        default="",
        help="comma-separated Generate request seeds for the test captions, one motion per caption "
        "each; every replication of the evaluation picks one per caption, FID is their mean "
        f"(default: the evaluate stage's, --seed + {EVAL_GENERAL_SEED_OFFSET} with "
        f"{EvalSettings().general_samples} motions per caption). One draw moved a model's FID by up "
        "to 15%%; the README's figures use 101000,7,20000,31337,555555",
    )
    ap.add_argument(
        "--seed", type=int, default=1000, help="the run seed the evaluate stage's sampling seeds derive from (a run's own: its seed)"
    )
    ap.add_argument("--samples", type=int, default=4, help="motions per held-out prompt and model")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    store = open_store(a.store)
    a.pairs = a.pairs or run_output(store, a.run, "pairs", "pairs")
    a.eval_prompts = a.eval_prompts or run_output(store, a.run, "prompts", "eval")
    if a.adapter == "run":
        a.adapter = run_output(store, a.run, "train", "adapter")
    prefix = f"models/ablate-{a.name}"
    t0 = time.monotonic()
    if not a.eval_only:
        config = train_config(a.set, base_model=a.base, pairs_key=a.pairs, output_prefix=prefix)
        result = train_preference(load_bundle(store, a.base).lm, store, config)
        final = {k: round(v, 3) for k, v in result.final_metrics.items() if isinstance(v, float)}
        print(f"[{a.name}] {result.steps} steps in {result.seconds:.0f}s, final {json.dumps(final)}", flush=True)

    bundle = load_bundle(store, a.base)
    decoding = bundle.info.get("decoding") or None  # the model's own, as the generator service samples it
    pool = AdapterPool(bundle, store)
    prompts = read_prompts_jsonl(store.get_bytes(a.eval_prompts))
    captions = general_captions(store, a.dataset, a.general)
    evaluator = EmbeddedEvaluator.load(store, a.evaluator or evaluator_prefix(a.dataset))
    real = build_subsets(local_tree(store, a.dataset), "test")  # what the evaluator service compares with
    fid_seeds = [int(x) for x in a.fid_seeds.split(",") if x.strip()]
    models = {
        model: model_samples(pool, prompts, captions, adapter, a.seed, a.samples, fid_seeds, decoding)
        for model, adapter in (("base", None), ("tuned", a.adapter or f"{prefix}/adapter"))
    }
    report = evaluate(models, real, evaluator, seed=a.seed)
    judged = {(j.task, j.model): j.score for j in report.judge}
    fid = {m: report.row(GENERAL, m).metrics["fid"].mean for m in models}
    draws = len(fid_seeds) or EvalSettings().general_samples
    parts = [f"[{a.name}]"]
    for task in TASKS:
        base, tuned = judged.get((task, "base")), judged.get((task, "tuned"))
        if base is None or tuned is None:
            continue
        d = report.comparison(task, "tuned").difference
        parts.append(f"{task} {base.mean:.3f}->{tuned.mean:.3f} d={d.mean:+.3f}±{d.half_width:.3f} (n={d.n})")
    parts.append(
        f"FID {fid['base']:.3f}->{fid['tuned']:.3f} ({fid['tuned'] / fid['base']:.2f}x, {draws} seeds; {time.monotonic() - t0:.0f}s)"
    )
    print("  ".join(parts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
