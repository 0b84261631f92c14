"""The world's body and primitives are physically plausible: rigid bones, planted feet that do not
slide, nothing below the floor, human speeds, feet that do not collide."""

import numpy as np
import pytest

from atom.motion.events import EVENT_NAMES, EVENTS, EventLabel
from atom.motion.skeleton import BONES
from atom.motion.world.body import BodyError, make_body, random_body, rot_x, rot_y, two_bone_ik
from atom.motion.world.compose import compose
from atom.motion.world.primitives import PRIMITIVES
from atom.motion.world.track import pose_track, random_style

# A planted foot's contact point (the toe joint, on which the foot also pivots when the heel
# lifts) may not move more than this per frame. 2 mm/frame = 4 cm/s, twenty times below the
# HumanML3D contact threshold (sqrt(0.002) = 4.5 cm/frame) and well under what the eye reads as
# skating; by construction the world's planted toes do not move at all.
SLIDE_BOUND = 0.002


def _bone_lengths(j):
    return np.stack([np.linalg.norm(j[:, c] - j[:, p], axis=-1) for p, c in BONES], axis=1)


def test_body_proportions_and_variation():
    b = make_body()
    assert 0.9 <= b.stand_height <= 0.96  # pelvis height of a 1.70 m adult
    assert 0.76 <= b.leg <= 0.82
    rng = np.random.default_rng(0)
    heights = [random_body(rng).stand_height for _ in range(50)]
    assert min(heights) < 0.85 and max(heights) > 1.0  # height scale 0.85..1.15 shows
    with pytest.raises(BodyError, match="height_scale"):
        make_body(height_scale=2.0)


def test_two_bone_ik_keeps_lengths_and_reaches():
    rng = np.random.default_rng(1)
    start = rng.normal(size=(100, 3))
    target = start + rng.normal(size=(100, 3)) * 0.3
    mid = two_bone_ik(start, target, 0.4, 0.38, pole=np.tile([0, 0, 1.0], (100, 1)))
    assert np.allclose(np.linalg.norm(mid - start, axis=1), 0.4)
    reachable = np.linalg.norm(target - start, axis=1) < 0.77
    assert np.allclose(np.linalg.norm(target - mid, axis=1)[reachable], 0.38)


def test_rotation_conventions():
    # Positive yaw turns +Z towards +X (the figure's left); positive pitch tips +Y forward.
    assert np.allclose(rot_y(np.pi / 2) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    assert np.allclose(rot_x(np.pi / 2) @ [0, 1, 0], [0, 0, 1], atol=1e-12)


@pytest.mark.parametrize("event", EVENT_NAMES)
def test_bone_lengths_are_constant(event):
    rng = np.random.default_rng(3)
    body = random_body(rng)
    style = random_style(body, rng)
    track = PRIMITIVES[event].build(style, rng, PRIMITIVES[event].natural[1])
    joints, rots, _ = pose_track(track, body)
    lengths = _bone_lengths(joints)
    assert np.max(np.abs(lengths - body.bone_lengths)) < 1e-9  # FK, float64
    assert np.allclose(np.einsum("tjab,tjcb->tjac", rots, rots), np.eye(3), atol=1e-9)  # rotations
    clip = compose([EventLabel(event)], np.random.default_rng(4))
    stored = _bone_lengths(clip.joints.astype(np.float64))
    assert np.max(np.abs(stored - stored[0])) < 1e-5  # float32 storage rounding only


@pytest.mark.parametrize("event", EVENT_NAMES)
def test_planted_feet_do_not_slide_and_motion_is_plausible(event):
    count = 2 if EVENTS[event].countable else 1
    for seed in (0, 1):
        clip = compose([EventLabel(event, count)], np.random.default_rng(seed))
        j = clip.joints.astype(np.float64)
        c = clip.contacts
        for f, (ankle, toe) in enumerate(((7, 10), (8, 11))):
            still = c[1:, f] & c[:-1, f]
            toe_speed = np.linalg.norm(np.diff(j[:, toe, [0, 2]], axis=0), axis=1)
            assert toe_speed[still].max(initial=0) < SLIDE_BOUND, f"{event}: planted toe slides"
            # Flat foot (ankle at its resting height, heel down): the ankle is still too.
            on_floor = np.abs(j[:, ankle, 1] - clip.body.ankle_height) < 1e-4
            flat = still & on_floor[1:] & on_floor[:-1]
            ankle_speed = np.linalg.norm(np.diff(j[:, ankle, [0, 2]], axis=0), axis=1)
            assert ankle_speed[flat].max(initial=0) < SLIDE_BOUND, f"{event}: planted ankle slides"
        assert j[..., 1].min() > -1e-4, "a joint goes below the floor"
        planted_toes = j[:, [10, 11], 1][c]
        assert np.abs(planted_toes).max() < 1e-4, "a planted toe floats or sinks"
        speed = np.linalg.norm(np.diff(j, axis=0), axis=-1)
        assert speed.max() < 0.7, f"{event}: a joint moves faster than 14 m/s"
        root_speed = np.linalg.norm(np.diff(j[:, 0, [0, 2]], axis=0), axis=1)
        assert root_speed.max() < 0.25, f"{event}: the body travels faster than 5 m/s"
        h = clip.body.stand_height
        assert 0.4 * h < j[:, 0, 1].min() and j[:, 0, 1].max() < 1.45 * h
        feet = np.minimum.reduce([np.linalg.norm(j[:, a] - j[:, b], axis=1) for a in (7, 10) for b in (8, 11)])
        assert feet.min() > 0.04, f"{event}: the feet run into each other"


def test_clip_starts_at_origin_facing_plus_z_on_the_floor():
    clip = compose([EventLabel("walk_forward"), EventLabel("turn_right")], np.random.default_rng(5))
    j = clip.joints
    assert np.allclose(j[0, 0, [0, 2]], 0.0, atol=1e-6)
    across = (j[0, 2] - j[0, 1]) + (j[0, 17] - j[0, 16])
    forward = np.array([across[2], 0.0, -across[0]])
    forward /= np.linalg.norm(forward)
    assert forward[2] > 0.99
    assert abs(j[..., 1].min()) < 1e-4


def test_consecutive_events_join_smoothly():
    # Every event starts and ends standing with eased (zero-velocity) keys, so at each join all
    # joints are nearly still, though they move fast inside the events themselves.
    for seed, names in (
        (6, ("run", "squat", "spin", "jump_forward", "wave")),
        (7, ("walk_backward", "kick", "sidestep_left", "bow", "turn_right")),
    ):
        clip = compose([EventLabel(e) for e in names], np.random.default_rng(seed))
        j = clip.joints.astype(np.float64)
        speed = np.linalg.norm(np.diff(j, axis=0), axis=-1).max(axis=1)
        joins = [o.start for o in clip.occurrences[1:]]
        assert max(speed[b - 1 : b + 1].max() for b in joins) < 0.05  # < 1 m/s at every join
        assert speed.max() > 0.15  # ... while the events themselves move
