"""Calibration end to end: rendered world clips with known scores, the VLM judge through the local
server, the kinematic judge alongside; and the human-label file format."""

import hashlib
import json

import numpy as np
import pytest

from fake_openai import FakeOpenAI, images_of, score_reply
from atom.motion.record import MotionRecord
from services.judge.batch import BatchConfig, BatchJudge
from services.judge.calibrate import BatchScorer, Setting, calibrate, human_items, world_items
from services.judge.client import RetryPolicy
from services.judge.compose import compose_prompts
from services.judge.human import HumanLabelError, load_human_labels, load_motion
from services.judge.kinematic import KinematicJudge
from services.judge.rules import ALLOWED_SCORES
from services.judge.vlm import VLMConfig, VLMJudge

ENV = {"ATOM_JUDGE_API_KEY": "sk-test-calibrate-00000000"}
SETTINGS = [Setting("full_image", 16), Setting("frame-by-frame", 16)]


def render_locally(joints, setting, size):
    """The renderer's library stands in for the renderer service the CLI calls."""
    from services.renderer.api import render
    from services.renderer.options import RenderOptions

    return render(joints, RenderOptions(form=setting.render_form, interval=setting.interval, width=size, height=size)).images


@pytest.fixture(scope="module")
def world():
    prompts = compose_prompts(["integrity", "frequency"], 1, seed=3)
    return world_items(prompts, SETTINGS, render_locally, seed=3, size=64)


def sha(data) -> str:
    import base64

    return hashlib.sha256(base64.b64decode(data.split(",", 1)[1])).hexdigest()


def oracle_script(items):
    """A judge that is right on the full image (it looks the truth up by the image) and, shown
    separate frames, always gives the task's top score."""
    truth = {hashlib.sha256(it.renders[SETTINGS[0]][0]).hexdigest(): it.truth for it in items}
    top = {it.renders[SETTINGS[1]][0]: max(ALLOWED_SCORES[it.prompt.task]) for it in items}
    top_by_sha = {hashlib.sha256(k).hexdigest(): v for k, v in top.items()}

    def script(req, n):
        urls = images_of(req)
        if len(urls) == 1 and sha(urls[0]) in truth:
            return score_reply(truth[sha(urls[0])])
        return score_reply(top_by_sha[sha(urls[0])])

    return script


def test_world_items_are_rendered_for_each_setting(world):
    assert {it.prompt.task for it in world} == {"integrity", "frequency"}
    assert {it.source.split(":")[0] for it in world} == {"world"}
    for it in world:
        assert it.truth in ALLOWED_SCORES[it.prompt.task]
        assert len(it.renders[SETTINGS[0]]) == 1 and len(it.renders[SETTINGS[1]]) >= 2
        assert it.renders[SETTINGS[0]][0][:8] == b"\x89PNG\r\n\x1a\n"
    truths = {it.truth for it in world if it.prompt.task == "integrity"}
    assert truths == {0, 5}  # every rubric level is present


def test_calibration_end_to_end(world, store):
    kin = KinematicJudge()
    with FakeOpenAI(oracle_script(world)) as srv:
        with VLMJudge(VLMConfig(model="fake-vlm", base_url=srv.base_url, retry=RetryPolicy(1, 0.0, 0.0)), store, env=ENV) as judge:
            result = calibrate(world, judge, SETTINGS, kinematic=kin)
            assert srv.calls == 2 * len(world)
            per_call = judge.config.cost.cost(100, 20)
    for task in ("integrity", "frequency"):
        sub = [it for it in world if it.prompt.task == task]
        truth = [it.truth for it in sub]
        kin_scores = [kin.score_labels(it.prompt.labels, it.joints).score for it in sub]
        kin_truth = sum(k == t for k, t in zip(kin_scores, truth)) / len(sub)
        full = result.row(task, SETTINGS[0])
        assert (full.n, full.scored, full.errors) == (len(sub), len(sub), 0)
        assert full.exact == 1.0  # the oracle reads the full image right
        labels = list(ALLOWED_SCORES[task])
        assert full.labels == labels
        assert full.confusion == [[truth.count(row) if row == col else 0 for col in labels] for row in labels]
        assert full.kinematic_truth == pytest.approx(kin_truth)
        assert full.kinematic_exact == pytest.approx(kin_truth)  # the judge is the truth here
        assert full.cost_usd == pytest.approx(len(sub) * per_call)
        frames = result.row(task, "frame-by-frame/16")
        top = max(labels)
        assert frames.exact == pytest.approx(truth.count(top) / len(sub))
        assert [row[-1] for row in frames.confusion] == [truth.count(lab) for lab in labels]  # all in the top column
    text = result.format()
    assert "full-image/16" in text and "frame-by-frame/16" in text and "rows truth, columns judge" in text
    assert json.loads(json.dumps(result.to_dict()))["rows"][0]["task"] == "integrity"


