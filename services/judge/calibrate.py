"""Calibrate a judge on motions whose true scores are known, for each way of showing them.

Truth comes from world clips (atom.motion.world composes the events a clip performs, and the task's
rules applied to those events give the score a perfect judge would give: `world_items`) or from
people (a human-label JSONL file, services/judge/human.py: `human_items`).

    items = world_items(prompts, [Setting("full-image", 8), Setting("frame-by-frame", 8)], render, seed=0)
    result = calibrate(items, vlm_judge, settings, kinematic=KinematicJudge())
    print(result.format()); json.dumps(result.to_dict())

Per task and per setting (injection form, sampling interval): exact agreement with the truth, the
confusion matrix (rows: truth, columns: the judge), within-one, Cohen's kappa, what it cost, and
the exact agreement with the kinematic judge on the same motions (and the kinematic judge's own
agreement with the truth, the offline baseline). The judge is anything with `judge_id` and
`score_batch(items)` (the VLM judge, the Batch API path through `BatchScorer`, a fake).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from atom.agreement import agreement
from services.judge.human import HumanLabel, load_motion
from services.judge.records import FORMS, JudgeItem, Judgement, PromptRecord
from services.judge.rules import ALLOWED_SCORES


@dataclass(frozen=True)
class Setting:
    """How the motion is shown: the judge's injection form (hyphens) and the sampling interval."""

    form: str
    interval: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "form", self.form.replace("_", "-"))
        if self.form not in FORMS:
            raise ValueError(f"unknown form {self.form!r}; use one of {FORMS}")
        if self.interval < 1:
            raise ValueError(f"interval must be >= 1, got {self.interval}")

    @property
    def render_form(self) -> str:
        """The renderer's name for the form (underscores)."""
        return self.form.replace("-", "_")

    def label(self) -> str:
        return f"{self.form}/{self.interval}"


@dataclass
class CalibrationItem:
    item_id: str
    prompt: PromptRecord
    truth: int
    joints: np.ndarray | None = None
    renders: dict[Setting, list[bytes]] = field(default_factory=dict)
    source: str = ""  # e.g. "world:drop_one", "human:<annotator>"

    def judge_item(self, setting: Setting) -> JudgeItem:
        if setting not in self.renders:
            raise KeyError(f"item {self.item_id} has no renders for {setting.label()}")
        return JudgeItem(
            f"{self.item_id}@{setting.label()}", self.prompt, self.renders[setting], setting.form, setting.interval, self.joints
        )


# Renders one motion for one setting: (joints, setting, size) -> the images, PNG bytes. The judge
# service does not render; the caller passes how (atomctl through the renderer service, tests
# with the renderer's library).
RenderFn = Callable[[np.ndarray, "Setting", int], list[bytes]]


def render_settings(joints, settings: Sequence[Setting], size: int, render: RenderFn) -> dict[Setting, list[bytes]]:
    """The renders of one motion for each setting."""
    return {s: list(render(joints, s, size)) for s in settings}


def world_items(
    prompts: Sequence[PromptRecord],
    settings: Sequence[Setting],
    render: RenderFn,
    seed: int = 0,
    size: int = 256,
    max_frames: int | None = None,
) -> list[CalibrationItem]:
    """World clips performing every rubric level of every prompt (kinematic.ground_truth_cases),
    rendered for each setting."""
    from services.judge.kinematic import ground_truth_cases

    out = []
    for case in ground_truth_cases(prompts, seed, max_frames):
        prompt = next(p for p in prompts if case.item_id.startswith(p.prompt_id + ":"))
        out.append(
            CalibrationItem(
                case.item_id, prompt, case.truth, case.joints, render_settings(case.joints, settings, size, render), f"world:{case.variant}"
            )
        )
    return out


def world_cases(tasks: Sequence[str], n: int, seed: int = 0, max_frames: int | None = None):
    """n world clips with known truth, shared out over `tasks` (the first n % len(tasks) tasks get one
    more): for each task, the clips of every rubric level (kinematic.variants) of as many composed
    prompts as it takes. Returns [(PromptRecord, GroundTruthCase)]."""
    from services.judge.compose import compose_prompts
    from services.judge.kinematic import ground_truth_cases

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    tasks = list(dict.fromkeys(tasks))
    out = []
    for i, task in enumerate(tasks):
        want = n // len(tasks) + (i < n % len(tasks))
        if not want:
            continue
        count = math.ceil(want / 3)  # a prompt gives 4-5 clips, fewer when one is too long to compose
        while True:
            prompts = compose_prompts([task], count, seed)
            cases = ground_truth_cases(prompts, seed, max_frames)
            if len(cases) >= want or count >= want:
                break
            count *= 2
        by_id = {p.prompt_id: p for p in prompts}
        out += [(by_id[c.item_id.rsplit(":", 1)[0]], c) for c in cases[:want]]
    return out


def human_items(
    labels: Iterable[HumanLabel],
    settings: Sequence[Setting],
    render: RenderFn,
    base_dir: str | Path | None = None,
    store=None,
    size: int = 256,
) -> list[CalibrationItem]:
    """Human-labelled motions (services/judge/human.py), loaded and rendered for each setting."""
    out = []
    for lab in labels:
        joints = load_motion(lab.motion, base_dir, store)
        out.append(
            CalibrationItem(
                lab.label_id, lab.prompt, lab.score, joints, render_settings(joints, settings, size, render), f"human:{lab.annotator}"
            )
        )
    return out


