"""`atomctl t2m` and `atomctl report` as a user runs them: real processes, embedded services."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from atom.mgpt.bundle import save_bundle
from atom.runtime.net import free_port
from atom.store import LocalStore

sys.path.insert(0, str(Path(__file__).parents[1] / "generator"))
sys.path.insert(0, str(Path(__file__).parents[1] / "report"))
from gen_tiny_models import make_tiny_bundle  # noqa: E402
from runfiles import write_run  # noqa: E402


def _atomctl(store, *args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "atom.cli", "--store", str(store), *args], capture_output=True, text=True, timeout=600, **kw
    )


@pytest.fixture(scope="module")
def bundle_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("t2m") / "store"
    save_bundle(LocalStore(root), "models/base", make_tiny_bundle())
    return root


def test_t2m_writes_every_format_and_repeats_with_its_seed(bundle_store, tmp_path):
    from services.renderer.video import mp4_frame_count

    args = [
        "t2m",
        "a person jumps twice, then waves",
        "--base-model",
        "models/base",
        "--samples",
        "2",
        "--format",
        "mp4,gif,bvh,npz,smpl",
        "--size",
        "64",
    ]
    out = _atomctl(bundle_store, *args, "--out", str(tmp_path / "a"))
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "a" / "prompt.json").read_text())
    assert [s["sample_index"] for s in summary["samples"]] == [0, 1]
    for s in summary["samples"]:
        folder = tmp_path / "a" / f"sample-{s['sample_index']}"
        joints = np.load(folder / "joints.npy")
        assert joints.shape == (s["num_frames"], 22, 3)
        assert np.load(folder / "features.npy").shape == (s["num_frames"], 263)  # joints recovered from them
        assert mp4_frame_count((folder / "motion.mp4").read_bytes()) == s["num_frames"]
        with Image.open(folder / "motion.gif") as gif:
            assert gif.n_frames == s["num_frames"] and gif.size == (64, 64)
        assert (folder / "motion.bvh").read_text().startswith("HIERARCHY\nROOT pelvis")
        assert np.load(folder / "motion.npz")["joints"].shape == joints.shape
        with np.load(folder / "motion_smpl.npz", allow_pickle=False) as smpl:
            assert smpl["poses"].shape == (s["num_frames"], 72) and smpl["trans"].shape == (s["num_frames"], 3)
            np.testing.assert_allclose(smpl["trans"], joints[:, 0], atol=1e-6)  # no SMPL model: the pelvis itself
    again = _atomctl(bundle_store, *args, "--out", str(tmp_path / "b"))
    assert again.returncode == 0, again.stderr
    for i in (0, 1):
        np.testing.assert_array_equal(
            np.load(tmp_path / "a" / f"sample-{i}" / "joints.npy"), np.load(tmp_path / "b" / f"sample-{i}" / "joints.npy")
        )


def test_t2m_refuses_bad_input_in_one_line(bundle_store, tmp_path):
    out = _atomctl(bundle_store, "t2m", "  ", "--base-model", "models/base", "--out", str(tmp_path / "x"))
    assert out.returncode == 5 and "the prompt is empty" in out.stderr and "Traceback" not in out.stderr
    out = _atomctl(bundle_store, "t2m", "a man waves", "--base-model", "models/base", "--format", "fbx", "--out", str(tmp_path / "x"))
    assert out.returncode == 5 and "unknown format" in out.stderr
    out = _atomctl(
        bundle_store,
        "t2m",
        "a man waves",
        "--base-model",
        "models/base",
        "--format",
        "smpl",
        "--smpl-model",
        str(tmp_path / "SMPL_NEUTRAL.npz"),
        "--out",
        str(tmp_path / "x"),
    )
    assert out.returncode == 5 and "SMPL_NEUTRAL.npz' does not exist" in out.stderr and "Traceback" not in out.stderr


def test_report_builds_and_serves_the_site(tmp_path):
    store = LocalStore(tmp_path / "store")
    write_run(store)
    out = _atomctl(tmp_path / "store", "report", "--run", "demo", "--cards-per-task", "1", "--pair-videos", "0", "--video-size", "64")
    assert out.returncode == 0, out.stderr
    index = Path(out.stdout.strip().split("run browser: ", 1)[1])
    assert index.is_file() and index == tmp_path / "store" / "reports" / "demo" / "site" / "index.html"
    assert len(list((index.parent / "videos").iterdir())) == 2 * 3
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "atom.cli", "--store", str(tmp_path / "store"), "report", "--run", "demo", "--serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert "serving run 'demo'" in server.stdout.readline()
        deadline = time.monotonic() + 30
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert page == index.read_text()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(30)


def test_report_on_a_run_that_has_not_finished(tmp_path):
    out = _atomctl(tmp_path / "store", "report", "--run", "nope")
    assert out.returncode == 5 and "atomctl run-pipeline --run nope" in out.stderr
