"""SMPL mesh style: model conversion without chumpy, analytic IK (atom.motion.ik, through
atom.motion.smpl_export.solve_smpl_pose), posing with smplx, rendering.

The real SMPL files are licensed, so these tests write a synthetic model with SMPL's array
names and sizes (6890 vertices, 13776 faces, 24 joints, 10 shape and 207 pose directions)."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp

from atom.motion.skeleton import BONES, PARENTS
from atom.motion.smpl_export import solve_smpl_pose
from services.renderer import RenderOptions, render
from services.renderer.api import decode_png
from services.renderer.smpl import (
    SMPL_PARENTS,
    SmplBody,
    SmplModelError,
    convert_smpl_pkl,
    load_smpl_arrays,
    read_smpl_pkl,
)
from services.renderer.synthetic import jump, raise_arms, walk


def _cosines(posed, target):
    out = []
    for p, c in BONES:
        a, b = posed[:, c] - posed[:, p], target[:, c] - target[:, p]
        out.append(np.einsum("ti,ti->t", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    return np.array(out)  # (bones, T)


def _forward_kinematics(rest, local, root):
    T = len(local)
    glob = np.zeros_like(local)
    pos = np.zeros((T, 24, 3))
    glob[:, 0], pos[:, 0] = local[:, 0], root
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        glob[:, j] = glob[:, p] @ local[:, j]
        pos[:, j] = pos[:, p] + np.einsum("tij,j->ti", glob[:, p], rest[j] - rest[p])
    return pos


@pytest.mark.parametrize("motion", [walk(40, turn_rate=0.8), raise_arms(30), jump(30)])
def test_ik_reproduces_every_bone_direction(motion, smpl_rest):
    rest = smpl_rest  # a T-pose: the arms must rotate down to match the motions
    local, transl = solve_smpl_pose(motion, rest)
    assert local.shape == (len(motion), 24, 3, 3)
    np.testing.assert_allclose(local @ np.transpose(local, (0, 1, 3, 2)), np.broadcast_to(np.eye(3), local.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(local), 1.0, atol=1e-9)
    posed = _forward_kinematics(rest, local, motion[:, 0])
    np.testing.assert_allclose(posed[:, 0], rest[0] + transl, atol=1e-9)
    cos = _cosines(posed, motion)
    assert cos.min() > 0.999


def test_ik_handles_a_bone_pointing_opposite_to_rest(smpl_rest):
    rest = smpl_rest
    target = np.asarray(walk(2), np.float64)
    # Flip the left forearm so it points exactly against its rest direction.
    target[:, 20] = target[:, 18] - (rest[20] - rest[18])
    local, _ = solve_smpl_pose(target, rest)
    posed = _forward_kinematics(rest, local, target[:, 0])
    assert _cosines(posed, target).min() > 0.999


def test_smpl_parents_extend_the_humanml3d_tree():
    assert SMPL_PARENTS[:22] == PARENTS and SMPL_PARENTS[22:] == (20, 21)


@pytest.fixture(scope="module")
def smpl_body(smpl_file):
    return SmplBody.from_file(smpl_file)


def test_smplx_poses_the_synthetic_model_onto_the_joints(smpl_body):
    motion = walk(30, turn_rate=0.6)[::3]
    verts, joints = smpl_body.posed_vertices(motion)
    assert verts.shape == (len(motion), 6890, 3) and joints.shape == (len(motion), 24, 3)
    np.testing.assert_allclose(joints[:, 0], motion[:, 0], atol=1e-4)
    assert _cosines(joints, motion).min() > 0.999
    pos, nrm = smpl_body.pose(motion)
    used = np.unique(smpl_body.faces_for(1))  # random synthetic faces leave some vertices unused
    np.testing.assert_allclose(np.linalg.norm(nrm[:, used], axis=-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(pos, verts, atol=1e-5)


def test_mesh_style_renders_each_form(smpl_body, motion_renderer):
    motion = walk(24)
    before = motion_renderer.scene.frames_drawn
    out = render(
        motion, RenderOptions(form="frame_by_frame", style="mesh", width=96, height=96), renderer=motion_renderer, smpl_model=smpl_body
    )
    assert motion_renderer.scene.frames_drawn - before == 3 == len(out.images)
    img = decode_png(out.images[0])
    assert img.shape == (96, 96, 3) and len(np.unique(img.reshape(-1, 3), axis=0)) > 30
    traj = render(
        motion, RenderOptions(style="mesh", form="trajectory_image", width=96, height=96), renderer=motion_renderer, smpl_model=smpl_body
    )
    assert decode_png(traj.images[0]).shape == (96, 96, 3)


def test_mesh_style_finds_the_model_through_the_environment(smpl_file, motion_renderer, monkeypatch):
    monkeypatch.setenv("ATOM_SMPL_MODEL", str(smpl_file))
    out = render(walk(10), RenderOptions(form="frame_by_frame", style="mesh", interval=10, width=64, height=64), renderer=motion_renderer)
    assert len(out.images) == 1


def test_bad_model_arrays_are_rejected(tmp_path, smpl_file):
    arrays = dict(np.load(smpl_file))
    arrays["weights"] = arrays["weights"][:, :20]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(SmplModelError, match="weights"):
        load_smpl_arrays(bad)
    del arrays["f"]
    np.savez(bad, **arrays)
    with pytest.raises(SmplModelError, match="missing arrays"):
        load_smpl_arrays(bad)


# -- conversion of the official pickle (chumpy arrays inside) --------------------------------


def _write_chumpy_pickle(path, arrays, protocol):
    """Pickle `arrays` the way the official files are: shapedirs as a chumpy.ch.Ch object whose
    state holds the value under 'x', J_regressor as a scipy csc matrix. A stand-in chumpy module
    exists only while pickling, so the reader cannot import it."""
    pkg, mod = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    Ch = type("Ch", (), {"__module__": "chumpy.ch"})
    mod.Ch, pkg.ch = Ch, mod
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, mod
    try:
        ch = Ch.__new__(Ch)
        ch.__dict__.update({"x": arrays["shapedirs"], "_dirty_vars": set(), "_itr": None})
        data = dict(arrays, shapedirs=ch, J_regressor=sp.csc_matrix(arrays["J_regressor"]), bs_type="lrotmin", bs_style="lbs")
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=protocol)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.mark.parametrize("protocol", [0, 2])
def test_convert_smpl_pkl_without_chumpy(tmp_path, smpl_file, protocol):
    arrays = dict(np.load(smpl_file))
    pkl = tmp_path / "SMPL_NEUTRAL.pkl"
    _write_chumpy_pickle(pkl, arrays, protocol)
    assert "chumpy" not in sys.modules
    out = convert_smpl_pkl(pkl, tmp_path / "out" / "SMPL_NEUTRAL.npz")
    assert out.is_file() and "chumpy" not in sys.modules
    converted = load_smpl_arrays(out)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f"):
        np.testing.assert_allclose(converted[key], arrays[key])
    with np.load(out, allow_pickle=False) as z:  # plain arrays only
        assert set(z.files) == {"v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"}


def test_convert_refuses_a_hostile_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_smpl_pkl(pkl)
    assert not (tmp_path / "pwned").exists()
