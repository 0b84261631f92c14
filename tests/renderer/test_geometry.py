"""Pure geometry: skeleton mesh, cameras, floor, PNG encoding, tiling (no OpenGL needed)."""

import io

import numpy as np
import pytest
from PIL import Image

from atom.motion.skeleton import BONES, NUM_JOINTS
from services.renderer.camera import CameraRig, follow_poses, framing_pose, look_at, smooth_path
from services.renderer.floor import face_up, floor_quad, path_strip
from services.renderer.forms import full_image, tile_size
from services.renderer.png import encode_png
from services.renderer.skeleton_mesh import (
    LEFT_COLOR,
    RIGHT_COLOR,
    SPINE_COLOR,
    SkeletonTemplate,
    bone_frames,
    facing_direction,
    joint_colors,
)
from services.renderer.synthetic import standing_pose, walk


def _face_normals(pos, faces):
    a, b, c = pos[faces[:, 0]], pos[faces[:, 1]], pos[faces[:, 2]]
    return np.cross(b - a, c - a)


def test_skeleton_template_places_spheres_and_bones_on_the_joints():
    t = SkeletonTemplate()
    joints = walk(10)[[0, 5]]
    pos, nrm = t.pose(joints)
    assert pos.shape == nrm.shape == (2, t.vertices_per_pose, 3)
    assert t.faces.max() < t.vertices_per_pose
    sv = (t.vertices_per_pose - len(BONES) * 2 * t.cylinder_segments) // (NUM_JOINTS + 1)
    for p in range(2):
        spheres = pos[p, : NUM_JOINTS * sv].reshape(NUM_JOINTS, sv, 3)
        np.testing.assert_allclose(spheres.mean(axis=1), joints[p], atol=1e-5)
        cyl = pos[p, (NUM_JOINTS + 1) * sv :].reshape(len(BONES), 2, t.cylinder_segments, 3)
        for b, (parent, child) in enumerate(BONES):
            np.testing.assert_allclose(cyl[b, 0].mean(axis=0), joints[p, parent], atol=1e-5)
            np.testing.assert_allclose(cyl[b, 1].mean(axis=0), joints[p, child], atol=1e-5)
            radius = np.linalg.norm(cyl[b, 0] - joints[p, parent], axis=1)
            np.testing.assert_allclose(radius, t.bone_radius, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=-1), 1.0, atol=1e-5)


def test_skeleton_triangles_face_outwards():
    # Back faces are culled, so inward-wound triangles would vanish.
    t = SkeletonTemplate()
    pos, nrm = t.pose(standing_pose()[None])
    pos, nrm = pos[0].astype(np.float64), nrm[0].astype(np.float64)
    fn = _face_normals(pos, t.faces.astype(np.int64))
    vn = nrm[t.faces].mean(axis=1)
    keep = np.linalg.norm(fn, axis=1) > 1e-12
    assert (np.einsum("ij,ij->i", fn[keep], vn[keep]) > 0).mean() > 0.99


def test_faces_for_several_poses_are_offset():
    t = SkeletonTemplate()
    f3 = t.faces_for(3)
    assert f3.shape == (3 * len(t.faces), 3)
    assert f3.max() == 3 * t.vertices_per_pose - 1


def test_chain_colours():
    c = joint_colors()
    np.testing.assert_array_equal(c[[2, 5, 8, 11, 14, 17, 19, 21]], np.tile(RIGHT_COLOR, (8, 1)))
    np.testing.assert_array_equal(c[[1, 4, 7, 10, 13, 16, 18, 20]], np.tile(LEFT_COLOR, (8, 1)))
    np.testing.assert_array_equal(c[[0, 3, 6, 9, 12, 15]], np.tile(SPINE_COLOR, (6, 1)))


def test_bone_frames_are_orthonormal_even_for_degenerate_bones():
    a = np.zeros((4, 3))
    b = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, -1.0], [0, 0, 0]])
    d, u, w = bone_frames(a, b)
    for x, y in ((d, u), (d, w), (u, w)):
        np.testing.assert_allclose(np.einsum("ij,ij->i", x, y), 0, atol=1e-12)
    for x in (d, u, w):
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(np.cross(u, d), w, atol=1e-12)  # right-handed like (X, Y, Z)


def test_facing_direction_of_the_rest_pose_is_plus_z():
    np.testing.assert_allclose(facing_direction(standing_pose()), [0, 0, 1], atol=1e-9)


