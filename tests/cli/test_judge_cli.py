"""`atomctl judge estimate`, the confirmation before the VLM judge spends, and `atomctl judge
calibrate`, as a user runs them: real atomctl processes, real services on loopback, the local
OpenAI-compatible test server (tests/judge/fake_openai.py) as the VLM."""

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atom.mgpt.bundle import save_bundle
from atom.runtime.launch import LocalServices
from atom.store import LocalStore

sys.path.insert(0, str(Path(__file__).parents[1] / "generator"))
sys.path.insert(0, str(Path(__file__).parents[1] / "judge"))
sys.path.insert(0, str(Path(__file__).parents[1] / "report"))
from fake_openai import FakeOpenAI, score_reply  # noqa: E402
from gen_tiny_models import make_tiny_bundle  # noqa: E402
from runfiles import write_run  # noqa: E402

# A small VLM run: 2 integrity prompts x 2 motions, rendered at 64 px, one full image each.
RUN = [
    "--run",
    "spend",
    "--base-model",
    "models/base",
    "--world-clips",
    "100",
    "--tasks",
    "integrity",
    "--prompts-per-task",
    "2",
    "--eval-prompts-per-task",
    "2",
    "--samples-per-prompt",
    "2",
    "--judge",
    "vlm",
    "--judge-model",
    "fake-vlm",
    "--form",
    "full_image",
    "--set",
    "render.size=64",
    "--quiet",
]
STRICT = ["--set", "judge.confirm_above_usd=0.0001"]  # any paid question is above it
KEY = "sk-test-judge-cli-00000000"


def top_score(req, n):
    """The test VLM's verdict: always the task's top score."""
    text = json.dumps(req["messages"])
    return score_reply(3 if "Task: frequency" in text else 5, completion_tokens=20)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """A store with a tiny base model, the five services on loopback (the judge asking the local
    test server, which counts prompt tokens by the documented rule), and how to call atomctl."""
    root = tmp_path_factory.mktemp("judge-cli")
    save_bundle(LocalStore(root / "store"), "models/base", make_tiny_bundle())
    env = {"ATOM_JUDGE_API_KEY": KEY, "ATOM_CACHE_DIR": str(root / "cache")}
    with FakeOpenAI(top_score, count_tokens=True) as fake:
        env["ATOM_JUDGE_BASE_URL"] = fake.base_url
        with LocalServices(str(root / "store"), log_dir=root / "logs", extra_env=env) as services:
            services.wait_ready()
            endpoints = [a for s, addr in services.endpoints().items() for a in ("--endpoint", f"{s}={addr}")]

            def atomctl(*args, stdin=None):
                return subprocess.run(
                    [sys.executable, "-m", "atom.cli", "--store", str(root / "store"), *endpoints, *args],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    stdin=stdin,
                    env={**os.environ, **env},
                    cwd=root,
                )

            yield {
                "root": root,
                "store": root / "store",
                "fake": fake,
                "atomctl": atomctl,
                "endpoints": endpoints,
                "env": {**os.environ, **env},
            }


def _stages(store: Path, run: str = "spend") -> dict:
    return json.loads((store / f"runs/{run}/manifest.json").read_text())["stages"]


def _number(pattern: str, text: str) -> int:
    return int(re.search(pattern, text).group(1).replace(",", ""))


