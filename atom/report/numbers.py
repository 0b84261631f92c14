"""How the run browser and the model card show a measured figure."""

from __future__ import annotations


def format_stat(stat: dict | None) -> str:
    """{"mean": m, "ci95": c} -> "m ± c" with three decimals; "–" when there is no figure."""
    if not stat or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.3f} ± {stat.get('ci95', 0.0):.3f}"
