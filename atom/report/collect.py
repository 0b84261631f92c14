"""What the run browser shows, read from a finished run in the store.

A run's manifest (runs/<run>/manifest.json) points at each stage's outputs; from them this module
gathers the evaluation report, one card per held-out prompt (the base and the tuned model's motion
for the same sampling seed, their judge scores, the outcome), the training pairs and the training
history. Pure reads: nothing is written and no service is called.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from atom.pipeline.manifest import Manifest
from atom.store import ArtifactNotFound, ArtifactStore

BASELINE, TUNED = "base", "atom"
OUTCOMES = ("better", "same", "worse")


class RunNotReady(ValueError):
    """The run has not finished what the browser needs; the message says which stage to run."""


@dataclass(frozen=True)
class Shown:
    """One model's answer to a prompt: the motion shown on the card and what the judge said of it."""

    motion: str  # store key of the motion (sample 0: the same sampling seed for both models)
    score: float | None  # the judge's score of that motion
    mean: float | None  # mean score over all of the model's samples for the prompt
    samples: int
    rationale: str = ""  # the judge's words (VLM) or its detected events (kinematic)


@dataclass(frozen=True)
class Card:
    prompt_id: str
    task: str
    text: str
    events: tuple[str, ...]  # "wave x2", in the prompt's order
    base: Shown
    tuned: Shown
    outcome: str  # "better" | "same" | "worse": tuned mean vs base mean for this prompt

    @property
    def difference(self) -> float:
        return (self.tuned.mean or 0.0) - (self.base.mean or 0.0)


@dataclass(frozen=True)
class PairView:
    task: str
    prompt: str
    chosen: str
    rejected: str
    chosen_score: float
    rejected_score: float


@dataclass
class RunView:
    run: str
    report: dict  # the evaluator's report.json
    plots: list[str]  # store keys of the report's PNG plots
    cards: list[Card]
    pairs: list[PairView]
    pairs_total: int
    history: list[dict]  # the training job's per-step metrics
    train_config: dict
    adapter: str
    calibration: dict | None = None  # the latest `atomctl judge calibrate` table in the store, if any
    reliability: list["TaskReliability"] = field(default_factory=list)  # the judge stage's, per task


def _stage(manifest: Manifest, name: str) -> dict:
    stage = manifest.stage(name)
    if stage.get("state") != "done":
        raise RunNotReady(
            f"run '{manifest.run}': stage '{name}' has not finished "
            f"(state {stage.get('state', 'never run')!r}); run `atomctl run-pipeline --run {manifest.run}`"
        )
    return stage["outputs"]


def _events(labels: dict) -> tuple[str, ...]:
    return tuple(e["event"] + (f" x{e['count']}" if int(e.get("count", 1)) > 1 else "") for e in labels.get("events", []))


def _rationale(store: ArtifactStore, key: str) -> str:
    """The judge's account of one motion, from its judgement record (when the row names it)."""
    if not key:
        return ""
    try:
        record = store.get_json(key)
    except ArtifactNotFound:
        return ""
    text = str(record.get("rationale", ""))
    detected = record.get("detected")
    if detected and "detected" not in text:
        text += "; detected: " + ", ".join(f"{d['event']} x{d['count']}" for d in detected)
    return text


def outcome_of(base_mean: float, tuned_mean: float) -> str:
    if tuned_mean > base_mean:
        return "better"
    return "same" if tuned_mean == base_mean else "worse"


def build_cards(store: ArtifactStore, prompts: list[dict], samples: dict[str, list[dict]]) -> list[Card]:
    """One card per held-out prompt that both models answered, in the prompts' order."""
    by_model: dict[str, dict[str, list[dict]]] = {}
    for model, rows in samples.items():
        grouped: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            if r.get("kind") == "judge":
                grouped[r["prompt_id"]].append(r)
        by_model[model] = grouped

    def shown(rows: list[dict]) -> Shown:
        rows = sorted(rows, key=lambda r: int(r.get("sample_index", 0)))
        scores = [float(r["score"]) for r in rows if r.get("score") is not None]
        first = rows[0]
        return Shown(
            motion=first.get("motion", ""),
            score=first.get("score"),
            mean=sum(scores) / len(scores) if scores else None,
            samples=len(rows),
            rationale=_rationale(store, first.get("judgement", "")),
        )

    cards = []
    for p in prompts:
        base_rows, tuned_rows = by_model[BASELINE].get(p["prompt_id"]), by_model[TUNED].get(p["prompt_id"])
        if not base_rows or not tuned_rows:
            continue
        base, tuned = shown(base_rows), shown(tuned_rows)
        if base.mean is None or tuned.mean is None:
            continue  # no score for one side: no outcome to show
        cards.append(
            Card(
                prompt_id=p["prompt_id"],
                task=p["task"],
                text=p["text"],
                events=_events(p.get("labels", {})),
                base=base,
                tuned=tuned,
                outcome=outcome_of(base.mean, tuned.mean),
            )
        )
    return cards


