"""The shared inverse kinematics (atom.motion.ik): posing a skeleton with random rotations and
solving them back from its joint positions gives the same positions, on HumanML3D's 22-joint tree
and on SMPL's 24-joint tree with targets for its first 22 joints only."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from atom.motion.ik import forward_kinematics, local_rotations, offsets_from_positions, solve_rotations, world_rotations
from atom.motion.skeleton import PARENTS
from atom.motion.smpl_export import SMPL_PARENTS, default_rest_joints


def _random_motion(parents, rest, frames, seed):
    """Positions of `rest` posed by random local rotations (up to about 1 rad per joint)."""
    rng = np.random.default_rng(seed)
    local = Rotation.from_rotvec(rng.normal(0, 0.5, (frames * len(parents), 3))).as_matrix()
    world = world_rotations(local.reshape(frames, len(parents), 3, 3), parents)
    root = rng.uniform(-1, 1, (frames, 3))
    return forward_kinematics(root, offsets_from_positions(rest, parents), world, parents)


@pytest.mark.parametrize("parents, targets", [(PARENTS, 22), (SMPL_PARENTS, 22)])
def test_solved_rotations_replay_the_positions(parents, targets):
    rng = np.random.default_rng(1)
    rest = default_rest_joints()[: len(parents)] * rng.uniform(0.05, 0.4, (len(parents), 1))  # uneven bones
    offsets = offsets_from_positions(rest, parents)
    motion = _random_motion(parents, rest, frames=50, seed=2)
    world = solve_rotations(motion[:, :targets], offsets, parents)
    eye = np.broadcast_to(np.eye(3), world.shape)
    np.testing.assert_allclose(world @ np.swapaxes(world, -1, -2), eye, atol=1e-9)  # rotations, not
    np.testing.assert_allclose(np.linalg.det(world), 1.0, atol=1e-9)  # reflections
    replayed = forward_kinematics(motion[:, 0], offsets, world, parents)
    np.testing.assert_allclose(replayed[:, :targets], motion[:, :targets], atol=1e-9)
    local = local_rotations(world, parents)
    np.testing.assert_allclose(world_rotations(local, parents), world, atol=1e-12)
    # A joint with no targeted child stays at rest relative to its parent (SMPL's wrists, hands).
    for j in range(len(parents)):
        if not any(p == j for p in parents[:targets]):
            np.testing.assert_allclose(local[:, j], eye[:, j], atol=1e-12)


def test_a_bone_turned_exactly_against_its_rest_direction():
    rest = default_rest_joints()[:22]
    offsets = offsets_from_positions(rest, PARENTS)
    motion = np.repeat(rest[None], 3, axis=0)
    motion[:, 20] = motion[:, 18] - offsets[20]  # the left forearm points back along the upper arm
    world = solve_rotations(motion, offsets, PARENTS)
    replayed = forward_kinematics(motion[:, 0], offsets, world, PARENTS)
    assert np.all(np.isfinite(world))
    np.testing.assert_allclose(replayed, motion, atol=1e-9)
