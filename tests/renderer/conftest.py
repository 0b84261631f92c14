"""Shared fixtures for the renderer tests: one GL renderer per module, synthetic motions, and a
synthetic SMPL-shaped model file at the real sizes (SMPL itself is licensed and never shipped)."""

from __future__ import annotations

import numpy as np
import pytest

from services.renderer import synthetic

SMPL_VERTS, SMPL_FACES, SMPL_JOINTS = 6890, 13776, 24


def smpl_rest_joints() -> np.ndarray:
    """(24, 3) T-pose: the synthetic standing pose with the arms raised sideways, plus hands."""
    j = synthetic.standing_pose()
    for side, sign in (("left", 1.0), ("right", -1.0)):
        sh = synthetic.JOINT[f"{side}_shoulder"]
        for k, name in enumerate(("elbow", "wrist"), start=1):
            j[synthetic.JOINT[f"{side}_{name}"]] = j[sh] + [sign * 0.26 * k, 0.0, 0.0]
    hands = j[[20, 21]] + [[0.08, 0.0, 0.0], [-0.08, 0.0, 0.0]]
    return np.concatenate([j, hands])


def write_synthetic_smpl(path, seed: int = 0) -> np.ndarray:
    """Write an .npz with SMPL's arrays at SMPL's sizes; returns its rest joints.

    Vertices lie along each joint's bone (skinned rigidly to that joint), the first 6 vertices of
    every joint sit symmetrically around it so J_regressor reproduces the rest joints exactly.
    """
    rng = np.random.default_rng(seed)
    rest = smpl_rest_joints()
    parents = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    child = {j: next((c for c in range(SMPL_JOINTS) if parents[c] == j), None) for j in range(SMPL_JOINTS)}
    owner = np.arange(SMPL_VERTS) % SMPL_JOINTS
    v = np.empty((SMPL_VERTS, 3))
    along = rng.uniform(0, 1, SMPL_VERTS)
    for j in range(SMPL_JOINTS):
        idx = np.flatnonzero(owner == j)
        end = rest[child[j]] if child[j] is not None else rest[j] + [0, 0.05, 0]
        v[idx] = rest[j] + along[idx, None] * (end - rest[j]) + rng.normal(0, 0.03, (len(idx), 3))
        markers = idx[:6]
        v[markers] = rest[j] + 0.01 * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    regressor = np.zeros((SMPL_JOINTS, SMPL_VERTS))
    for j in range(SMPL_JOINTS):
        regressor[j, np.flatnonzero(owner == j)[:6]] = 1 / 6
    weights = np.eye(SMPL_JOINTS)[owner]
    faces = np.empty((SMPL_FACES, 3), np.int64)
    for n in range(SMPL_FACES):
        j = n % SMPL_JOINTS
        faces[n] = rng.choice(np.flatnonzero(owner == j), 3, replace=False)
    kintree = np.array([[4294967295] + parents[1:], list(range(SMPL_JOINTS))], dtype=np.int64)
    np.savez(
        path,
        v_template=v,
        shapedirs=rng.normal(0, 0.01, (SMPL_VERTS, 3, 10)),
        posedirs=rng.normal(0, 0.001, (SMPL_VERTS, 3, 207)),
        J_regressor=regressor,
        weights=weights,
        kintree_table=kintree,
        f=faces,
    )
    return rest


@pytest.fixture(scope="module")
def motion_renderer():
    from services.renderer.frames import MotionRenderer

    mr = MotionRenderer()
    yield mr
    mr.close()


@pytest.fixture(scope="session")
def walk_motion() -> np.ndarray:
    return synthetic.walk(60, turn_rate=0.3)


@pytest.fixture(scope="session")
def smpl_rest() -> np.ndarray:
    """The rest joints (24, 3) of the synthetic SMPL model (a T-pose)."""
    return smpl_rest_joints()


@pytest.fixture(scope="session")
def smpl_file(tmp_path_factory):
    """Path of a synthetic SMPL-shaped .npz written once per session."""
    path = tmp_path_factory.mktemp("smpl") / "SMPL_SYNTH.npz"
    write_synthetic_smpl(path)
    return path
