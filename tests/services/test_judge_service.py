import grpc
import numpy as np
import pytest

from atom.motion.events import EventLabel
from atom.motion.record import MotionRecord
from atom.motion.world.compose import compose
from atom.v1 import common_pb2, judge_pb2


def _put_motion(store, events, seed):
    clip = compose([EventLabel(e, c) for e, c in events], np.random.default_rng(seed))
    return store.put_content_addressed("motions", MotionRecord(joints=clip.joints).to_bytes(), ".npz").key


def test_compose_prompts_is_deterministic_and_labelled(start):
    judge = start("judge")
    req = judge_pb2.ComposePromptsRequest(tasks=["integrity", "temporal", "frequency"], per_task=5, seed=3)
    a = judge.client.call("ComposePrompts", req).prompts
    b = judge.client.call("ComposePrompts", req).prompts
    assert [p.text for p in a] == [p.text for p in b] and len(a) == 15
    assert {p.task for p in a} == {"integrity", "temporal", "frequency"}
    for p in a:
        assert p.prompt_id and p.labels.events
        if p.task == "temporal":
            assert len(p.labels.events) == 3


def test_score_kinematic_streams_judgements_and_caches(start):
    judge = start("judge")
    prompts = judge.client.call("ComposePrompts", judge_pb2.ComposePromptsRequest(tasks=["temporal"], per_task=2, seed=1)).prompts
    items = []
    for i, p in enumerate(prompts):
        right = _put_motion(judge.store, [(e.event, e.count) for e in p.labels.events], seed=i)
        wrong = _put_motion(judge.store, [(e.event, e.count) for e in reversed(p.labels.events)], seed=i)
        items += [
            judge_pb2.ScoreItem(item_id=f"{i}-right", prompt=p, motion=common_pb2.ArtifactRef(key=right)),
            judge_pb2.ScoreItem(item_id=f"{i}-wrong", prompt=p, motion=common_pb2.ArtifactRef(key=wrong)),
        ]
    req = judge_pb2.ScoreRequest(items=items, judge=judge_pb2.JudgeConfig(backend="kinematic"))
    first = list(judge.client.stream("Score", req))
    assert [j.item_id for j in first] == [it.item_id for it in items]
    assert all(j.ok and j.judge_id == "kinematic-v1" and j.record.key for j in first)
    scores = {j.item_id: j.score for j in first}
    assert scores["0-right"] == 5 and scores["1-right"] == 5
    assert scores["0-wrong"] < 5 and scores["1-wrong"] < 5
    again = list(judge.client.stream("Score", req))
    assert all(j.cache_hit for j in again) and [j.score for j in again] == [j.score for j in first]


def test_score_bad_input(start):
    judge = start("judge")
    p = common_pb2.Prompt(
        prompt_id="x",
        text="a man squats",
        task="frequency",
        labels=common_pb2.LabelGroup(task="frequency", events=[common_pb2.EventLabel(event="squat", count=1)]),
    )
    with pytest.raises(grpc.RpcError) as err:
        list(
            judge.client.stream(
                "Score",
                judge_pb2.ScoreRequest(
                    items=[judge_pb2.ScoreItem(item_id="a", prompt=p, motion=common_pb2.ArtifactRef(key="motions/missing.npz"))]
                ),
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    judge.store.put_bytes("motions/corrupt.npz", b"not an npz")
    with pytest.raises(grpc.RpcError) as err:
        list(
            judge.client.stream(
                "Score",
                judge_pb2.ScoreRequest(
                    items=[judge_pb2.ScoreItem(item_id="a", prompt=p, motion=common_pb2.ArtifactRef(key="motions/corrupt.npz"))]
                ),
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "items[0].motion" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        judge.client.call("ComposePrompts", judge_pb2.ComposePromptsRequest(tasks=["dance"], per_task=1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "tasks[0]" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        list(
            judge.client.stream(
                "Score",
                judge_pb2.ScoreRequest(items=[judge_pb2.ScoreItem(item_id="a", prompt=p)], judge=judge_pb2.JudgeConfig(backend="vlm")),
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "images" in err.value.details()
