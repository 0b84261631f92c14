"""Composition: labels agree with the frames, requests are validated, seeds fix clips; captions."""

import numpy as np
import pytest

from atom.motion.events import COUNTABLE_EVENTS, EventLabel
from atom.motion.skeleton import MAX_FRAMES
from atom.motion.world.captions import caption, captions, details_from_occurrences, gerund
from atom.motion.world.compose import MIN_FRAMES, CompositionError, compose


def _heading(j):
    across = (j[:, 2] - j[:, 1]) + (j[:, 17] - j[:, 16])
    return np.unwrap(np.arctan2(across[:, 2], -across[:, 0]))


def test_labels_are_consistent_with_frames():
    events = [EventLabel("walk_forward"), EventLabel("squat", 3), EventLabel("clap", 2), EventLabel("turn_left")]
    clip = compose(events, np.random.default_rng(0))
    t = clip.num_frames
    assert MIN_FRAMES <= t <= MAX_FRAMES
    assert clip.joints.shape == (t, 22, 3) and clip.joints.dtype == np.float32
    assert clip.contacts.shape == (t, 2)
    occ = clip.occurrences
    # One occurrence per performance, in request order, inside the clip, not overlapping.
    assert [o.event for o in occ] == ["walk_forward", "squat", "squat", "squat", "clap", "clap", "turn_left"]
    assert [o.label_index for o in occ] == [0, 1, 1, 1, 2, 2, 3]
    assert all(0 <= o.start < o.end <= t for o in occ)
    assert all(a.end <= b.start for a, b in zip(occ, occ[1:]))
    d = clip.labels_dict()
    assert d["events"] == [{"event": e.event, "count": e.count} for e in events]
    assert d["num_frames"] == t and d["fps"] == 20
    # What happens inside the spans is what the labels say.
    j = clip.joints.astype(np.float64)
    walk = occ[0]
    assert j[walk.end - 1, 0, 2] - j[walk.start, 0, 2] > 0.5  # walked forward (+Z)
    for o in occ[1:4]:
        assert j[o.start : o.end, 0, 1].min() < j[o.start, 0, 1] - 0.15  # went down, each squat
    turn = occ[-1]
    h = _heading(j)
    assert 60 < np.degrees(h[turn.end - 1] - h[turn.start]) < 125  # turned left (positive yaw)
    clap_gap = np.linalg.norm(j[:, 20] - j[:, 21], axis=1)
    for o in occ[4:6]:
        assert clap_gap[o.start : o.end].min() < 0.1  # hands met in each clap's span


def test_five_events_fit_and_counts_become_separate_performances():
    names = ("sit_down", "walk_forward", "spin", "wave", "walk_backward")
    clip = compose([EventLabel(n) for n in names], np.random.default_rng(1))
    assert clip.num_frames <= MAX_FRAMES
    assert [o.event for o in clip.occurrences] == list(names)
    for ev in COUNTABLE_EVENTS:
        clip = compose([EventLabel(ev, 5)], np.random.default_rng(2))
        assert len(clip.occurrences) == 5 and clip.num_frames <= MAX_FRAMES


def test_turns_change_heading_and_position_carries_over():
    clip = compose([EventLabel("turn_right"), EventLabel("walk_forward")], np.random.default_rng(3))
    j = clip.joints.astype(np.float64)
    h = _heading(j)
    turn, walk = clip.occurrences
    assert np.degrees(h[turn.end] - h[0]) < -60
    # After turning right the walk heads along -X (the figure's new forward), not +Z.
    d = j[walk.end - 1, 0] - j[walk.start, 0]
    assert d[0] < -0.5 and abs(d[2]) < 0.5 * abs(d[0])


def test_same_seed_same_clip_and_seeds_differ():
    ev = [EventLabel("jump_forward", 2), EventLabel("bow")]
    a = compose(ev, np.random.default_rng(11))
    b = compose(ev, np.random.default_rng(11))
    c = compose(ev, np.random.default_rng(12))
    assert np.array_equal(a.joints, b.joints) and a.occurrences == b.occurrences
    assert a.joints.shape != c.joints.shape or not np.allclose(a.joints, c.joints)


@pytest.mark.parametrize(
    "bad, match",
    [
        ([EventLabel("moonwalk")], "unknown event"),
        ([EventLabel("walk_forward", 2)], "not countable"),
        ([EventLabel("squat", 6)], "outside 1..5"),
        ([], "at least one"),
        ([EventLabel("sit_down", 5), EventLabel("walk_forward"), EventLabel("spin", 3)], "more than the 196"),
    ],
)
def test_bad_requests_raise_clear_errors(bad, match):
    with pytest.raises(CompositionError, match=match):
        compose(bad, np.random.default_rng(0))


def test_captions_state_every_event_in_order_with_counts():
    rng = np.random.default_rng(4)
    events = [EventLabel("walk_forward"), EventLabel("jump_in_place", 3), EventLabel("bow")]
    caps = captions(events, rng, n=3)
    assert len(caps) == 3 and len(set(caps)) == 3
    for c in caps:
        assert "#" not in c and "\n" not in c
        assert "three times" in c
    starts = [caption([EventLabel("wave", 2)], rng) for _ in range(80)]
    for subject in ("a person ", "a man ", "someone ", "the figure "):
        assert any(c.startswith(subject) for c in starts), subject
    twice = [caption([EventLabel("kick", 2)], rng) for _ in range(30)]
    assert any("twice" in c for c in twice) and any("two times" in c for c in twice)
    assert all("twice" in c or "two times" in c for c in twice)


def test_caption_details_are_true_of_the_clip():
    events = [EventLabel("wave", 2), EventLabel("kick")]
    clip = compose(events, np.random.default_rng(5))
    details = details_from_occurrences(events, clip.occurrences)
    hand = clip.occurrences[0].params["hand"]
    assert details[0] == f"{hand} hand" and details[1].endswith(" leg")


def test_gerunds():
    assert gerund("sits down then gets back up") == "sitting down then getting back up"
    assert gerund("spins around") == "spinning around"
    assert gerund("side-steps left") == "side-stepping left"
