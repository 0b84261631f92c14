"""The run browser's data and pages, without a browser: what is collected, what is picked for
video, the tables and the charts."""

import re
import sys
from pathlib import Path

import pytest

from atom.report.charts import line_chart
from atom.report.collect import RunNotReady, collect, pick_for_video
from atom.report.site import SiteOptions, build_site, summary_tables
from atom.store import LocalStore

sys.path.insert(0, str(Path(__file__).parent))
from runfiles import write_run  # noqa: E402


@pytest.fixture
def run(tmp_path):
    store = LocalStore(tmp_path / "store")
    return store, write_run(store)


def test_cards_hold_both_models_and_the_outcome(run):
    store, facts = run
    view = collect(store, "demo")
    assert [c.prompt_id for c in view.cards] == [p["prompt_id"] for p in facts["prompts"]]
    for card in view.cards:
        assert card.outcome == facts["expected"][card.prompt_id]
        assert card.base.samples == card.tuned.samples == 3
        assert card.base.motion != card.tuned.motion
        assert card.base.rationale.startswith(f"base sample 0 of {card.prompt_id}")
        assert "detected:" in card.base.rationale
    # The outcome counts are the report's win / tie / loss.
    for c in view.report["comparisons"]:
        cards = [k for k in view.cards if k.task == c["task"]]
        assert (c["win"], c["tie"], c["lose"]) == tuple(sum(k.outcome == o for k in cards) for o in ("better", "same", "worse"))
    assert len(view.pairs) == facts["pairs"] and len(view.history) == facts["history"]


def test_judge_reliability_per_task(run):
    store, facts = run
    rel = {t.task: t for t in collect(store, "demo").reliability}
    assert set(rel) == {"integrity", "temporal", "frequency"}
    for t in rel.values():
        assert (t.motions, t.scored, t.votes) == (4, 3, 3)
        assert t.mean_agreement == pytest.approx((2 / 3 + 1 + 1) / 3) and t.unanimous == pytest.approx(2 / 3)
        assert t.scores == {"1": 1, "2": 2}
        assert t.pairs == sum(p["task"] == t.task for p in facts["prompts"])
    assert rel["temporal"].dropped_low_agreement == 1 and rel["integrity"].dropped_low_agreement == 0


def test_videos_are_picked_across_outcomes(run):
    store, _ = run
    cards = collect(store, "demo").cards
    picked = pick_for_video(cards, 3)
    for task in ("integrity", "temporal", "frequency"):
        assert {c.outcome for c in picked if c.task == task} == {"better", "same", "worse"}
    assert len(pick_for_video(cards, 0)) == 0


def test_an_unfinished_run_says_what_to_do(tmp_path):
    store = LocalStore(tmp_path / "store")
    with pytest.raises(RunNotReady, match="atomctl run-pipeline --run nope"):
        collect(store, "nope")


def test_tables_and_charts():
    tables = summary_tables(
        {
            "models": ["base", "atom"],
            "judge": [
                {"task": "t", "model": "base", "score": {"mean": 1.0, "ci95": 0.1}},
                {"task": "t", "model": "atom", "score": {"mean": 1.5, "ci95": 0.2}},
            ],
            "comparisons": [{"task": "t", "win": 3, "tie": 1, "lose": 0, "improved": False, "difference": {"mean": 0.5, "ci95": 0.6}}],
            "rows": [{"task": "general", "model": "base", "metrics": {"fid": {"mean": 0.25, "ci95": 0.01}}}],
        }
    )
    assert tables["judge_rows"] == [
        {
            "task": "t",
            "scores": ["1.000 ± 0.100", "1.500 ± 0.200"],
            "difference": "0.500 ± 0.600",
            "wtl": "3 / 1 / 0",
            "verdict": "not significant",
        }
    ]
    assert tables["metric_names"] == ["FID"] and tables["metric_rows"] == [{"model": "base", "cells": ["0.250 ± 0.010"]}]
    svg = line_chart("loss", [1, 2, 3], {"loss": [3.0, 2.0, 1.0]}, width=100, height=60)
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    # x from the left margin to the right edge, y from the top (highest loss) to the bottom.
    assert points[0] == "56.0,28.0" and points[-1] == "88.0,32.0"
    assert "no data" in line_chart("empty", [], {})


def test_the_site_is_self_contained(run):
    store, _ = run
    fake_webm = {}

    def render(keys):  # the renderer service is exercised by the browser test; here: the layout only
        fake_webm.update({k: b"\x1a\x45\xdf\xa3" + k.encode() for k in keys})
        return {k: fake_webm[k] for k in keys}

    view = collect(store, "demo")
    index = build_site(store, view, render, SiteOptions(cards_per_task=2, pair_videos=1))
    root = Path(store.root) / index.rsplit("/", 1)[0]
    assert 'id="reliability-table"' in (root / "index.html").read_text()
    for page in ("index.html", "pairs.html", "training.html"):
        html = (root / page).read_text()
        for link in re.findall(r'(?:src|href)="([^"#]+)"', html):
            assert "://" not in link, f"{page} links outside the site: {link}"
            assert (root / link).is_file(), f"{page} links to a missing file {link}"
    # Videos for the picked cards (both sides) and the first pair, each motion once.
    wanted = {side.motion for c in pick_for_video(view.cards, 2) for side in (c.base, c.tuned)}
    wanted |= {view.pairs[0].chosen, view.pairs[0].rejected}
    assert set(fake_webm) == wanted and len(list((root / "videos").iterdir())) == len(wanted)


def test_the_model_card_gets_the_measured_gains(run):
    from atom.report.modelcard import HEADING, add_evaluation

    store, _ = run
    view = collect(store, "demo")
    assert add_evaluation(store, view.adapter, view.report, "demo") is None  # no card: nothing written
    store.put_bytes(f"{view.adapter}/README.md", b"---\nbase_model: b\n---\n# card\n\n## Evaluation\n\nNot yet.\n")
    key = add_evaluation(store, view.adapter, view.report, "demo")
    card = store.get_bytes(key).decode()
    assert card.startswith("---\nbase_model: b\n---\n# card") and card.count(HEADING) == 1
    assert "Not yet" not in card and "| temporal | 1.000 ± 0.050 | 1.200 ± 0.050 | 0.200 ± 0.050 |" in card
    assert "| FID | 0.500 ± 0.050 | 0.500 ± 0.050 |" in card
    assert add_evaluation(store, view.adapter, view.report, "demo") == key  # rerun: replaced, not appended
    assert store.get_bytes(key).decode() == card