def test_look_at_points_the_camera_at_the_target():
    pose = look_at([3.0, 2.0, 4.0], [0.0, 1.0, 0.0])
    fwd = -pose[:3, 2]
    expected = np.array([-3.0, -1.0, -4.0]) / np.sqrt(26)
    np.testing.assert_allclose(fwd, expected, atol=1e-12)
    np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
    assert pose[:3, 1][1] > 0  # up stays up


def test_smooth_path_keeps_lines_and_removes_jitter():
    t = np.arange(100, dtype=float)
    line = np.stack([t * 0.05, t * 0.0], axis=1)
    np.testing.assert_allclose(smooth_path(line, 5)[20:80], line[20:80], atol=1e-9)
    jitter = line + np.stack([np.zeros(100), 0.1 * (-1.0) ** t], axis=1)
    assert np.abs(smooth_path(jitter, 5)[20:80, 1]).max() < 0.01


def test_follow_camera_keeps_its_height_during_a_jump():
    roots = np.zeros((40, 3))
    roots[:, 1] = 0.9 + 0.4 * np.sin(np.linspace(0, np.pi, 40))
    poses = follow_poses(roots)
    np.testing.assert_allclose(poses[:, 1, 3], poses[0, 1, 3])


def _project(pose, points, yfov, aspect):
    view = np.linalg.inv(pose)
    cam = points @ view[:3, :3].T + view[:3, 3]
    z = -cam[:, 2]
    assert (z > 0).all()
    f = 1 / np.tan(yfov / 2)
    return np.stack([cam[:, 0] * f / aspect / z, cam[:, 1] * f / z], axis=1)


@pytest.mark.parametrize("aspect", [1.0, 0.5, 2.0])
def test_framing_pose_keeps_every_point_in_view(aspect):
    rig = CameraRig()
    joints = walk(196, speed=2.0, turn_rate=0.6)
    pose = framing_pose(joints.reshape(-1, 3), aspect, rig)
    ndc = _project(pose, joints.reshape(-1, 3), rig.yfov, aspect)
    assert np.abs(ndc).max() <= 1.0


def test_floor_and_path_triangles_face_up():
    pos, uv, faces = floor_quad((3.0, -2.0), 10.0, 0.5)
    assert (_face_normals(pos, faces)[:, 1] > 0).all()
    np.testing.assert_allclose(uv, pos[:, [0, 2]] / 1.0)  # world-aligned: 2 tiles per texture repeat
    path = np.stack([np.linspace(0, 3, 30), np.sin(np.linspace(0, 3, 30))], axis=1)
    p, f = path_strip(path, 0.05, 0.01)
    assert p.shape == (4 * 29, 3) and f.shape == (2 * 29, 3)
    assert (_face_normals(p, f)[:, 1] > 0).all()
    bad = np.array([[0, 2, 1]])
    assert (_face_normals(pos, face_up(pos, bad))[:, 1] > 0).all()


def test_png_encoder_round_trips_through_pillow():
    rng = np.random.default_rng(0)
    for shape in [(32, 32, 3), (37, 53, 3), (256, 256, 3)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        data = encode_png(img)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_array_equal(back, img)
        assert encode_png(img) == data  # deterministic
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("n,cols,rows", [(1, 1, 1), (5, 5, 1), (6, 5, 2), (13, 5, 3), (25, 5, 5)])
def test_full_image_tiles_five_per_row(n, cols, rows):
    frames = [np.full((40, 30, 3), 10 * i, np.uint8) for i in range(n)]
    out = full_image(frames, [8 * i for i in range(n)])
    w, h = tile_size(n, 30, 40)
    assert out.shape == (h, w, 3)
    assert w == cols * 30 + (cols - 1) * 2 and h == rows * 40 + (rows - 1) * 2
    # Each tile keeps its frame (away from the label in the top-left corner).
    for i in range(n):
        r, c = divmod(i, 5)
        y, x = r * 42, c * 32
        assert (out[y + 35, x + 25] == 10 * i).all()


def test_full_image_labels_each_tile():
    frames = [np.full((64, 64, 3), 128, np.uint8) for _ in range(2)]
    out = full_image(frames, [0, 8])
    dark = out[:20, :64].min(axis=2) < 60  # label text is near-black
    assert dark.sum() > 10
    assert (out[:20, 66:].min(axis=2) < 60).sum() > 10
