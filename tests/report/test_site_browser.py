"""The run browser as a person sees it: headless Chromium opens the site from the store's files,
the videos (rendered by a real renderer service) load and play in step, the filters and the
search change what is shown, and the other pages draw their tables and curves. A screenshot is
kept as a test artifact (ATOM_TEST_ARTIFACTS, else the test's temporary folder)."""

import os
import shutil
import sys
from pathlib import Path

import pytest

from atom.report.collect import collect
from atom.report.site import SiteOptions, build_site
from atom.report.videos import webm_renderer

sys.path.insert(0, str(Path(__file__).parent))
from runfiles import write_run  # noqa: E402

INSTALL = "apt-get install --no-install-recommends chromium (make test does it when run as root)"


def chromium() -> str:
    path = os.environ.get("ATOM_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
    )
    if path:
        return path
    if os.environ.get("ATOM_SKIP_BROWSER") == "1":
        pytest.skip("ATOM_SKIP_BROWSER=1 and no Chromium")
    pytest.fail(f"the browser test needs Chromium: {INSTALL}; or set ATOM_CHROMIUM to its path")


@pytest.fixture
def site(start, tmp_path):
    r = start("renderer")
    facts = write_run(r.store)
    view = collect(r.store, "demo")
    index = build_site(r.store, view, webm_renderer(r.store, r.client, 96), SiteOptions(cards_per_task=3, pair_videos=2, video_size=96))
    return Path(r.store.root) / index, facts, view


def test_the_run_browser_in_chromium(site, tmp_path):
    from playwright.sync_api import sync_playwright

    index, facts, view = site
    artifacts = Path(os.environ.get("ATOM_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(index.as_uri())

            cards = page.locator("#cards .card")
            assert cards.count() == len(facts["prompts"])
            assert page.locator("#judge-table tbody tr").count() == 3
            # Every picked card has two videos; they load, play, and stay in step.
            videos = page.locator("#cards video")
            assert videos.count() == 2 * 3 * 3
            page.wait_for_function("Array.from(document.querySelectorAll('#cards video')).every(v => v.readyState >= 2)", timeout=30_000)
            page.wait_for_function(
                "Array.from(document.querySelectorAll('#cards video')).every(v => !v.paused && v.currentTime > 0.3)", timeout=30_000
            )
            drift = page.evaluate("""Array.from(document.querySelectorAll('#cards .card')).map(c => {
                const v = c.querySelectorAll('video'); if (v.length < 2) return 0;
                return Math.abs(v[0].currentTime - v[1].currentTime); })""")
            assert max(drift) < 0.5, drift
            sizes = page.evaluate("Array.from(document.querySelectorAll('#cards video')).map(v => [v.videoWidth, v.videoHeight])")
            assert all(s == [96, 96] for s in sizes)
            page.screenshot(path=str(artifacts / "run-browser.png"))

            # Filters: task, outcome, text; the count follows.
            def shown():
                return page.locator("#cards .card:not(.hidden)").count()

            page.select_option("#filter-task", "temporal")
            assert shown() == sum(p["task"] == "temporal" for p in facts["prompts"])
            page.select_option("#filter-outcome", "worse")
            expected = [pid for pid, o in facts["expected"].items() if o == "worse" and pid.startswith("tem")]
            assert shown() == len(expected)
            assert page.inner_text("#filter-count") == f"{len(expected)} prompts"
            page.select_option("#filter-task", "")
            page.select_option("#filter-outcome", "")
            page.fill("#filter-text", "squat kick")
            assert shown() == sum("squat" in p["text"] and "kick" in p["text"] for p in facts["prompts"]) > 0
            page.fill("#filter-text", "no-such-words")
            assert shown() == 0

            page.click("text=Training pairs")
            assert page.locator("#pairs-table tbody tr").count() == facts["pairs"]
            page.wait_for_function(
                "Array.from(document.querySelectorAll('#pairs-table video')).every(v => v.readyState >= 2)", timeout=30_000
            )
            # The first two pairs were asked for with videos (later ones may share rendered motions).
            rows = page.locator("#pairs-table tbody tr")
            assert rows.nth(0).locator("video").count() == 2 and rows.nth(1).locator("video").count() == 2

            page.click("text=Training run")
            polylines = page.locator("svg polyline")
            assert polylines.count() == 5  # loss, margin, chosen and rejected rewards, accuracy
            points = polylines.first.get_attribute("points").split()
            assert len(points) == facts["history"]
            assert errors == []
        finally:
            browser.close()
