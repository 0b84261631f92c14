"""Evaluation of any number of models against real motion, and the report it produces.

`evaluate` embeds every caption and motion once (in batches), then runs `replications` rounds.
Each round draws one generation per prompt (the generator's randomness), shuffles for
R-precision, and draws Diversity / MultiModality index sets; every metric is reported as
mean +- 1.96 * population std / sqrt(replications). All models share a round's random numbers
(seeded by (seed, round, task)), so their differences are not blurred by different draws.

The judge-score side (alignment.py) reports, per task, each model's mean score with its CI
across prompts and each model against the baseline (the first model by default): per-prompt
win / tie / lose and the paired difference of means with its CI.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from atom.settings import EvalSettings
from services.evaluator import metrics as M
from services.evaluator.alignment import Comparison, compare, per_prompt_means, task_score
from services.evaluator.plots import render_plots
from services.evaluator.records import (
    GENERAL,
    METRICS,
    REAL,
    ModelSample,
    RealSample,
    SampleError,
    TextMotionEvaluator,
    check_stop,
    order_tasks,
)
from services.evaluator.stats import NAN_CI, ConfidenceInterval, mean_ci

REPLICATIONS = EvalSettings().replications  # the one place the default is written

Progress = Callable[[str, int, int], None]


class EvaluationInputError(ValueError):
    """The models / real sets given to `evaluate` cannot be evaluated as asked."""


@dataclass(frozen=True)
class EvaluationConfig:
    replications: int = REPLICATIONS
    seed: int = 0
    group_size: int = 32  # R-precision group
    top_k: int = 3
    diversity_times: int = 300  # capped at the number of samples (recorded in the notes)
    mm_num_texts: int = 100
    mm_generations: int = 30  # capped at the fewest generations of the prompts used
    mm_pairs: int = 10
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.replications < 1:
            raise EvaluationInputError(f"replications must be >= 1, got {self.replications}")
        if self.top_k < 1 or self.top_k > 3 or self.group_size < self.top_k:
            raise EvaluationInputError("top_k must be 1..3 and at most group_size")


@dataclass
class MetricRow:
    task: str
    model: str
    metrics: dict[str, ConfidenceInterval]
    num_samples: int
    num_prompts: int

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "model": self.model,
            "num_samples": self.num_samples,
            "num_prompts": self.num_prompts,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MetricRow":
        return cls(
            d["task"], d["model"], {k: ConfidenceInterval.from_dict(v) for k, v in d["metrics"].items()}, d["num_samples"], d["num_prompts"]
        )


@dataclass
class JudgeRow:
    task: str
    model: str
    score: ConfidenceInterval  # n = judged prompts
    num_motions: int

    def to_dict(self) -> dict:
        return {"task": self.task, "model": self.model, "score": self.score.to_dict(), "num_motions": self.num_motions}

    @classmethod
    def from_dict(cls, d: dict) -> "JudgeRow":
        return cls(d["task"], d["model"], ConfidenceInterval.from_dict(d["score"]), d["num_motions"])


@dataclass
class Report:
    models: list[str]
    tasks: list[str]
    rows: list[MetricRow]
    judge: list[JudgeRow]
    comparisons: list[Comparison]
    evaluator: dict
    config: dict
    notes: list[str] = field(default_factory=list)
    assets: list[dict] = field(default_factory=list)  # what the run used, with content hashes

    def row(self, task: str, model: str) -> MetricRow:
        for r in self.rows:
            if r.task == task and r.model == model:
                return r
        raise KeyError(f"no metric row for task {task!r}, model {model!r}")

    def comparison(self, task: str, model: str) -> Comparison:
        for c in self.comparisons:
            if c.task == task and c.model == model:
                return c
        raise KeyError(f"no comparison for task {task!r}, model {model!r}")

    def to_dict(self) -> dict:
        return {
            "models": self.models,
            "tasks": self.tasks,
            "rows": [r.to_dict() for r in self.rows],
            "judge": [j.to_dict() for j in self.judge],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "evaluator": self.evaluator,
            "config": self.config,
            "notes": self.notes,
            "assets": self.assets,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Report":
        return cls(
            d["models"],
            d["tasks"],
            [MetricRow.from_dict(r) for r in d["rows"]],
            [JudgeRow.from_dict(j) for j in d["judge"]],
            [Comparison.from_dict(c) for c in d["comparisons"]],
            d["evaluator"],
            d["config"],
            list(d.get("notes", [])),
            list(d.get("assets", [])),
        )

    @classmethod
    def from_json(cls, text: str) -> "Report":
        return cls.from_dict(json.loads(text))

    def to_markdown(self, digits: int = 3) -> str:
        ev = self.evaluator
        lines = [
            "# Evaluation report",
            "",
            f"Evaluator: {ev.get('name', '?')}"
            + (
                f" ({'event-level prompts: ' if ev.get('protocol_note') else ''}motion GRU "
                f"{'packed by length // 4' if ev['pack_motions'] else 'unpacked'})"
                if "pack_motions" in ev
                else ""
            )
            + f"; {self.config.get('replications')} replications, seed {self.config.get('seed')};"
            " values are mean ± 95% CI (1.96 · population std / √n)."
            + (f" {ev['protocol_note']}." if ev.get("protocol_note") else "")
            + (f" Free-text captions tagged by {ev['tagger']}." if ev.get("tagger") else ""),
            "",
            "## Text-motion metrics",
            "",
            "| task | model | MM-Dist ↓ | R@1 ↑ | R@2 ↑ | R@3 ↑ | FID ↓ | Diversity → | MModality ↑ |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            cells = [r.metrics.get(k, NAN_CI).format(digits) for k in METRICS]
            lines.append(f"| {r.task} | {r.model} | " + " | ".join(cells) + " |")
        if self.judge:
            lines += [
                "",
                "## Judge scores (event-level alignment)",
                "",
                "| task | model | mean score | prompts | motions |",
                "|---|---|---|---|---|",
            ]
            for j in self.judge:
                lines.append(f"| {j.task} | {j.model} | {j.score.format(digits)} | {j.score.n} | {j.num_motions} |")
        if self.comparisons:
            lines += [
                "",
                "## Model vs baseline (per prompt, mean judge score)",
                "",
                "| task | model | baseline | win | tie | lose | win rate | Δ score | improved |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for c in self.comparisons:
                o = c.outcome
                lines.append(
                    f"| {c.task} | {c.model} | {c.baseline} | {o.win} | {o.tie} | {o.lose} | "
                    f"{o.win_rate:.1%} | {c.difference.format(digits)} | {'yes' if c.difference.above_zero else 'no'} |"
                )
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        if self.assets:
            lines += ["", "## Assets", "", "| role | name | sha256 | size |", "|---|---|---|---|"]
            for a in self.assets:
                size = f"{a['bytes']:,} B" if a.get("bytes") else (f"{a['files']} files" if a.get("files") else "")
                lines.append(f"| {a.get('role', '')} | {a.get('name', '')} | {a.get('sha256', '')} | {size} |")
        return "\n".join(lines) + "\n"

    def save(self, store, prefix: str, plots: bool = True) -> dict[str, str]:
        """Write report.json, report.md and (optionally) PNG plots under `prefix`; returns name -> key."""
        p = prefix.rstrip("/")
        keys = {
            "json": store.put_bytes(f"{p}/report.json", self.to_json().encode()).key,
            "markdown": store.put_bytes(f"{p}/report.md", self.to_markdown().encode()).key,
        }
        if plots:
            for name, png in render_plots(self).items():
                keys[name] = store.put_bytes(f"{p}/plots/{name}.png", png).key
        return keys

    @classmethod
    def load(cls, store, prefix: str) -> "Report":
        return cls.from_dict(json.loads(store.get_bytes(f"{prefix.rstrip('/')}/report.json")))


# --- evaluation ---------------------------------------------------------------------------------


def _features_of(sample: ModelSample) -> np.ndarray:
    if sample.features is not None and sample.features.shape[0] > 0:
        return sample.features
    if sample.joints is None:
        raise SampleError(f"sample for prompt {sample.prompt_id!r} has empty features and no joints")
    from atom.motion.features import joints_to_features

    return joints_to_features(np.asarray(sample.joints, np.float32)).astype(np.float32)


@dataclass
class _Embedded:
    """One model's samples of one task, embedded, grouped by prompt."""

    text: np.ndarray  # (N, D)
    motion: np.ndarray  # (N, D)
    groups: list[np.ndarray]  # per prompt, indices into the rows
    prompt_ids: list[str]


