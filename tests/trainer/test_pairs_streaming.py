"""build_pair_sets streams its records (issue #21); its files must be byte for byte what the
whole-list code wrote. The reference below is that code as it was (every record and every pair in
lists), kept here so the comparison does not depend on the code under test."""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict

import pytest

from atom.motion.events import TASKS
from atom.store import LocalStore
from atom.store.jsonl import encode_jsonl
from services.trainer.motionprefer import PreferenceRecord, load_records, save_records
from services.trainer.pairs import DEFAULT_CHOSEN_THRESHOLD, PairConfig, build_pair_sets

# -- the reference: the whole-list Algorithm 1 as build_pair_sets had it before streaming ---------


def ref_task_pairs(records, task, config):
    groups = defaultdict(list)
    for r in records:
        if r.task == task:
            groups[r.prompt].append(r)
    threshold = None if not config.score_filter else float(config.chosen_threshold.get(task, DEFAULT_CHOSEN_THRESHOLD[task]))
    pairs = []
    for prompt in sorted(groups):
        by_key = {}
        for r in groups[prompt]:
            by_key.setdefault(r.motion_key, r)
        ranked = sorted(by_key.values(), key=lambda r: (-r.score, r.motion_key))
        for i, won in enumerate(ranked):
            if threshold is not None and not won.score > threshold:
                break
            for lost in ranked[i + 1 :]:
                if won.score - lost.score > config.theta:
                    pairs.append(
                        {
                            "task": task,
                            "prompt_id": won.prompt_id,
                            "prompt": prompt,
                            "labels": won.labels,
                            "chosen_key": won.motion_key,
                            "rejected_key": lost.motion_key,
                            "chosen_score": won.score,
                            "rejected_score": lost.score,
                            "chosen_tokens": list(won.tokens) if won.tokens is not None else None,
                            "rejected_tokens": list(lost.tokens) if lost.tokens is not None else None,
                        }
                    )
    return pairs


def ref_pair_id(p):
    return hashlib.sha256(json.dumps([p["task"], p["prompt"], p["chosen_key"], p["rejected_key"]]).encode()).hexdigest()[:24]


def ref_pair_sets(records, out_prefix, config, mixed_size, seed, records_key):
    """{key: bytes} of every file the whole-list build_pair_sets wrote."""
    present = {r.task for r in records}
    by_task = {t: ref_task_pairs(records, t, config) for t in TASKS if t in present}
    out, files = {}, []
    for task, pairs in by_task.items():
        key = f"{out_prefix}/pairs-{task}.jsonl"
        out[key] = encode_jsonl(pairs)
        files.append({"name": task, "key": key, "pairs": len(pairs)})
    if mixed_size is not None:
        pool = {ref_pair_id(p): p for pairs in by_task.values() for p in pairs}
        size = len(pool) if mixed_size == 0 else min(mixed_size, len(pool))
        ranked = sorted(pool, key=lambda pid: hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest())[:size]
        key = f"{out_prefix}/pairs-mixed.jsonl"
        out[key] = encode_jsonl(pool[pid] for pid in ranked)
        files.append({"name": "mixed", "key": key, "pairs": size})
    rows = []
    for task in TASKS:
        tr = [r for r in records if r.task == task]
        if tr:
            rows.append({"task": task, "prompts": len({r.prompt for r in tr}), "motions": len(tr), "pairs": len(by_task[task])})
    rows.append({"task": "total", **{k: sum(r[k] for r in rows) for k in ("prompts", "motions", "pairs")}})
    table = "\n".join(
        ["| sub-task | prompts | motions | pairs |", "|---|---:|---:|---:|"]
        + [f"| {r['task']} | {r['prompts']} | {r['motions']} | {r['pairs']} |" for r in rows]
    )
    stats = {
        "records_key": records_key,
        "pair_config": config.to_dict(),
        "mixed_size": mixed_size,
        "seed": seed,
        "rows": rows,
        "table": table,
        "files": files,
    }
    out[f"{out_prefix}/stats.json"] = (json.dumps(stats, indent=2, sort_keys=True) + "\n").encode()
    return out


# -- a fixed input: three tasks, prompts with ties, repeated motions and inline tokens ------------


def records(seed: int = 3, prompts_per_task: int = 6, samples: int = 6) -> list[PreferenceRecord]:
    rng = random.Random(seed)
    out = []
    for task in TASKS:
        top = 3 if task == "frequency" else 5
        for n in range(prompts_per_task):
            text = f"{task} prompt {n:02d}: a person walks forward then squats"
            labels = {"task": task, "events": [{"event": "walk_forward", "count": 1}, {"event": "squat", "count": 1 + n % 2}]}
            group = []
            for s in range(samples):
                key = f"motions/{task}-{n}-{s}.npz"
                tokens = [rng.randrange(512) for _ in range(4)] if s % 3 == 0 else None
                group.append(
                    PreferenceRecord(f"p-{task}-{n}", text, task, labels, key, float(rng.randint(1, top)), "kinematic-v1", "", tokens)
                )
            group.append(group[1])  # two samples that decoded to the same motion share a key and a score
            out += group
    return out


CONFIGS = [
    PairConfig(),
    PairConfig(theta=1.0, score_filter=False),
    PairConfig.with_min_chosen_score(2.0, theta=0.5),
]


@pytest.mark.parametrize("order", ["grouped", "shuffled"])
@pytest.mark.parametrize("config", CONFIGS, ids=["default", "no-filter-theta1", "min2-theta0.5"])
@pytest.mark.parametrize("mixed_size", [None, 0, 7, 100_000])
def test_pair_sets_are_byte_identical_to_the_whole_list_code(tmp_path, order, config, mixed_size):
    recs = records()
    if order == "shuffled":  # BuildPairs takes any MotionPrefer file, not only the pairs stage's
        random.Random(5).shuffle(recs)
    store = LocalStore(tmp_path / "store")
    save_records(store, "datasets/r/motionprefer.jsonl", recs)
    sets = build_pair_sets(store, "datasets/r/motionprefer.jsonl", "datasets/r/out", config, mixed_size=mixed_size, seed=11)
    expected = ref_pair_sets(
        load_records(store, "datasets/r/motionprefer.jsonl"), "datasets/r/out", config, mixed_size, 11, "datasets/r/motionprefer.jsonl"
    )
    assert store.list("datasets/r/out/") == sorted(expected)
    for key, data in expected.items():
        assert store.get_bytes(key) == data, key
    assert [(f.name, f.key, f.pairs) for f in sets.files] == [
        (f["name"], f["key"], f["pairs"]) for f in json.loads(expected[sets.stats_key])["files"]
    ]
    assert any(f.pairs for f in sets.files)  # the input makes pairs: the comparison is not of empty files
