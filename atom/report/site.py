"""The run browser: a static site for one run, written into the store under reports/<run>/site/.

Pages: index.html (summary tables, plots, a card per held-out prompt with the base and the tuned
motion side by side, filters), pairs.html (training pairs), training.html (loss, margin and reward
curves). Every file the pages use is written next to them (CSS, script, plots, WebM videos) with
relative links, so the folder opens from a local store with a double click and serves from an
S3/MinIO bucket or any static host. Videos are rendered only for the cards and pairs shown with
video, through the renderer service (which caches them by motion content).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from atom.report.charts import line_chart
from atom.report.collect import RunView, TaskReliability, pick_for_video
from atom.report.numbers import format_stat
from atom.store import ArtifactStore

# What render_webm returns: motion key -> WebM bytes.
RenderWebm = Callable[[list[str]], dict[str, bytes]]

METRICS = (
    ("r1", "R@1"),
    ("r2", "R@2"),
    ("r3", "R@3"),
    ("fid", "FID"),
    ("mm_dist", "MM-Dist"),
    ("diversity", "Diversity"),
    ("mmodality", "MModality"),
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
    ".webm": "video/webm",
}


@dataclass(frozen=True)
class SiteOptions:
    cards_per_task: int = 8  # held-out prompts per task shown with videos (the rest: scores only)
    pair_videos: int = 6  # training pairs shown with videos
    video_size: int = 160  # pixels, square

    def __post_init__(self) -> None:
        if self.cards_per_task < 0 or self.pair_videos < 0:
            raise ValueError("cards_per_task and pair_videos must be >= 0")
        if self.video_size % 2 or not 32 <= self.video_size <= 1024:
            raise ValueError(f"video_size must be even and within 32..1024, got {self.video_size}")


def site_prefix(run: str) -> str:
    return f"reports/{run}/site"


def site_location(store_url: str, index_key: str) -> str:
    """Where a person opens the site: a file path for a local store, the key for S3."""
    if "://" not in store_url or store_url.startswith("file://"):
        root = store_url.removeprefix("file://")
        return str(Path(root) / index_key)
    return f"{store_url.rstrip('/')}/{index_key}"


def summary_tables(report: dict) -> dict:
    """The summary tables' rows as display strings (a pure function of report.json)."""
    models = list(report.get("models", []))
    judge = {(r["task"], r["model"]): r["score"] for r in report.get("judge", [])}
    comparisons = {r["task"]: r for r in report.get("comparisons", [])}
    judge_rows = []
    for task in dict.fromkeys(r["task"] for r in report.get("judge", [])):
        c = comparisons.get(task, {})
        judge_rows.append(
            {
                "task": task,
                "scores": [format_stat(judge.get((task, m))) for m in models],
                "difference": format_stat(c.get("difference")),
                "wtl": f"{c['win']} / {c['tie']} / {c['lose']}" if c else "–",
                "verdict": "improved" if c.get("improved") else ("" if not c else "not significant"),
            }
        )
    general = [r for r in report.get("rows", []) if r["task"] == "general"]
    names = [(k, label) for k, label in METRICS if any(k in r["metrics"] for r in general)]
    metric_rows = [{"model": r["model"], "cells": [format_stat(r["metrics"].get(k)) for k, _ in names]} for r in general]
    return {"models": models, "judge_rows": judge_rows, "metric_names": [label for _, label in names], "metric_rows": metric_rows}


def calibration_table(table: dict | None) -> dict | None:
    """The judge calibration's rows as display strings, each with its confusion matrix."""
    if not table:
        return None

    def share(x) -> str:
        return "–" if x is None else f"{x:.3f}"

    rows = [
        {
            "task": r["task"],
            "setting": r["setting"],
            "n": r["n"],
            "scored": r["scored"],
            "exact": share(r["exact"]),
            "within_one": share(r["within_one"]),
            "kappa": share(r["kappa"]),
            "kinematic_exact": share(r.get("kinematic_exact")),
            "kinematic_truth": share(r.get("kinematic_truth")),
            "cost": f"${r['cost_usd']:.4f}",
            "labels": r["labels"],
            "confusion": r["confusion"],
        }
        for r in table.get("rows", [])
    ]
    made = table.get("created")
    return {
        "judge": table.get("judge_id", ""),
        "kinematic": table.get("kinematic_id", ""),
        "rows": rows,
        "cases": table.get("cases"),
        "sources": ", ".join(table.get("sources", [])),
        "made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(made)) if made else "",
    }


