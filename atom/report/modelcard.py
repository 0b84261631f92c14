"""The measured gains in the adapter's model card.

The trainer writes the card (README.md in the adapter folder) with what it knows: base model,
pairs, loss and hyperparameters, and a placeholder under "## Evaluation". After the evaluation the
controller replaces that section with what the run measured, so the card travels with the
adapter and says what it does.
"""

from __future__ import annotations

from atom.report.numbers import format_stat
from atom.store import ArtifactNotFound, ArtifactStore

HEADING = "## Evaluation"


def evaluation_section(report: dict, run: str) -> str:
    """The card's evaluation section from the evaluator's report.json (a pure function)."""
    lines = [
        HEADING,
        "",
        f"Measured by `atomctl run-pipeline --run {run}` on held-out event-level prompts (paired per prompt, 95% confidence intervals):",
        "",
        "| task | base | tuned | difference | win / tie / loss | improved |",
        "|---|---|---|---|---|---|",
    ]
    judge = {(r["task"], r["model"]): r["score"] for r in report.get("judge", [])}
    models = report.get("models", [])
    baseline, tuned = (models + ["", ""])[:2]
    for c in report.get("comparisons", []):
        base_score, tuned_score = judge.get((c["task"], baseline)), judge.get((c["task"], tuned))
        lines.append(
            f"| {c['task']} | {format_stat(base_score)} | {format_stat(tuned_score)} | "
            f"{format_stat(c.get('difference'))} | {c['win']} / {c['tie']} / {c['lose']} | "
            f"{'yes' if c.get('improved') else 'no'} |"
        )
    general = {r["model"]: r["metrics"] for r in report.get("rows", []) if r["task"] == "general"}
    if baseline in general and tuned in general:
        lines += ["", "Text-to-motion metrics on the test split:", "", "| metric | base | tuned |", "|---|---|---|"]
        for key, label in (("fid", "FID"), ("r1", "R@1"), ("r3", "R@3"), ("mm_dist", "MM-Dist"), ("diversity", "Diversity")):
            if key in general[baseline]:
                before, after = general[baseline].get(key), general[tuned].get(key)
                lines.append(f"| {label} | {format_stat(before)} | {format_stat(after)} |")
    evaluator = report.get("evaluator", {}).get("name", "")
    if evaluator:
        lines += ["", f"Evaluator: {evaluator}."]
    return "\n".join(lines) + "\n"


def add_evaluation(store: ArtifactStore, adapter_prefix: str, report: dict, run: str) -> str | None:
    """Replace the card's evaluation section; returns the card's key, or None when the adapter has
    no card (trained before cards were written)."""
    key = f"{adapter_prefix.rstrip('/')}/README.md"
    try:
        card = store.get_bytes(key).decode()
    except ArtifactNotFound:
        return None
    head = card.split(HEADING, 1)[0].rstrip() + "\n\n"
    store.put_bytes(key, (head + evaluation_section(report, run)).encode(), "text/markdown")
    return key