def _embed_in_batches(fn, items: Sequence, batch: int) -> np.ndarray:
    parts = [np.asarray(fn(items[i : i + batch]), np.float64) for i in range(0, len(items), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def _embed_model(samples: Sequence[ModelSample], evaluator: TextMotionEvaluator, batch: int) -> dict[str, _Embedded]:
    texts = list(dict.fromkeys(s.text for s in samples))  # each distinct caption once
    text_emb = _embed_in_batches(evaluator.embed_texts, texts, batch)
    text_row = {t: i for i, t in enumerate(texts)}
    motion_emb = _embed_in_batches(evaluator.embed_motions, [_features_of(s) for s in samples], batch)
    out: dict[str, _Embedded] = {}
    for task in order_tasks({s.task for s in samples}):
        idx = [i for i, s in enumerate(samples) if s.task == task]
        by_prompt: dict[str, list[int]] = {}
        for j, i in enumerate(idx):
            by_prompt.setdefault(samples[i].prompt_id, []).append(j)
        out[task] = _Embedded(
            text=text_emb[[text_row[samples[i].text] for i in idx]],
            motion=motion_emb[idx],
            groups=[np.asarray(v) for v in by_prompt.values()],
            prompt_ids=list(by_prompt),
        )
    return out


@dataclass
class _RealEmbedded:
    motion: np.ndarray  # (clips, D)
    captions: list[np.ndarray]  # per clip, (captions, D)


class _RealCache:
    """Embeds each real clip (by clip_id) and each caption once, however many subsets hold it."""

    def __init__(self, evaluator: TextMotionEvaluator, batch: int):
        self.evaluator, self.batch = evaluator, batch
        self.motion: dict[str, np.ndarray] = {}
        self.text: dict[str, np.ndarray] = {}

    def add(self, clips: Sequence[RealSample], captions: bool) -> None:
        new = list({c.clip_id: c for c in clips if c.clip_id not in self.motion}.values())
        if new:
            emb = _embed_in_batches(self.evaluator.embed_motions, [c.features for c in new], self.batch)
            self.motion.update({c.clip_id: e for c, e in zip(new, emb)})
        if captions:
            texts = list(dict.fromkeys(t for c in clips for t in c.texts if t not in self.text))
            if texts:
                emb = _embed_in_batches(self.evaluator.embed_texts, texts, self.batch)
                self.text.update(zip(texts, emb))

    def motions(self, clips: Sequence[RealSample]) -> np.ndarray:
        return np.stack([self.motion[c.clip_id] for c in clips])

    def embedded(self, clips: Sequence[RealSample]) -> _RealEmbedded:
        return _RealEmbedded(self.motions(clips), [np.stack([self.text[t] for t in c.texts]) for c in clips])


def _round_metrics(
    text: np.ndarray,
    motion: np.ndarray,
    reference: np.ndarray | None,
    mm: np.ndarray | None,
    cfg: EvaluationConfig,
    rng: np.random.Generator,
) -> dict[str, float]:
    n = motion.shape[0]
    out = {k: float("nan") for k in METRICS}
    if n >= cfg.group_size:
        res = M.matching_metrics(text, motion, rng, cfg.group_size, cfg.top_k)
        out["mm_dist"] = res.mm_dist
        for k, v in enumerate(res.r_precision):
            out[f"r{k + 1}"] = v
    if reference is not None and n >= 2 and reference.shape[0] >= 2:
        out["fid"] = M.fid(reference, motion)
    if n >= 2:
        out["diversity"] = M.diversity(motion, rng, min(cfg.diversity_times, n))
    if mm is not None:
        out["mmodality"] = M.multimodality(mm, rng, min(cfg.mm_pairs, mm.shape[1]))
    return out


def _real_rounds(r: _RealEmbedded, ref: np.ndarray | None, cfg: EvaluationConfig, stream: int) -> list[dict[str, float]]:
    """Real motion against its own captions; a random caption per clip each round, as
    HumanML3D's loader does. FID against `ref` (a held-out real set) when given."""
    rounds = []
    for rep in range(cfg.replications):
        rng = np.random.default_rng([cfg.seed, rep, stream, 1])
        text = np.stack([caps[rng.integers(len(caps))] for caps in r.captions])
        rounds.append(_round_metrics(text, r.motion, ref, None, cfg, rng))
    return rounds


def ground_truth_metrics(
    evaluator: TextMotionEvaluator,
    real: Sequence[RealSample],
    reference: Sequence[RealSample] | None = None,
    replications: int = REPLICATIONS,
    seed: int = 0,
) -> dict[str, ConfidenceInterval]:
    """How well an evaluator separates real data: R@k / MM-Dist of real clips against their own
    captions, Diversity, and FID of `real` against `reference` (a held-out real split)."""
    cfg = EvaluationConfig(replications=replications, seed=seed)
    cache = _RealCache(evaluator, cfg.batch_size)
    cache.add(real, captions=True)
    ref = None
    if reference:
        cache.add(reference, captions=False)
        ref = cache.motions(reference)
    out = _summarise(_real_rounds(cache.embedded(real), ref, cfg, 0))
    out.pop("mmodality")
    return out


def _summarise(per_round: list[dict[str, float]]) -> dict[str, ConfidenceInterval]:
    out = {}
    for k in METRICS:
        vals = [r[k] for r in per_round]
        out[k] = NAN_CI if any(math.isnan(v) for v in vals) else mean_ci(vals)
    return out


def evaluate(
    models: Mapping[str, Sequence[ModelSample]],
    real: Mapping[str, Sequence[RealSample]],
    evaluator: TextMotionEvaluator,
    replications: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    *,
    reference: Mapping[str, Sequence[RealSample]] | None = None,
    baseline: str | None = None,
    config: EvaluationConfig | None = None,
    stop=None,
) -> Report:
    """Evaluate every model's samples per task against the real subsets.

    models: name -> samples (the first name is the baseline unless `baseline` is given).
    real: task -> real clips (subsets.py builds these; "general" is the fallback for a task with
      no subset of its own). FID of a model's task compares with real[task].
    reference: optional held-out real clips per task (e.g. the val split); when given, the
      "real" row's FID is real[task] against reference[task] (the evaluator's GT FID).
    The settings: `config` (default EvaluationConfig()), then `replications` and `seed` when given
      (not None) override its fields: explicit arguments win over the config object, as in
      services.generator.sampling.sample_motions.
    """
    given = {k: v for k, v in (("replications", replications), ("seed", seed)) if v is not None}
    cfg = replace(config or EvaluationConfig(), **given)
    if not models:
        raise EvaluationInputError("no models to evaluate")
    names = list(models)
    if REAL in names:
        raise EvaluationInputError(f"{REAL!r} is reserved for the real-motion row; rename that model")
    baseline = baseline if baseline is not None else names[0]
    if baseline not in models:
        raise EvaluationInputError(f"baseline {baseline!r} is not among the models {names}")
    for name, samples in models.items():
        if not samples:
            raise EvaluationInputError(f"model {name!r} has no samples")
    if not real:
        raise EvaluationInputError("no real clips given; pass task -> real clips (at least 'general')")
    tasks = order_tasks({s.task for ss in models.values() for s in ss})
    notes: list[str] = []

    def real_for(task: str, sets: Mapping[str, Sequence[RealSample]], what: str) -> tuple[str, Sequence[RealSample]] | None:
        if task in sets and sets[task]:
            return task, sets[task]
        if GENERAL in sets and sets[GENERAL]:
            notes.append(f"{what} for task '{task}': no subset of its own, used '{GENERAL}'")
            return GENERAL, sets[GENERAL]
        return None

    found = {t: real_for(t, real, "real clips") for t in tasks}
    missing = [t for t, v in found.items() if v is None]
    if missing:
        raise EvaluationInputError(f"no real clips for tasks {missing} and no '{GENERAL}' set to fall back on")
    real_tasks = {t: v for t, v in found.items() if v is not None}
    # The real row's FID compares like with like: the reference subset of the same name as the
    # real subset used (a temporal test subset against the whole val split would mislead).
    ref_tasks = {}
    for t in tasks:
        rkey = real_tasks[t][0]
        if reference and reference.get(rkey):
            ref_tasks[t] = (rkey, reference[rkey])
        elif reference:
            notes.append(f"reference clips: no '{rkey}' subset, no real-vs-reference FID for task '{t}'")

    steps = len(models) + 2 + len(tasks)
    done = 0

    def tick(msg: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(msg, done, steps)

    embedded = {}
    for name in names:
        embedded[name] = _embed_model(models[name], evaluator, cfg.batch_size)
        tick(f"embedded {name}")
    cache = _RealCache(evaluator, cfg.batch_size)
    real_sets = {v[0]: v[1] for v in real_tasks.values()}
    for clips in real_sets.values():
        cache.add(clips, captions=True)
    real_emb = {key: cache.embedded(clips) for key, clips in real_sets.items()}
    tick("embedded real clips")
    ref_sets = {v[0]: v[1] for v in ref_tasks.values() if v}
    for clips in ref_sets.values():
        cache.add(clips, captions=False)
    ref_emb = {key: cache.motions(clips) for key, clips in ref_sets.items()}
    tick("embedded reference clips")

    rows: list[MetricRow] = []
    for ti, task in enumerate(tasks):
        rkey = real_tasks[task][0]
        r = real_emb[rkey]
        ref = ref_emb.get(ref_tasks[task][0]) if ref_tasks.get(task) else None
        rounds = _real_rounds(r, ref, cfg, ti)
        rows.append(MetricRow(task, REAL, _summarise(rounds), r.motion.shape[0], r.motion.shape[0]))
        if r.motion.shape[0] < cfg.group_size:
            notes.append(f"task '{task}': fewer than {cfg.group_size} real clips, no R-precision")

        for name in names:
            if task not in embedded[name]:
                continue
            e = embedded[name][task]
            mm_idx = _multimodality_plan(e.groups, cfg, name, task, notes)
            rounds = []
            for rep in range(cfg.replications):
                check_stop(stop)
                rng = np.random.default_rng([cfg.seed, rep, ti, 0])
                pick = np.array([g[rng.integers(len(g))] for g in e.groups])
                mm = None
                if mm_idx is not None:
                    chosen, gens = mm_idx
                    use = rng.choice(len(chosen), min(cfg.mm_num_texts, len(chosen)), replace=False)
                    mm = np.stack([e.motion[rng.choice(e.groups[chosen[u]], gens, replace=False)] for u in use])
                rounds.append(_round_metrics(e.text[pick], e.motion[pick], r.motion, mm, cfg, rng))
            n = len(e.groups)
            if n < cfg.group_size:
                notes.append(f"{name} / {task}: {n} prompts, fewer than {cfg.group_size}: no R-precision or MM-Dist")
            elif n < cfg.diversity_times:
                notes.append(f"{name} / {task}: Diversity over {n} pairs (fewer than {cfg.diversity_times} prompts)")
            rows.append(MetricRow(task, name, _summarise(rounds), int(e.motion.shape[0]), n))
        tick(f"metrics {task}")

    judge_rows, comparisons = _judge_tables(models, names, baseline, tasks)
    return Report(
        models=names,
        tasks=tasks,
        rows=rows,
        judge=judge_rows,
        comparisons=comparisons,
        evaluator=dict(evaluator.describe()),
        config={**asdict(cfg), "baseline": baseline, "reference_fid": bool(reference)},
        notes=list(dict.fromkeys(notes)),
    )


def _multimodality_plan(groups, cfg: EvaluationConfig, name: str, task: str, notes: list[str]):
    sizes = sorted((len(g) for g in groups if len(g) >= 2), reverse=True)
    if not sizes:
        notes.append(f"{name} / {task}: one generation per prompt, no MultiModality")
        return None
    # The most generations that mm_num_texts prompts share: a few prompts sampled 30 times for
    # MultiModality beside many sampled a few times (for FID) use the 30.
    gens = min(cfg.mm_generations, sizes[min(cfg.mm_num_texts, len(sizes)) - 1])
    eligible = [i for i, g in enumerate(groups) if len(g) >= gens]
    if gens < cfg.mm_generations or len(eligible) < cfg.mm_num_texts:
        notes.append(
            f"{name} / {task}: MultiModality over {min(len(eligible), cfg.mm_num_texts)} prompts x {gens} "
            f"generations, {min(cfg.mm_pairs, gens)} pairs (protocol: {cfg.mm_num_texts} x {cfg.mm_generations}, "
            f"{cfg.mm_pairs} pairs)"
        )
    return eligible, gens


def _judge_tables(models, names, baseline, tasks) -> tuple[list[JudgeRow], list[Comparison]]:
    judge_rows: list[JudgeRow] = []
    means: dict[tuple[str, str], dict[str, float]] = {}
    for task in tasks:
        for name in names:
            scored = [(s.prompt_id, s.score) for s in models[name] if s.task == task and s.score is not None]
            if not scored:
                continue
            means[(task, name)] = per_prompt_means(scored)
            judge_rows.append(JudgeRow(task, name, task_score(means[(task, name)]), len(scored)))
    comparisons = []
    for task in tasks:
        base = means.get((task, baseline))
        for name in names:
            if name == baseline or base is None or (task, name) not in means:
                continue
            if not set(base) & set(means[(task, name)]):
                continue
            comparisons.append(compare(task, name, baseline, means[(task, name)], base))
    return judge_rows, comparisons


# -- MotionGPT's protocol for the test split -----------------------------------------------------

PLAN_KINDS = (GENERAL, "mm")


@dataclass
class TestPlan:
    """What the motiongpt protocol needs beside the samples: the test items (atom.evalplan), each
    item's real features, and the generator's mean pose (padding and zero motion)."""

    items: list
    real: list[np.ndarray]
    pad: np.ndarray


def evaluate_planned(
    models: Mapping[str, Sequence[ModelSample]],
    real: Mapping[str, Sequence[RealSample]],
    evaluator: TextMotionEvaluator,
    plan: TestPlan,
    replications: int = REPLICATIONS,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    reference: Mapping[str, Sequence[RealSample]] | None = None,
    baseline: str | None = None,
    stop=None,
) -> Report:
    """`evaluate` for the judged prompts, and MotionGPT's protocol for the test split: the samples
    of kind "general" / "mm" are scored by services.evaluator.motiongpt_protocol."""
    from services.evaluator.motiongpt_protocol import general_rounds

    names = list(models)
    judged = {k: [s for s in v if s.kind not in PLAN_KINDS] for k, v in models.items()}
    planned = {k: [s for s in v if s.kind in PLAN_KINDS] for k, v in models.items()}
    notes: list[str] = []
    if any(judged.values()):
        report = evaluate(
            {k: v for k, v in judged.items() if v},
            real,
            evaluator,
            replications,
            seed,
            progress,
            reference=reference,
            baseline=baseline,
            stop=stop,
        )
    else:
        cfg = EvaluationConfig(replications=replications, seed=seed)
        report = Report(
            names, [], [], [], [], dict(evaluator.describe()), {**asdict(cfg), "baseline": baseline or names[0], "reference_fid": False}
        )
    mm_items = {s.item for v in planned.values() for s in v if s.kind == "mm" and s.replication == 0}
    rounds = general_rounds(
        planned,
        plan.items,
        plan.real,
        evaluator,
        plan.pad,
        replications=replications,
        seed=seed,
        mm_texts=len(mm_items),
        notes=notes,
        stop=stop,
    )
    n = len(plan.items)
    rows = [MetricRow(GENERAL, name, _summarise(r), n * replications, n) for name, r in rounds.items()]
    report.rows = sorted(
        [r for r in report.rows if r.task != GENERAL] + rows,
        key=lambda r: (order_tasks(set(report.tasks) | {GENERAL}).index(r.task), ([REAL] + names).index(r.model)),
    )
    report.tasks = order_tasks(set(report.tasks) | {GENERAL})
    report.evaluator["protocol"] = "motiongpt"
    report.evaluator["protocol_note"] = (
        "Test split (general): MotionGPT's evaluation protocol (random unit-length crops, the same items' real "
        "crops for FID in each replication, outputs of at most one code as the zero motion, motions padded per "
        f"batch of 32 with the model's mean pose, motion GRU unpacked); {n} items"
    )
    report.notes = list(dict.fromkeys(report.notes + notes))
    if progress:
        progress("metrics general (motiongpt protocol)", 1, 1)
    return report
