"""benchmarks/scale.py: its fitting, extrapolation and check maths exactly, as pure functions; and
one run of the script at tiny sizes on real services (structure only: at a few dozen motions the
exponents are noise, so that run is --no-check)."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "scale.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


scale = _load()


def test_fit_power_recovers_an_exact_power_law():
    ns = [100, 400, 1600, 6400]
    b, a = scale.fit_power(ns, [3.0 * n**1.5 for n in ns])
    assert b == pytest.approx(1.5, abs=1e-12)
    assert a == pytest.approx(math.log(3.0), abs=1e-12)
    b, _ = scale.fit_power([10, 20], [7.0, 7.0])
    assert b == pytest.approx(0.0, abs=1e-12)


def test_fit_power_is_least_squares_on_logs():
    # Points off the line: the slope is the least-squares slope of log y on log n.
    ns, ys = [1, math.e, math.e**2], [1.0, math.e**2, math.e**2]
    b, a = scale.fit_power(ns, ys)
    assert b == pytest.approx(1.0)  # x = 0,1,2; y = 0,2,2: slope 1, intercept 4/3 - 1
    assert a == pytest.approx(1 / 3)


def test_fit_power_needs_two_sizes():
    with pytest.raises(ValueError):
        scale.fit_power([100, 100], [1.0, 2.0])
    with pytest.raises(ValueError):
        scale.fit_power([100], [1.0])


def test_extrapolate_follows_the_fit_from_the_largest_point():
    ns = [1000, 5000, 20000]
    ts = [2.0 * n for n in ns]
    assert scale.extrapolate(ns, ts, 47_100) == pytest.approx(2.0 * 47_100)
    ts = [0.5 * n**1.2 for n in ns]
    assert scale.extrapolate(ns, ts, 47_100) == pytest.approx(0.5 * 47_100**1.2)
    # From the largest point, not the intercept: a constant stage stays at its measured time.
    assert scale.extrapolate(ns, [4.0, 4.0, 4.0], 47_100) == pytest.approx(4.0)
    assert scale.extrapolate_linear(ns, [4.0, 5.0, 8.0], 40_000) == pytest.approx(16.0)


def test_fit_linear_is_exact_on_a_line():
    s, a = scale.fit_linear([200, 500, 1000], [100.0 + 0.02 * n for n in (200, 500, 1000)])
    assert s == pytest.approx(0.02) and a == pytest.approx(100.0)
    with pytest.raises(ValueError):
        scale.fit_linear([5, 5], [1.0, 2.0])


def test_growth_ratio_and_motion_counts():
    assert scale.growth_ratio([500, 100, 200], [150.0, 100.0, 120.0]) == pytest.approx(1.5)
    assert scale.motions_for(1000, 8) == (42, 1008)
    assert scale.motions_for(24, 8) == (1, 24)
    assert scale.motions_for(1, 8) == (1, 24)


def test_check_curve_flags_superlinear_time_and_growing_memory():
    ns = [100, 1000]
    ok = {"k": {"n": ns, "seconds": {"generate": [1.0, 10.0]}, "rss": {"controller (generate)": [100, 120]}}}
    assert scale.check_curve(ok, 1.1, 1.25) == []
    slow = {"k": {"n": ns, "seconds": {"judge": [1.0, 10**1.3]}, "rss": {}}}
    (msg,) = scale.check_curve(slow, 1.1, 1.25)
    assert "judge" in msg and "N^1.30" in msg
    fat = {"k": {"n": ns, "seconds": {}, "rss": {"trainer (pairs)": [100, 130]}}}
    (msg,) = scale.check_curve(fat, 1.1, 1.25)
    assert "trainer (pairs)" in msg and "x1.30" in msg
    # Exactly at the limits passes; one size alone is not judged.
    edge = {"k": {"n": ns, "seconds": {"s": [1.0, 10**1.1]}, "rss": {"p": [100, 125]}}}
    assert scale.check_curve(edge, 1.1 + 1e-9, 1.25) == []
    assert scale.check_curve({"k": {"n": [5], "seconds": {"s": [1.0]}, "rss": {"p": [1]}}}, 1.1, 1.25) == []
    # A stage too short to time is not judged; the same curve scaled up is.
    short = {"k": {"n": ns, "cpu": {"pairs": [0.01, 0.2]}, "rss": {}}}
    assert scale.check_curve(short, 1.1, 1.25, "cpu", min_seconds=1.0) == []
    longer = {"k": {"n": ns, "cpu": {"pairs": [1.0, 20.0]}, "rss": {}}}
    (msg,) = scale.check_curve(longer, 1.1, 1.25, "cpu", min_seconds=1.0)
    assert "pairs services' CPU time grows as N^1.30" in msg


@pytest.mark.slow
def test_script_runs_at_tiny_sizes_and_prints_its_tables(tmp_path):
    env = {**os.environ, "ATOM_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--sizes",
            "6,12",
            "--samples",
            "2",
            "--replicas",
            "1",
            "--world-clips",
            "100",
            "--render-size",
            "64",
            "--no-check",
            "--workdir",
            str(tmp_path / "w"),
            "--json",
            str(tmp_path / "scale.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "| stage | N | stage s | process s | controller CPU s | services CPU s | items | items/s | controller MB |" in text
    for stage in ("prompts", "generate", "render", "judge", "pairs"):
        assert f"| {stage} | 6 |" in text and f"| {stage} | 12 |" in text
    assert "exponents of stage time: prompts" in text and "exponents of the services' CPU time: prompts" in text
    assert "largest peak-RSS ratios" in text and "MB per 1,000 motions" in text
    assert "## Extrapolated to 47,100 judged motions" in text
    assert "GPT-4o judge" in text and "synchronous" in text
    assert "check skipped (--no-check)" in text
