"""Frequency diagnosis: per requested repetition count, what the base model and adapters produce.

For the frequency prompts of a run (held-out by default), samples each model with the same seeds
and prints, per requested count, mean motion tokens, mean judge score and how often the detected
count of the named event is right, too low or too high. Then the ceiling the motion tokenizer
allows: the same count check on the world's test clips before and after a VQ round trip.

  python benchmarks/frequency_counts.py --store .atom/store --adapter run
  python benchmarks/frequency_counts.py --store .atom/store --prompts train

It needs a store in which `atomctl run-pipeline` has run (base model, world, prompts).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from atom.pipeline.manifest import run_output  # noqa: E402
from atom.mgpt.bundle import ModelBundle, load_bundle  # noqa: E402
from atom.motion.events import LabelGroup  # noqa: E402
from atom.motion.features import features_to_joints  # noqa: E402
from atom.store import open_store  # noqa: E402
from benchmarks.ablate_training import DEFAULT_BASE, DEFAULT_DATASET, sample_held_out  # noqa: E402
from services.generator.adapters import AdapterPool  # noqa: E402
from services.judge.kinematic import KinematicJudge  # noqa: E402
from services.judge.records import read_prompts_jsonl  # noqa: E402


def detected_count(judge: KinematicJudge, labels: LabelGroup, joints: np.ndarray) -> tuple[int, float]:
    """(how many times the judge saw the prompt's event, its score)."""
    j = judge.score_labels(labels, joints)
    want = labels.events[0].event
    return sum(d["count"] for d in j.extra.get("detected", []) if d["event"] == want), float(j.score or 0)


def count_line(count: int, detected: list[int], extra: str = "") -> str:
    got = np.array(detected)
    return (
        f"count {count}: n={len(got)}{extra} right {np.mean(got == count):.2f} "
        f"fewer {np.mean(got < count):.2f} more {np.mean(got > count):.2f}"
    )


def model_counts(pool: AdapterPool, prompts, adapter: str | None, samples: int, seed: int) -> str:
    judge = KinematicJudge()
    rows: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for prompt, motion in sample_held_out(pool, prompts, adapter, seed, samples):
        got, score = detected_count(judge, prompt.labels, motion.joints)
        row = rows[prompt.labels.events[0].count]
        row["tokens"].append(len(motion.tokens))
        row["score"].append(score)
        row["detected"].append(got)
    return " | ".join(
        count_line(c, r["detected"], f" tokens {np.mean(r['tokens']):.1f} score {np.mean(r['score']):.2f}") for c, r in sorted(rows.items())
    )


def tokenizer_ceiling(store, bundle: ModelBundle, dataset: str) -> tuple[str, str, str]:
    """Count check on the world's single-event test clips: raw joints, after encode->decode, and
    per event how often the round trip keeps a count of two or more."""
    judge = KinematicJudge()
    k = bundle.vqvae.config.frames_per_token
    raw: dict[int, list[int]] = defaultdict(list)
    rec: dict[int, list[int]] = defaultdict(list)
    repeated: dict[str, list[bool]] = defaultdict(list)
    for clip in store.get_bytes(f"{dataset}/test.txt").decode().split():
        meta = store.get_json(f"{dataset}/labels/{clip}.json")
        if meta.get("kind") == "sequence" or len(meta["events"]) != 1:
            continue
        labels = LabelGroup.from_dict({"task": "frequency", "events": meta["events"]})
        feats = np.load(io.BytesIO(store.get_bytes(f"{dataset}/new_joint_vecs/{clip}.npy")))
        feats = feats[: len(feats) // k * k]
        with torch.no_grad():
            codes = bundle.vqvae.encode(torch.from_numpy(bundle.normalize(feats))[None].float())
            back = bundle.denormalize(bundle.vqvae.decode(codes)[0].numpy())
        count = labels.events[0].count
        raw[count].append(detected_count(judge, labels, features_to_joints(feats))[0])
        kept = detected_count(judge, labels, features_to_joints(back))[0]
        rec[count].append(kept)
        if count >= 2:
            repeated[labels.events[0].event].append(kept == count)
    return (
        " | ".join(count_line(c, v) for c, v in sorted(raw.items())),
        " | ".join(count_line(c, v) for c, v in sorted(rec.items())),
        " ".join(f"{e} {np.mean(v):.2f} (n={len(v)})" for e, v in sorted(repeated.items())),
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=".atom/store")
    ap.add_argument("--base", default=DEFAULT_BASE)
    ap.add_argument("--dataset", default=DEFAULT_DATASET)
    ap.add_argument("--run", default="default", help="the run whose prompts and adapter 'run' / 'eval' / 'train' name")
    ap.add_argument("--prompts", default="eval", help="a prompts key, or 'eval' / 'train': the run's held-out / training prompts")
    ap.add_argument("--adapter", action="append", default=[], help="adapter prefix to compare, or 'run' (repeat)")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    store = open_store(a.store)
    if a.prompts in ("eval", "train"):
        a.prompts = run_output(store, a.run, "prompts", a.prompts)
    a.adapter = [run_output(store, a.run, "train", "adapter") if x == "run" else x for x in a.adapter]
    bundle = load_bundle(store, a.base)
    pool = AdapterPool(bundle, store)
    prompts = [p for p in read_prompts_jsonl(store.get_bytes(a.prompts)) if p.task == "frequency"]
    for adapter in [None, *a.adapter]:
        print(f"{adapter or 'base'}: {model_counts(pool, prompts, adapter, a.samples, a.seed)}", flush=True)
    raw, rec, by_event = tokenizer_ceiling(store, bundle, a.dataset)
    print(f"world test clips, raw joints: {raw}")
    print(f"world test clips, VQ round trip: {rec}")
    print(f"VQ round trip keeps a count >= 2, per event: {by_event}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
