"""BVH export checked by an independent reader: bvhio (from PyPI) parses the file and computes
every joint's world position frame by frame; they must be the motion's joints."""

import numpy as np
import pytest

from atom.motion.bvh import FILE_ORDER, joints_to_bvh, rest_offsets
from atom.motion.events import EventLabel
from atom.motion.skeleton import JOINT_NAMES, PARENTS
from atom.motion.world.compose import compose

bvhio = pytest.importorskip("bvhio")


def _world(seed=0, events=("walk_forward", "wave", "spin", "squat")):
    return compose([EventLabel(e) for e in events], np.random.default_rng(seed)).joints.astype(np.float64)


def _played_back(text: str, tmp_path, frames) -> np.ndarray:
    path = tmp_path / "motion.bvh"
    path.write_text(text)
    root = bvhio.readAsHierarchy(str(path))
    layout = root.layout()
    by_name = {joint.Name: joint for joint, _, _ in layout}
    out = []
    for f in frames:
        root.loadPose(f)
        out.append([[*by_name[name].PositionWorld] for name in JOINT_NAMES])
    return np.array(out)


def test_header_frame_rate_and_channels():
    joints = _world()
    text = joints_to_bvh(joints)
    lines = text.splitlines()
    assert lines[0] == "HIERARCHY" and lines[1] == "ROOT pelvis"
    motion = lines.index("MOTION")
    assert lines[motion + 1] == f"Frames: {len(joints)}" and lines[motion + 2] == "Frame Time: 0.050000"
    frame = lines[motion + 3].split()
    assert len(frame) == 3 + 3 * len(JOINT_NAMES)  # root position + three rotations per joint
    np.testing.assert_allclose([float(v) for v in frame[:3]], joints[0, 0], atol=1e-6)  # metres, Y up
    assert sorted(FILE_ORDER) == list(range(len(JOINT_NAMES))) and FILE_ORDER[0] == 0
    assert all(FILE_ORDER.index(p) < FILE_ORDER.index(c) for c, p in enumerate(PARENTS) if p >= 0)


def test_rigid_skeleton_round_trips_below_a_millimetre(tmp_path):
    """The procedural world's skeleton has fixed bone lengths (as HumanML3D's SMPL-derived motions
    nearly do): playing the BVH back gives the joints to within 1 mm at every frame."""
    joints = _world()
    played = _played_back(joints_to_bvh(joints), tmp_path, range(0, len(joints), 4))
    error_mm = np.linalg.norm(played - joints[::4], axis=-1) * 1000
    assert error_mm.max() < 1.0, error_mm.max()


def test_bones_that_change_length_stay_within_the_stated_bound(tmp_path):
    """A generated motion's bones change length a little from frame to frame; the BVH keeps one
    length per bone (the mean), so the error is bounded by those changes: here bones jittered by
    up to 2% stay within 6 mm on average and 30 mm at worst (measured: 3.1 mm and 14.8 mm)."""
    joints = _world(seed=1)
    rng = np.random.default_rng(0)
    jittered = joints.copy()
    for c, p in enumerate(PARENTS):  # parents first: scale each bone, carry its subtree along
        if p >= 0:
            bone = joints[:, c] - joints[:, p]
            scale = 1 + rng.uniform(-0.02, 0.02, size=(len(joints), 1))
            jittered[:, c] = jittered[:, p] + bone * scale
    played = _played_back(joints_to_bvh(jittered), tmp_path, range(0, len(joints), 6))
    error_mm = np.linalg.norm(played - jittered[::6], axis=-1) * 1000
    assert error_mm.mean() < 6 and error_mm.max() < 30, (error_mm.mean(), error_mm.max())


def test_rest_pose_keeps_the_pelvis_layout():
    joints = _world()
    offsets = rest_offsets(joints)
    for child in (1, 2, 3):  # hips and lower spine: lengths as in the motion
        length = np.linalg.norm(joints[:, child] - joints[:, 0], axis=-1).mean()
        assert abs(np.linalg.norm(offsets[child]) - length) < 1e-3
    assert offsets[4][1] < 0 and offsets[6][1] > 0  # knee below hip, spine2 above spine1 at rest
