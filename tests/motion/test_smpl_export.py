"""The SMPL-parameter export (atom.motion.smpl_export) without a SMPL model: the file's keys,
shapes and types as documented, its frames, and clear errors for bad motions and model files.
The round trip through a SMPL model and the real smplx package is tests/renderer/test_smpl_export.py."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from atom.motion.events import EventLabel
from atom.motion.ik import forward_kinematics, offsets_from_positions, world_rotations
from atom.motion.record import MotionFormatError
from atom.motion.skeleton import BONES
from atom.motion.smpl_export import SMPL_PARENTS, default_rest_joints, model_rest_joints, smpl_parameters, write_smpl_npz
from atom.motion.world.compose import compose


def _world_motion():
    return compose([EventLabel("walk_forward"), EventLabel("wave")], np.random.default_rng(0)).joints


def test_the_file_loads_with_numpy_with_the_documented_keys(tmp_path):
    joints = _world_motion()
    T = len(joints)
    path = write_smpl_npz(tmp_path / "motion_smpl.npz", joints)
    with np.load(path, allow_pickle=False) as z:  # plain arrays, nothing pickled
        data = {k: z[k] for k in z.files}
    shapes = {
        "poses": (T, 72),
        "root_orient": (T, 3),
        "pose_body": (T, 63),
        "trans": (T, 3),
        "betas": (10,),
        "gender": (),
        "mocap_framerate": (),
    }
    assert {k: v.shape for k, v in data.items()} == shapes
    assert str(data["gender"]) == "neutral" and float(data["mocap_framerate"]) == 20.0
    assert all(data[k].dtype == np.float32 for k in ("poses", "root_orient", "pose_body", "trans", "betas"))
    np.testing.assert_array_equal(data["root_orient"], data["poses"][:, :3])
    np.testing.assert_array_equal(data["pose_body"], data["poses"][:, 3:66])
    np.testing.assert_array_equal(data["poses"][:, 60:], 0)  # wrists (20, 21) and hands (22, 23) at rest
    np.testing.assert_allclose(data["trans"], joints[:, 0], atol=1e-6)  # no model: the rest pelvis is the origin


def test_played_on_its_rest_skeleton_the_export_aims_every_bone_it_solves():
    """Without a model the rotations are measured from the export's own T-pose. Posing that T-pose
    with them points each bone from a joint with one child (the limbs, spine, neck and head) where
    the motion points it. The pelvis and upper spine, with several children, turn as one rigid
    piece fitted to all of them (as SMPL's do), so the bones that branch there keep the rest layout."""
    joints = _world_motion().astype(np.float64)
    params = smpl_parameters(joints)
    local = Rotation.from_rotvec(params["poses"].reshape(-1, 3).astype(np.float64)).as_matrix()
    world = world_rotations(local.reshape(len(joints), 24, 3, 3), SMPL_PARENTS)
    offsets = offsets_from_positions(default_rest_joints(), SMPL_PARENTS)
    posed = forward_kinematics(params["trans"], offsets, world, SMPL_PARENTS)
    aimed = [(p, c) for p, c in BONES if [q for q, _ in BONES].count(p) == 1]
    assert len(aimed) == 15  # 21 bones less the 3 at the pelvis and the 3 at the upper spine
    for p, c in aimed:
        a, b = posed[:, c] - posed[:, p], joints[:, c] - joints[:, p]
        cos = np.einsum("ti,ti->t", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.min() > 0.99999, (p, c, cos.min())


def test_the_rest_pose_is_a_t_pose_facing_plus_z():
    rest = default_rest_joints()
    assert rest[20, 0] > rest[16, 0] > 0 > rest[17, 0] > rest[21, 0]  # arms out, left at +X
    assert rest[20, 1] == rest[16, 1] and rest[15, 1] > rest[12, 1]  # level arms, head above the neck
    assert rest[10, 2] > rest[7, 2] and rest[7, 1] < rest[4, 1] < rest[1, 1]  # feet forward, legs down


def test_bad_motions_are_refused_in_one_line(tmp_path):
    joints = _world_motion()
    broken = joints.copy()
    broken[5, 3, 1] = np.nan
    with pytest.raises(MotionFormatError, match="NaN or infinite values .first at frame 5"):
        write_smpl_npz(tmp_path / "a.npz", broken)
    with pytest.raises(MotionFormatError, match=r"shape \(T, 22, 3\), got \(40, 24, 3\)"):
        write_smpl_npz(tmp_path / "a.npz", np.zeros((40, 24, 3), np.float32))
    with pytest.raises(MotionFormatError, match=r"rest joints must be a finite \(24, 3\) array, got \(22, 3\)"):
        write_smpl_npz(tmp_path / "a.npz", joints, rest_joints=np.zeros((22, 3)))
    assert not (tmp_path / "a.npz").exists()


def test_bad_model_files_are_refused_in_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model_rest_joints(tmp_path / "nope.npz")
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="convert it to .npz first"):
        model_rest_joints(tmp_path / "SMPL_NEUTRAL.pkl")
    np.savez(tmp_path / "other.npz", v_template=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="not a SMPL model: it lacks J_regressor$"):
        model_rest_joints(tmp_path / "other.npz")
    np.savez(tmp_path / "other.npz", v_template=np.zeros((10, 3)), J_regressor=np.zeros((22, 10)))
    with pytest.raises(ValueError, match=r"should be \(V, 3\) and \(24, V\)"):
        model_rest_joints(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        model_rest_joints(tmp_path / "junk.npz")
