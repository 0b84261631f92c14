"""A small finished run written into a store in the formats the pipeline writes (manifest, prompts,
evaluation samples, judgement records, report, pairs, training summary), with real motions from
the procedural world: what the run browser reads, without running the pipeline."""

from __future__ import annotations

import numpy as np

from atom.motion.events import EventLabel
from atom.motion.record import MotionRecord
from atom.motion.world.compose import compose
from atom.pipeline.manifest import Manifest

TASK_EVENTS = {
    "integrity": [["walk_forward", "wave"], ["squat", "kick"]],
    "temporal": [["jump_in_place", "bow"], ["turn_left", "clap"]],
    "frequency": [["squat"], ["wave"]],
}
SAMPLES = 3


def _motion(store, events, seed):
    joints = compose([EventLabel(e) for e in events], np.random.default_rng(seed)).joints
    return store.put_content_addressed("motions", MotionRecord(joints=joints).to_bytes(), ".npz").key


def write_run(store, run="demo", prompts_per_task=4) -> dict:
    """Returns what the test needs to check the pages: the expected outcome per prompt."""
    prompts, rows, expected = [], {"base": [], "atom": []}, {}
    seed = 0
    for task, options in TASK_EVENTS.items():
        for i in range(prompts_per_task):
            events = options[i % len(options)]
            pid = f"{task[:3]}{i}"
            text = f"A person does {' then '.join(e.replace('_', ' ') for e in events)} ({task} {i})."
            prompts.append(
                {
                    "prompt_id": pid,
                    "task": task,
                    "text": text,
                    "labels": {"task": task, "events": [{"event": e, "count": 1} for e in events]},
                }
            )
            # Tuned better on even prompts, worse on every third, the same otherwise.
            base_scores = [1.0] * SAMPLES
            tuned = 2.0 if i % 2 == 0 else (0.0 if i % 3 == 0 else 1.0)
            expected[pid] = "better" if tuned > 1.0 else ("worse" if tuned < 1.0 else "same")
            for model, scores in (("base", base_scores), ("atom", [tuned] * SAMPLES)):
                for s in range(SAMPLES):
                    seed += 1
                    key = _motion(store, events, seed)
                    record = f"judgements/{model}-{pid}-{s}.json"
                    store.put_json(
                        record,
                        {
                            "judge_id": "kinematic-v1",
                            "score": scores[s],
                            "rationale": f"{model} sample {s} of {pid}",
                            "detected": [{"event": events[0], "count": 1}],
                        },
                    )
                    rows[model].append(
                        {
                            "kind": "judge",
                            "prompt_id": pid,
                            "task": task,
                            "text": text,
                            "motion": key,
                            "sample_index": s,
                            "score": scores[s],
                            "judgement": record,
                        }
                    )
    prefix = "stages/evaluate/k1"
    store.put_jsonl("stages/prompts/k0/eval-prompts.jsonl", prompts)
    for model, model_rows in rows.items():
        store.put_jsonl(f"{prefix}/eval-samples-{model}.jsonl", model_rows)
    stat = lambda m, c=0.05: {"mean": m, "ci95": c, "n": prompts_per_task}  # noqa: E731
    report = {
        "models": ["base", "atom"],
        "judge": [{"task": t, "model": m, "score": stat(1.0 if m == "base" else 1.2)} for t in TASK_EVENTS for m in ("base", "atom")],
        "comparisons": [
            {
                "task": t,
                "model": "atom",
                "baseline": "base",
                "win": sum(expected[p["prompt_id"]] == "better" for p in prompts if p["task"] == t),
                "tie": sum(expected[p["prompt_id"]] == "same" for p in prompts if p["task"] == t),
                "lose": sum(expected[p["prompt_id"]] == "worse" for p in prompts if p["task"] == t),
                "difference": stat(0.2),
                "improved": True,
            }
            for t in TASK_EVENTS
        ],
        "rows": [{"task": "general", "model": m, "metrics": {"fid": stat(0.5), "r1": stat(0.3)}} for m in ("real", "base", "atom")],
    }
    store.put_json(f"{prefix}/report.json", report)
    pairs = [
        {
            "task": p["task"],
            "prompt": p["text"],
            "prompt_id": p["prompt_id"],
            "chosen_key": rows["atom"][k * SAMPLES]["motion"],
            "rejected_key": rows["base"][k * SAMPLES]["motion"],
            "chosen_score": 2.0,
            "rejected_score": 1.0,
        }
        for k, p in enumerate(prompts)
    ]
    store.put_jsonl("stages/pairs/k2/pairs-mixed.jsonl", pairs)
    history = [
        {
            "step": s,
            "loss": 0.7 / s,
            "margin": 0.1 * s,
            "chosen_reward": 0.05 * s,
            "rejected_reward": -0.05 * s,
            "accuracy": min(1.0, 0.1 * s),
        }
        for s in range(1, 21)
    ]
    store.put_json(
        "stages/train/k3/train_summary.json",
        {"history": history, "config": {"loss": "kto", "beta": 1.0, "lr": 0.001, "batch_size": 32, "epochs": 8, "lora": {"r": 8}}},
    )
    # The judge stage's rows for the training motions: three votes each; per task one unscored
    # motion, one split vote (2 of 3) and the rest unanimous.
    judged = []
    for task in TASK_EVENTS:
        judged.append({"task": task, "ok": False, "score": None, "votes": []})
        judged.append({"task": task, "ok": True, "score": 1.0, "agreement": 2 / 3, "votes": [1.0, 1.0, 2.0]})
        judged += [{"task": task, "ok": True, "score": 2.0, "agreement": 1.0, "votes": [2.0] * 3}] * 2
    store.put_jsonl("stages/judge/k1/judgements.jsonl", judged)
    m = Manifest.load(store, run, {"seed": 0})
    outputs = {
        "prompts": {"eval": "stages/prompts/k0/eval-prompts.jsonl"},
        "judge": {"judgements": "stages/judge/k1/judgements.jsonl"},
        "pairs": {
            "pairs": "stages/pairs/k2/pairs-mixed.jsonl",
            "pairs_per_task": {t: sum(p["task"] == t for p in pairs) for t in TASK_EVENTS},
            "motions_dropped_low_agreement": {"temporal": 1},
        },
        "train": {"adapter": "stages/train/k3/adapter"},
        "evaluate": {"report_json": f"{prefix}/report.json", "plots": [], "made_under": prefix},
    }
    for stage, out in outputs.items():
        m.start(stage, "k", {}, ["test"])
        m.finish(stage, out)
    return {"expected": expected, "prompts": prompts, "pairs": len(pairs), "history": len(history)}