def test_calibration_of_the_kinematic_judge_and_through_the_batch_api(world, store):
    kin = KinematicJudge()
    result = calibrate(world, kin, SETTINGS[:1])
    for r in result.rows:
        assert r.cost_usd == 0 and r.kinematic_exact is None
        sub = [it for it in world if it.prompt.task == r.task]
        expect = sum(kin.score_labels(it.prompt.labels, it.joints).score == it.truth for it in sub) / len(sub)
        assert r.exact == pytest.approx(expect)
    with FakeOpenAI(oracle_script(world)) as srv:
        with VLMJudge(VLMConfig(model="fake-vlm", base_url=srv.base_url), store, env=ENV) as judge:
            batch = BatchScorer(BatchJudge(judge, BatchConfig(poll_initial_s=0.01, poll_max_s=0.05)))
            result = calibrate(world, batch, SETTINGS[:1])
            assert len(srv.batch_creates) == 1 and srv.calls == 0
    assert all(r.exact == 1.0 for r in result.rows)
    assert sum(r.cost_usd for r in result.rows) == pytest.approx(len(world) * judge.config.cost.cost(100, 20) / 2)


# -- human labels --------------------------------------------------------------------------------------


def write_motion(path, seed=0):
    from atom.motion.world.compose import compose
    from atom.motion.events import EventLabel

    clip = compose((EventLabel("walk_forward"), EventLabel("squat")), np.random.default_rng(seed))
    path.write_bytes(MotionRecord(clip.joints).to_bytes())
    return clip.joints


def test_human_labels_load_resolve_and_calibrate(tmp_path, store):
    (tmp_path / "m").mkdir()
    joints = write_motion(tmp_path / "m" / "a.npz")
    np.save(tmp_path / "m" / "b.npy", joints)
    store.put_bytes("motions/c.npz", MotionRecord(joints).to_bytes())
    rows = [
        {
            "motion": "m/a.npz",
            "prompt": "A man walks forward and squats.",
            "task": "integrity",
            "labels": ["walk_forward", "squat"],
            "score": 5,
            "annotator": "ann1",
        },
        {
            "id": "freq-1",
            "motion": "m/b.npy",
            "prompt": "A person squats twice.",
            "task": "frequency",
            "labels": [{"event": "squat", "count": 2}],
            "score": 2,
        },
        {
            "motion": "motions/c.npz",
            "prompt": "A man squats and walks forward.",
            "task": "integrity",
            "labels": {"task": "integrity", "events": [{"event": "squat"}, {"event": "walk_forward"}]},
            "score": 5.0,
        },
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("# human labels\n" + "\n".join(json.dumps(r) for r in rows) + "\n\n")
    labels = load_human_labels(path)
    assert [lab.label_id for lab in labels] == ["line-2", "freq-1", "line-4"]
    assert labels[1].prompt.labels.events[0].count == 2 and labels[0].annotator == "ann1" and labels[2].score == 5
    assert np.allclose(load_motion("m/b.npy", tmp_path), joints, atol=1e-6)
    items = human_items(labels, SETTINGS[:1], render_locally, base_dir=tmp_path, store=store, size=64)
    assert all(np.allclose(it.joints, joints, atol=1e-6) for it in items)
    with FakeOpenAI([score_reply(5)]) as srv, VLMJudge(VLMConfig(model="fake-vlm", base_url=srv.base_url), None, env=ENV) as judge:
        result = calibrate(items, judge, SETTINGS[:1], kinematic=KinematicJudge())
    assert result.row("integrity", SETTINGS[0]).exact == 1.0
    assert result.row("frequency", SETTINGS[0]).scored == 0  # 5 is no frequency score: an error, not a guess
    with pytest.raises(HumanLabelError, match="not found: no file"):
        load_motion("m/missing.npz", tmp_path, store)


def test_human_label_errors_name_every_bad_line(tmp_path):
    good = {"motion": "a.npz", "prompt": "A man walks.", "task": "integrity", "labels": ["walk_forward"], "score": 0}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({k: v for k, v in good.items() if k != "score"}),
        json.dumps(dict(good, task="speed")),
        json.dumps(dict(good, score=3)),
        json.dumps(dict(good, task="temporal", labels=["walk_forward", "squat"], score=5)),
        json.dumps(dict(good, labels=[{"event": "squat", "count": 0}])),
        json.dumps(dict(good, id="x")),
        json.dumps(dict(good, id="x")),
        json.dumps(dict(good, prompt="  ")),
    ]
    with pytest.raises(HumanLabelError) as err:
        load_human_labels("\n".join(lines).encode())
    msg = str(err.value)
    for needle in (
        "8 bad line(s)",
        "line 2: not JSON",
        "line 3: missing field(s) ['score']",
        "line 4: task 'speed'",
        "line 5: score 3 is not a valid integrity score (allowed: [0, 5])",
        "line 6: a temporal prompt has exactly 3 event(s), got 2",
        "line 7: labels[0].count",
        "line 9: id 'x' already used on line 8",
        "line 10: prompt must be non-empty",
    ):
        assert needle in msg, needle
    with pytest.raises(HumanLabelError, match="no labelled motions"):
        load_human_labels(b"\n# nothing\n")
    with pytest.raises(HumanLabelError, match="cannot read"):
        load_human_labels(tmp_path / "absent.jsonl")
