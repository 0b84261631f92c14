"""PNG plots of a Report: metric bars and judge scores with 95% CI error bars, win/tie/lose bars.

Pure functions from a Report (services.evaluator.report, which imports this module to save its
plots) to PNG bytes (matplotlib Agg, no display needed); the caller stores them. They read only
the report's models, tasks, rows, judge rows, comparisons and config.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from services.evaluator.records import METRIC_TITLES, METRICS, REAL  # noqa: E402

_COLOURS = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # A fixed metadata dict keeps the bytes free of the matplotlib version and timestamps.
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _grouped_bars(ax, tasks, series: list[tuple[str, list[float], list[float]]], title: str) -> None:
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(tasks))
    for i, (label, means, errs) in enumerate(series):
        m = np.array([np.nan if v is None else v for v in means], float)
        e = np.array([0.0 if (v is None or math.isnan(v)) else v for v in errs], float)
        ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            np.nan_to_num(m),
            width,
            yerr=e,
            capsize=3,
            label=label,
            color=_COLOURS[i % len(_COLOURS)],
        )
    ax.set_xticks(x)
    ax.set_xticklabels(tasks, rotation=0, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def metric_bars(report) -> bytes:
    """One panel per metric; bars per task, one per model (real motion first)."""
    models = [REAL] + report.models
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, metric in zip(axes.flat, METRICS):
        series = []
        for model in models:
            means, errs = [], []
            for task in report.tasks:
                try:
                    ci = report.row(task, model).metrics[metric]
                    means.append(ci.mean)
                    errs.append(ci.half_width)
                except KeyError:
                    means.append(float("nan"))
                    errs.append(float("nan"))
            series.append((model, means, errs))
        _grouped_bars(ax, report.tasks, series, METRIC_TITLES[metric])
    axes.flat[-1].axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[-1].legend(handles, labels, loc="center", title="model")
    fig.suptitle(f"Text-motion metrics (mean ± 95% CI, {report.config.get('replications')} replications)")
    return _png(fig)


def judge_bars(report) -> bytes:
    """Mean judge score per task and model, CI across prompts."""
    fig, ax = plt.subplots(figsize=(8, 4))
    series = []
    for model in report.models:
        means, errs = [], []
        for task in report.tasks:
            hit = [j for j in report.judge if j.task == task and j.model == model]
            means.append(hit[0].score.mean if hit else float("nan"))
            errs.append(hit[0].score.half_width if hit else float("nan"))
        series.append((model, means, errs))
    _grouped_bars(ax, report.tasks, series, "Judge score per task (mean ± 95% CI over prompts)")
    ax.legend(fontsize=8)
    return _png(fig)


def win_rate_bars(report) -> bytes:
    """Stacked win / tie / lose shares of each model against the baseline, per task."""
    fig, ax = plt.subplots(figsize=(8, 0.6 * max(len(report.comparisons), 1) + 1.5))
    labels = [f"{c.task}: {c.model} vs {c.baseline}" for c in report.comparisons]
    y = np.arange(len(labels))
    left = np.zeros(len(labels))
    for attr, colour, name in (("win_rate", "#2ca02c", "win"), ("tie_rate", "#c7c7c7", "tie"), ("lose_rate", "#d62728", "lose")):
        vals = np.array([getattr(c.outcome, attr) for c in report.comparisons], float)
        ax.barh(y, vals, left=left, color=colour, label=name)
        for yi, (start, v) in enumerate(zip(left, vals)):
            if v >= 0.08:
                ax.text(start + v / 2, yi, f"{v:.0%}", ha="center", va="center", fontsize=8)
        left += vals
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of prompts")
    ax.set_title("Per-prompt outcome against the baseline (mean judge score)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _png(fig)


def render_plots(report) -> dict[str, bytes]:
    out = {"metrics": metric_bars(report)}
    if report.judge:
        out["judge_scores"] = judge_bars(report)
    if report.comparisons:
        out["win_rates"] = win_rate_bars(report)
    return out