def _on_a_terminal(system, args, answer: str) -> tuple[int, str]:
    """atomctl with a pseudo-terminal as its stdin (a person at the keyboard) typing `answer`."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "atom.cli", "--store", str(system["store"]), *system["endpoints"], *args],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=system["env"],
        cwd=system["root"],
    )
    os.close(follower)
    os.write(leader, answer.encode())
    out, _ = proc.communicate(timeout=600)
    os.close(leader)
    return proc.returncode, out


@pytest.mark.slow  # five atomctl processes: about a minute
def test_vlm_spend_is_estimated_then_confirmed(system):
    """run-pipeline stops before the VLM judge when the estimate is above judge.confirm_above_usd
    and nobody can be asked; a person at a terminal is asked; --yes goes on; and the estimate's
    image tokens are what the test server counts, its input within the stated text bound."""
    fake, atomctl, store = system["fake"], system["atomctl"], system["store"]

    out = atomctl("run-pipeline", *RUN, *STRICT)
    assert out.returncode == 6, out.stderr
    assert "judge.confirm_above_usd" in out.stderr and "--yes" in out.stderr and "nothing was asked" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert fake.calls == 0
    stages = _stages(store)
    assert stages["render"]["state"] == "done" and "judge" not in stages  # the judge stage was never started

    est = atomctl("judge", "estimate", *RUN)
    assert est.returncode == 0, est.stderr
    text = est.stdout
    for needle in (
        "Judge estimate for fake-vlm",
        "4 to ask",
        "sizes: ",
        "per question",
        "cost, synchronous",
        "cost, Batch API",
        "image rule:",
        "text rule:",
        "platform.openai.com",
    ):
        assert needle in text, needle
    assert fake.calls == 0  # estimating asks nothing

    code, said = _on_a_terminal(system, ["judge", *RUN, *STRICT], "n\n")
    assert code == 6 and "Spend it?" in said and "Judge estimate for fake-vlm" in said, said
    assert fake.calls == 0 and "judge" not in _stages(store)

    fake.counted.clear()
    out = atomctl("judge", *RUN, *STRICT, "--yes")
    assert out.returncode == 0, out.stderr
    assert fake.calls == len(fake.counted) == _number(r"(\d+) to ask", text)
    assert _stages(store)["judge"]["state"] == "done"
    images = _number(r"images ([\d,]+) exact by the rule", text)
    text_bound = _number(r"text <= ([\d,]+)", text)
    counted_input = sum(c["prompt_tokens"] for c in fake.counted)
    assert images == sum(c["image_tokens"] for c in fake.counted)  # exact, by the documented rule
    assert 0 <= _number(r"input tokens +([\d,]+)", text) - counted_input <= text_bound  # text: an upper bound

    again = atomctl("judge", "estimate", *RUN)
    assert "0 to ask" in again.stdout and "has finished already" in again.stdout


def test_calibrate_kinematic_then_vlm_and_the_run_browser_shows_it(system):
    atomctl, fake = system["atomctl"], system["fake"]
    out = atomctl("judge", "calibrate", "--judge", "kinematic", "--n", "6", "--quiet", *STRICT)  # free: never asks
    assert out.returncode == 0, out.stderr
    assert "Calibration of kinematic-v1" in out.stdout and "confusion integrity joints (rows truth, columns judge)" in out.stdout
    calls = fake.calls
    out = atomctl(
        "judge",
        "calibrate",
        "--judge",
        "vlm",
        "--judge-model",
        "fake-vlm",
        "--n",
        "6",
        "--forms",
        "full_image,frame_by_frame",
        "--intervals",
        "16",
        "--set",
        "render.size=64",
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert fake.calls - calls == 2 * 6  # every clip, in both forms
    for needle in (
        "Calibration of vlm:fake-vlm",
        "kinematic judge: kinematic-v1",
        "full-image/16",
        "frame-by-frame/16",
        "confusion frequency frame-by-frame/16",
        "table saved in the store as judge/calibration/",
    ):
        assert needle in text, needle
    # The test VLM always gives the top score: on integrity, right exactly for the clips whose truth is 5.
    key = text.rsplit("as ", 1)[1].strip()
    table = json.loads((system["store"] / key).read_text())
    assert table["settings"] == ["full-image/16", "frame-by-frame/16"] and table["cases"] == 6
    row = next(r for r in table["rows"] if r["task"] == "integrity")
    assert row["confusion"][0] == [0, row["n"] - sum(row["confusion"][1])] and row["confusion"][1][0] == 0
    assert json.loads((system["store"] / "judge/calibration/latest.json").read_text())["key"] == key

    from atom.report.collect import collect
    from atom.report.site import SiteOptions, build_site

    store = LocalStore(system["store"])
    write_run(store, run="demo")
    view = collect(store, "demo")
    assert view.calibration["judge_id"].startswith("vlm:fake-vlm")
    index = build_site(store, view, lambda keys: {}, SiteOptions(cards_per_task=0, pair_videos=0))
    page = (system["store"] / index).read_text()
    assert 'id="calibration"' in page and "frame-by-frame/16" in page and "vlm:fake-vlm" in page


@pytest.mark.parametrize(
    "args,message",
    [
        (["--forms", "full_image,sideways"], "unknown form 'sideways'"),
        (["--n", "0"], "0 is not in the range 1<=x<=2000"),
        (["--intervals", "8,x"], "'x' is not a whole number"),
        (["--judge", "kinematic", "--forms", "full_image"], "are for the VLM judge"),
    ],
)
def test_calibrate_refuses_bad_options_in_one_line(system, args, message):
    out = system["atomctl"]("judge", "calibrate", *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_calibrate_refuses_a_malformed_human_file_in_one_line(system, tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '# two bad lines\n{"motion": "clip.npy", "prompt": "A man waves.", "task": "integrity", "labels": ["wave"], "score": 3}\nnot json\n'
    )
    import numpy as np

    np.save(tmp_path / "clip.npy", np.zeros((40, 22, 3), np.float32))
    out = system["atomctl"]("judge", "calibrate", "--human", str(labels))
    assert out.returncode == 5 and "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip()
    assert len(line.splitlines()) == 1 and "line 2: score 3 is not a valid integrity score" in line and "line 3: not JSON" in line
    out = system["atomctl"]("judge", "calibrate", "--human", str(tmp_path / "missing.jsonl"))
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_calibrate_on_human_labels(system, tmp_path):
    from atom.motion.events import EventLabel
    from atom.motion.world.compose import compose
    import numpy as np

    joints = compose([EventLabel("wave")], np.random.default_rng(0)).joints
    np.save(tmp_path / "wave.npy", joints)
    (tmp_path / "labels.jsonl").write_text(
        '{"motion": "wave.npy", "prompt": "A person waves.", "task": "frequency", "labels": ["wave"], "score": 1}\n'
        '{"id": "w2", "motion": "wave.npy", "prompt": "A person waves twice.", "task": "frequency", '
        '"labels": [{"event": "wave", "count": 2}], "score": 2, "annotator": "ann-1"}\n'
    )
    t0 = time.monotonic()
    out = system["atomctl"]("judge", "calibrate", "--judge", "kinematic", "--human", str(tmp_path / "labels.jsonl"))
    assert out.returncode == 0, out.stderr
    assert re.search(r"frequency +joints +2 +2", out.stdout), out.stdout
    assert time.monotonic() - t0 < 60
