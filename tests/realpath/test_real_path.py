"""The path a user with the real assets takes, end to end, with files in the real formats built by
the tests (realfiles.py): the released MotionGPT checkpoint layout with its flan-t5 folder and
normalisation, a HumanML3D directory, the Guo et al. evaluator in MotionGPT's deps/ layout, and a
VLM judge (a local OpenAI-compatible server whose answer depends on the images it receives).

This runs the commands of the README's "Your own data and models" section, with a small config.
"""

import base64
import hashlib
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fake_openai import FakeOpenAI, images_of, score_reply
from services.judge.rules import ALLOWED_SCORES

pytestmark = pytest.mark.slow

SMALL = """
run: real
prompts: {tasks: [integrity, temporal, frequency], per_task: 3, eval_per_task: 3}
generate: {samples_per_prompt: 4, eval_samples_per_prompt: 2}
render: {size: 96, form: full_image}
judge: {budget_usd: 100, batch: 8}
pairs: {score_filter: false}
train: {epochs: 1, batch_size: 8}
eval: {replications: 2, mm_texts: 3, mm_samples: 3}
"""
TASK_WORDS = {"Task: event integrity": "integrity", "Task: temporal order": "temporal", "Task: frequency": "frequency"}


def ink(data_url: str) -> float:
    """Fraction of pixels that differ from the image's corner (its background)."""
    raw = base64.b64decode(data_url.split(",", 1)[1])
    px = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), np.int16)
    return float(np.mean(np.abs(px - px[0, 0]).sum(-1) > 30))


def image_judge(req, n):
    """A verdict that depends on the frames: no image or blank images get the task's lowest score;
    otherwise the score follows the rendered pixels."""
    text = json.dumps(req["messages"])
    task = next(t for k, t in TASK_WORDS.items() if k in text)
    allowed = ALLOWED_SCORES[task]
    images = images_of(req)
    if not images or max(ink(u) for u in images) == 0.0:
        return score_reply(allowed[0], "nothing to see")
    digest = hashlib.sha256("".join(images).encode()).digest()
    return score_reply(allowed[1 + digest[0] % (len(allowed) - 1)] if digest[1] % 3 else allowed[0], "judged")


def test_image_judge_answers_from_the_images():
    blank = Image.new("RGB", (32, 32), "white")
    buf = io.BytesIO()
    blank.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    req = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Task: frequency"}, {"type": "image_url", "image_url": {"url": url}}]}
        ]
    }
    assert json.loads(image_judge(req, 0).content)["score"] == 1
    req["messages"][0]["content"] = req["messages"][0]["content"][:1]
    assert json.loads(image_judge(req, 0).content)["score"] == 1


def readme_command(root: Path, humanml: Path) -> list[str]:
    """The `atomctl run-pipeline` command of the README's "Your own data and models" section, with
    its paths pointed at the files the test built (MotionGPT/ -> the checkout, HumanML3D/HumanML3D ->
    the dataset)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Your own data and models") :]
    block = section[section.index("```sh") + 5 : section.index("```", section.index("```sh") + 5)]
    lines = " ".join(line.split("#", 1)[0].rstrip().rstrip("\\") for line in block.splitlines())
    words = shlex.split(lines[lines.index("atomctl run-pipeline") :])
    out = []
    for w in words[2:]:
        w = w.replace("HumanML3D/HumanML3D", str(humanml)).replace("MotionGPT/", f"{root}/")
        out.append(w)
    return out


def test_real_files_through_run_pipeline(tmp_path, release, humanml):
    (tmp_path / "small.yaml").write_text(SMALL)
    store = tmp_path / "store"
    root = release["checkpoint"].parents[2]
    args = readme_command(root, humanml)
    assert "--checkpoint" in args and "--dataset" in args and f"guo:{release['deps']}" in args
    with FakeOpenAI(image_judge) as judge:
        env = {
            **os.environ,
            "ATOM_JUDGE_BASE_URL": judge.base_url,
            "ATOM_JUDGE_API_KEY": "sk-test-not-a-real-key",
            "ATOM_CACHE_DIR": str(tmp_path / "cache"),
            "HF_HUB_OFFLINE": "1",
        }
        # The README's command as written, plus a config that makes every stage small.
        cmd = [
            sys.executable,
            "-m",
            "atom.cli",
            "--store",
            str(store),
            "run-pipeline",
            *args,
            "--config",
            str(tmp_path / "small.yaml"),
            "--quiet",
        ]
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        calls = list(judge.requests)
    # The judge saw rendered frames: decodable PNGs with a motion drawn on them.
    assert calls and all(images_of(r) for r in calls)
    assert max(ink(u) for r in calls[:10] for u in images_of(r)) > 0.001

    report = json.loads(next(store.glob("reports/real/report.json")).read_text())
    # Every asset with its hash: the checkpoint's is the file's sha256.
    assets = {a["role"]: a for a in report["assets"]}
    for role in ("dataset", "base_model", "base_model.checkpoint", "base_model.t5_dir", "base_model.mean", "base_model.std", "evaluator"):
        assert assets[role].get("sha256"), role
    assert assets["base_model.checkpoint"]["sha256"] == hashlib.sha256(release["checkpoint"].read_bytes()).hexdigest()
    assert assets["base_model.mean"]["name"] == "mean.npy" and assets["evaluator"]["name"] == "guo-t2m"
    # MotionGPT's protocol on the test split, the Guo networks, and the tagger named.
    assert report["evaluator"]["name"] == "guo-t2m" and report["evaluator"]["protocol"] == "motiongpt"
    assert report["evaluator"]["tagger"]
    general = {r["model"]: r for r in report["rows"] if r["task"] == "general"}
    assert set(general) == {"real", "base", "atom"}
    for name in ("base", "atom"):
        m = general[name]["metrics"]
        assert np.isfinite(m["fid"]["mean"]) and np.isfinite(m["r1"]["mean"]) and np.isfinite(m["mmodality"]["mean"])
    md = (store / "reports/real/report.md").read_text()
    assert "## Assets" in md and assets["base_model.checkpoint"]["sha256"] in md and "motiongpt" in md.lower()
    # The imported bundle: MotionGPT's decoding by default, and the VQ-VAE's meta files, not Mean/Std.
    bundle = json.loads(next(store.glob("models/motiongpt-*/bundle.json")).read_text())
    assert bundle["info"]["decoding"] == "motiongpt"
    from safetensors.numpy import load_file

    norm = load_file(str(next(store.glob("models/motiongpt-*/norm.safetensors"))))
    meta_std = np.load(release["mean_std"] / "std.npy")
    assert np.array_equal(norm["std"], meta_std) and not np.allclose(norm["std"], np.load(humanml / "Std.npy"))
    # The samples were generated with MotionGPT's decoding (their sampling settings say so).
    sample = json.loads(next(store.glob("samples/*.json")).read_text())
    motion_meta = next(store.glob("motions/*.npz"))
    assert sample["motion"] and motion_meta.exists()
    # The README's training flags reached the trainer: the paper's recipe.
    train = json.loads((store / "runs/real/manifest.json").read_text())["stages"]["train"]
    summary = json.loads((store / train["outputs"]["adapter"]).parent.joinpath("train_summary.json").read_text())
    cfg = summary.get("config", summary)
    assert cfg["loss"] == "ipo" and cfg["beta"] == 0.1 and cfg["average_logprobs"] is True