def reliability_rows(tasks: list[TaskReliability]) -> list[dict]:
    """The judge stage's reliability per task as display strings."""

    def share(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    return [
        {
            "task": t.task,
            "motions": t.motions,
            "scored": t.scored,
            "votes": t.votes,
            "agreement": share(t.mean_agreement),
            "unanimous": share(t.unanimous),
            "scores": ", ".join(f"{s}: {n}" for s, n in t.scores.items()) or "–",
            "dropped": t.dropped_low_agreement,
            "pairs": t.pairs,
        }
        for t in tasks
    ]


def training_charts(history: list[dict]) -> list[str]:
    steps = [float(h["step"]) for h in history]

    def series(*names: str) -> dict[str, list[float]]:
        return {n: [float(h.get(n, 0.0)) for h in history] for n in names if any(n in h for h in history)}

    return [
        line_chart("loss", steps, series("loss")),
        line_chart("margin (chosen minus rejected log-ratio)", steps, series("margin")),
        line_chart("rewards", steps, series("chosen_reward", "rejected_reward")),
        line_chart("pair accuracy", steps, series("accuracy")),
    ]


def build_site(store: ArtifactStore, view: RunView, render_webm: RenderWebm, options: SiteOptions = SiteOptions()) -> str:
    """Write the site for `view` into the store; returns the key of its index.html."""
    prefix = site_prefix(view.run)
    shown = pick_for_video(view.cards, options.cards_per_task)
    wanted = [side.motion for c in shown for side in (c.base, c.tuned) if side.motion]
    wanted += [k for p in view.pairs[: options.pair_videos] for k in (p.chosen, p.rejected)]
    webm = render_webm(list(dict.fromkeys(wanted))) if wanted else {}
    videos = {}
    for motion, data in webm.items():
        name = f"videos/{motion.rsplit('/', 1)[-1].split('.')[0][:16]}.webm"
        _put(store, f"{prefix}/{name}", data)
        videos[motion] = name
    plots = []
    for key in view.plots:
        name = f"plots/{key.rsplit('/', 1)[-1]}"
        _put(store, f"{prefix}/{name}", store.get_bytes(key))
        plots.append(name)
    # Cards with videos first, so the page opens on something to watch.
    with_video = {c.prompt_id for c in shown}
    cards = sorted(view.cards, key=lambda c: c.prompt_id not in with_video)
    env = Environment(
        loader=PackageLoader("atom.report", "templates"),
        autoescape=select_autoescape(["j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    common = {"run": view.run, "videos": videos, "video_size": options.video_size}
    pages = {
        "index.html": env.get_template("index.html.j2").render(
            **common,
            page="index",
            title="Results",
            plots=plots,
            cards=cards,
            tasks=list(dict.fromkeys(c.task for c in view.cards)),
            **summary_tables(view.report),
            calibration=calibration_table(view.calibration),
            reliability=reliability_rows(view.reliability),
        ),
        "pairs.html": env.get_template("pairs.html.j2").render(
            **common, page="pairs", title="Training pairs", pairs=view.pairs, pairs_total=view.pairs_total
        ),
        "training.html": env.get_template("training.html.j2").render(
            **common,
            page="training",
            title="Training run",
            adapter=view.adapter,
            config=view.train_config,
            steps=len(view.history),
            charts=training_charts(view.history),
        ),
    }
    for name in ("site.css", "site.js"):
        _put(store, f"{prefix}/{name}", resources.files("atom.report").joinpath("static", name).read_bytes())
    for name, html in pages.items():
        _put(store, f"{prefix}/{name}", html.encode())
    return f"{prefix}/index.html"


def _put(store: ArtifactStore, key: str, data: bytes) -> None:
    suffix = "." + key.rsplit(".", 1)[-1]
    store.put_bytes(key, data, CONTENT_TYPES.get(suffix, "application/octet-stream"))