def collect(store: ArtifactStore, run: str, max_pairs: int = 60) -> RunView:
    """Everything the run browser shows for `run`. Raises RunNotReady when the run has not
    finished its evaluation."""
    try:
        data = store.get_json(Manifest(store, run).key)
    except ArtifactNotFound:
        raise RunNotReady(f"no run '{run}' in {store.url}; run `atomctl run-pipeline --run {run}` first") from None
    manifest = Manifest(store, run, data)
    evaluate, prompts_out = _stage(manifest, "evaluate"), _stage(manifest, "prompts")
    judge_out = _stage(manifest, "judge")
    pairs_out, train_out = _stage(manifest, "pairs"), _stage(manifest, "train")
    report_key = evaluate["report_json"]
    report = store.get_json(report_key)
    made_under = evaluate.get("made_under") or report_key.rsplit("/", 1)[0]
    samples = {m: store.get_jsonl(f"{made_under}/eval-samples-{m}.jsonl") for m in (BASELINE, TUNED)}
    cards = build_cards(store, store.get_jsonl(prompts_out["eval"]), samples)
    pair_rows = store.get_jsonl(pairs_out["pairs"])
    pairs = [
        PairView(
            task=r["task"],
            prompt=r["prompt"],
            chosen=r["chosen_key"],
            rejected=r["rejected_key"],
            chosen_score=float(r["chosen_score"]),
            rejected_score=float(r["rejected_score"]),
        )
        for r in pair_rows[:max_pairs]
    ]
    adapter = train_out["adapter"].rstrip("/")
    try:
        summary = store.get_json(f"{adapter.rsplit('/', 1)[0]}/train_summary.json")
    except ArtifactNotFound:
        summary = {}
    return RunView(
        run=run,
        report=report,
        plots=list(evaluate.get("plots", [])),
        cards=cards,
        pairs=pairs,
        pairs_total=len(pair_rows),
        history=list(summary.get("history", [])),
        train_config=dict(summary.get("config", {})),
        adapter=adapter,
        calibration=latest_calibration(store),
        reliability=judge_reliability(store.get_jsonl(judge_out["judgements"]), pairs_out),
    )


@dataclass(frozen=True)
class TaskReliability:
    """How far the training judgements of one sub-task can be trusted, and what they gave."""

    task: str
    motions: int  # judgement rows (one per generated motion)
    scored: int
    votes: int  # votes per question (judge.votes)
    mean_agreement: float | None  # share of the votes behind the kept score, averaged; None unscored
    unanimous: float | None  # share of scored motions whose votes all agreed
    scores: dict[str, int]  # score -> motions
    dropped_low_agreement: int  # motions left out of the pairs (judge.min_agreement)
    pairs: int  # pairs built from this task's motions


def judge_reliability(rows: list[dict], pairs_out: dict) -> list[TaskReliability]:
    """Per sub-task: votes, agreement, the score distribution and the pairs kept, from the judge
    stage's judgements.jsonl rows and the pairs stage's outputs."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_task[row["task"]].append(row)
    dropped = pairs_out.get("motions_dropped_low_agreement") or {}
    pairs = pairs_out.get("pairs_per_task") or {}
    out = []
    for task, task_rows in by_task.items():
        scored = [r for r in task_rows if r.get("ok")]
        agreements = [float(r.get("agreement", 1.0)) for r in scored]
        scores: dict[str, int] = defaultdict(int)
        for r in scored:
            scores[f"{r['score']:g}"] += 1
        out.append(
            TaskReliability(
                task=task,
                motions=len(task_rows),
                scored=len(scored),
                votes=max((len(r.get("votes") or [r.get("score")]) for r in scored), default=0),
                mean_agreement=sum(agreements) / len(agreements) if agreements else None,
                unanimous=sum(a >= 1.0 for a in agreements) / len(agreements) if agreements else None,
                scores=dict(sorted(scores.items(), key=lambda kv: float(kv[0]))),
                dropped_low_agreement=int(dropped.get(task, 0)),
                pairs=int(pairs.get(task, 0)),
            )
        )
    return out


CALIBRATION_LATEST = "judge/calibration/latest.json"  # written by the judge service's Calibrate


def latest_calibration(store: ArtifactStore) -> dict | None:
    """The newest judge calibration table (judge/calibration/<key>.json), or None when the judge
    was never calibrated against this store. It measures the judge, not the run: any run shows it."""
    try:
        return store.get_json(store.get_json(CALIBRATION_LATEST)["key"])
    except (ArtifactNotFound, KeyError, TypeError):
        return None


def pick_for_video(cards: list[Card], per_task: int) -> list[Card]:
    """The cards whose videos are rendered: per task up to `per_task`, taken in turn from the
    better, same and worse outcomes (largest differences first), so every outcome is seen."""
    chosen = []
    for task in dict.fromkeys(c.task for c in cards):
        pools = {o: sorted((c for c in cards if c.task == task and c.outcome == o), key=lambda c: -abs(c.difference)) for o in OUTCOMES}
        picked: list[Card] = []
        while len(picked) < per_task and any(pools.values()):
            for o in OUTCOMES:
                if pools[o] and len(picked) < per_task:
                    picked.append(pools[o].pop(0))
        chosen += picked
    return chosen