@dataclass
class TaskCalibration:
    task: str
    setting: str  # "form/interval"
    n: int  # items of this task
    scored: int  # items the judge gave a score
    errors: int
    exact: float | None  # judge == truth, over the scored items
    within_one: float | None
    kappa: float | None
    labels: list[int]
    confusion: list[list[int]]  # rows: truth, columns: judge, in `labels` order
    cost_usd: float
    kinematic_exact: float | None  # judge == kinematic judge (items both scored)
    kinematic_truth: float | None  # kinematic judge == truth (the offline baseline)


@dataclass
class CalibrationResult:
    judge_id: str
    rows: list[TaskCalibration]
    kinematic_id: str = ""

    def to_dict(self) -> dict:
        return {"judge_id": self.judge_id, "kinematic_id": self.kinematic_id, "rows": [asdict(r) for r in self.rows]}

    def row(self, task: str, setting: Setting | str) -> TaskCalibration:
        label = setting.label() if isinstance(setting, Setting) else setting
        return next(r for r in self.rows if r.task == task and r.setting == label)

    def format(self) -> str:
        def f(x):
            return "  n/a" if x is None else f"{x:5.3f}"

        head = (
            f"{'task':<10} {'setting':<22} {'n':>4} {'scored':>6} {'exact':>5} {'±1':>5} {'kappa':>5} "
            f"{'vs kin':>6} {'kin ok':>6} {'cost $':>9}"
        )
        lines = [
            f"Calibration of {self.judge_id} against known scores"
            + (f" (kinematic judge: {self.kinematic_id})" if self.kinematic_id else ""),
            head,
            "-" * len(head),
        ]
        for r in self.rows:
            lines.append(
                f"{r.task:<10} {r.setting:<22} {r.n:>4} {r.scored:>6} {f(r.exact)} {f(r.within_one)} "
                f"{f(r.kappa)} {f(r.kinematic_exact):>6} {f(r.kinematic_truth):>6} {r.cost_usd:>9.4f}"
            )
        lines.append(
            "exact, ±1, kappa: the judge against the truth; vs kin: the judge against the kinematic judge; "
            "kin ok: the kinematic judge against the truth"
        )
        for r in self.rows:
            w = max(3, *(len(str(v)) for row in r.confusion for v in row))
            lines.append(f"confusion {r.task} {r.setting} (rows truth, columns judge):")
            lines.append("    " + " " * (w + 1) + " ".join(f"{lab:>{w}}" for lab in r.labels))
            lines += [f"    {lab:>{w}} " + " ".join(f"{v:>{w}}" for v in row) for lab, row in zip(r.labels, r.confusion)]
        return "\n".join(lines)


def _share(a: Sequence, b: Sequence) -> float | None:
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else None


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


JOINTS = "joints"  # the setting label of a judge that reads the joints (the kinematic judge): no renders


def calibrate(items: Sequence[CalibrationItem], judge, settings: Sequence[Setting], kinematic=None) -> CalibrationResult:
    """Score every item in every setting with `judge`; compare with the truth and the kinematic judge.
    With no settings the judge is given the joints (the kinematic judge), once, as setting "joints"."""
    items = list(items)
    kin: dict[str, int | None] = {}
    if kinematic is not None:
        for it in items:
            kin[it.item_id] = kinematic.score_labels(it.prompt.labels, it.joints, it.item_id).score if it.joints is not None else None
    rows = []
    runs: list[Setting | None] = [*settings] or [None]
    for setting in runs:
        label = setting.label() if setting is not None else JOINTS
        asked = [
            it.judge_item(setting) if setting is not None else JudgeItem(f"{it.item_id}@{JOINTS}", it.prompt, joints=it.joints)
            for it in items
        ]
        got: dict[str, Judgement] = {j.item_id: j for j in judge.score_batch(asked)}
        for task, allowed in ALLOWED_SCORES.items():
            sub = [it for it in items if it.prompt.task == task]
            if not sub:
                continue
            js = [got[f"{it.item_id}@{label}"] for it in sub]
            judged = [j.score if j.ok else None for j in js]
            truth = [it.truth for it in sub]
            rep = agreement(truth, judged, labels=allowed, names=("truth", getattr(judge, "judge_id", "judge")))
            kin_scores = [kin.get(it.item_id) for it in sub]
            rows.append(
                TaskCalibration(
                    task,
                    label,
                    len(sub),
                    sum(j.ok for j in js),
                    sum(not j.ok for j in js),
                    _num(rep.exact),
                    _num(rep.within_one),
                    _num(rep.kappa),
                    list(rep.labels),
                    rep.confusion,
                    round(sum(j.cost_usd for j in js if not j.cache_hit), 8),
                    _share(judged, kin_scores) if kinematic is not None else None,
                    _share(kin_scores, truth) if kinematic is not None else None,
                )
            )
    return CalibrationResult(getattr(judge, "judge_id", "judge"), rows, getattr(kinematic, "judge_id", "") if kinematic is not None else "")


class BatchScorer:
    """Adapts a BatchJudge (services/judge/batch.py) to `calibrate`'s judge interface."""

    def __init__(self, batch_judge):
        self.batch_judge = batch_judge
        self.judge_id = batch_judge.judge.judge_id

    def score_batch(self, items: Iterable[JudgeItem]) -> list[Judgement]:
        return self.batch_judge.run(items).judgements
