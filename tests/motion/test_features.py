"""HumanML3D features: round trip, layout facts, statistics, errors.

The motions are built here by forward kinematics on an approximate SMPL rest skeleton, so every
case (curved paths, spins, long walks, random wiggles) is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from atom.motion import quaternion as Q
from atom.motion.features import (
    FEATURE_GROUPS,
    MeanStd,
    canonicalize,
    compute_mean_std,
    denormalize,
    facing_directions,
    features_to_joints,
    features_to_joints_torch,
    inverse_kinematics,
    joints_to_features,
    normalize,
    root_rotations,
    round_trip_error,
)
from atom.motion.record import MotionFormatError
from atom.motion.skeleton import FEATURE_DIM, KINEMATIC_CHAINS, PARENTS, RAW_OFFSETS
from rest_skeleton import REST_BONES

X, Y, Z = np.eye(3)


def axis_angle(axis, angle):
    """Rotation matrices (T, 3, 3) about a fixed or per-frame axis."""
    angle = np.asarray(angle, dtype=np.float64)
    axis = np.broadcast_to(np.asarray(axis, dtype=np.float64), angle.shape + (3,))
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    x, y, z = np.moveaxis(axis, -1, 0)
    c, s = np.cos(angle), np.sin(angle)
    k = np.zeros(angle.shape + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 0] = -z, y, z
    k[..., 1, 2], k[..., 2, 0], k[..., 2, 1] = -x, -y, x
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + s[..., None, None] * k + (1 - c)[..., None, None] * (k @ k)


def forward_kinematics(root_pos, yaw, local=None):
    """root_pos (T,3), yaw (T,) about +Y, local {joint: (T,3,3)} -> joints (T,22,3)."""
    t = len(yaw)
    local = local or {}
    rot = [None] * 22
    pos = np.zeros((t, 22, 3))
    rot[0] = axis_angle(Y, yaw) @ local.get(0, np.broadcast_to(np.eye(3), (t, 3, 3)))
    pos[:, 0] = root_pos
    for j in range(1, 22):
        p = PARENTS[j]
        pos[:, j] = pos[:, p] + np.einsum("tij,j->ti", rot[p], REST_BONES[j])
        rot[j] = rot[p] @ local.get(j, np.broadcast_to(np.eye(3), (t, 3, 3)))
    return pos


def walk_limbs(phase):
    """Leg and arm swings of a walk cycle, arms lowered to an A-pose."""
    swing = 0.5 * np.sin(phase)
    return {
        1: axis_angle(X, -swing),
        2: axis_angle(X, swing),
        4: axis_angle(X, 0.6 * np.clip(np.sin(phase + 1.0), 0, None)),
        5: axis_angle(X, 0.6 * np.clip(-np.sin(phase + 1.0), 0, None)),
        16: axis_angle(Z, -1.2 + 0.0 * phase) @ axis_angle(X, swing),
        17: axis_angle(Z, 1.2 + 0.0 * phase) @ axis_angle(X, -swing),
        18: axis_angle(Y, 0.3 + 0.2 * np.sin(phase)),
    }


def curved_spin_motion(t=120):
    s = np.linspace(0, 1, t)
    ang = 1.2 * np.pi * s
    root = np.stack([2.0 * np.sin(ang), 0.93 + 0.02 * np.sin(8 * np.pi * s), 2.0 * (1 - np.cos(ang))], -1)
    yaw = ang + 3.0 * np.pi * s  # 216 deg from the path plus 540 deg of extra spin: > 360 deg
    return forward_kinematics(root, yaw, walk_limbs(8 * np.pi * s))


def in_place_rotation_motion(t=100, turns=2.0):
    s = np.linspace(0, 1, t)
    root = np.tile([0.3, 0.95, -0.4], (t, 1))
    return forward_kinematics(root, 2 * np.pi * turns * s + 0.7)


def long_walk_motion(t=197):
    s = np.linspace(0, 1, t)
    heading = -np.pi / 2 + 1.5 * np.sin(np.pi * s)  # starts facing -X, curves and comes back
    step = 0.06
    root = np.zeros((t, 3))
    root[:, 0] = 5.0 + np.cumsum(step * np.sin(heading))
    root[:, 2] = -2.0 + np.cumsum(step * np.cos(heading))
    root[:, 1] = 1.25 + 0.03 * np.abs(np.sin(10 * np.pi * s))  # floor sits at about y = 0.3
    return forward_kinematics(root, heading, walk_limbs(10 * np.pi * s))


def random_wiggle_motion(seed=0, t=90):
    rng = np.random.default_rng(seed)
    s = np.linspace(0, 1, t)

    def smooth(n):  # a few random sinusoids: smooth but irregular
        out = np.zeros((t,) + n)
        for _ in range(3):
            out += rng.normal(size=n) * np.sin(2 * np.pi * rng.uniform(0.5, 3) * s[:, None] + rng.uniform(0, 6, size=n))
        return out

    local = {j: axis_angle(rng.normal(size=3), 0.4 * smooth((1,))[:, 0]) for j in range(22)}
    root = np.stack([smooth((1,))[:, 0], 0.9 + 0.05 * smooth((1,))[:, 0], smooth((1,))[:, 0]], -1)
    yaw = 4.0 * smooth((1,))[:, 0]
    return forward_kinematics(root, yaw, local)


MOTIONS = {
    "curved_spin": curved_spin_motion,
    "in_place_rotation": in_place_rotation_motion,
    "fast_spin": lambda: in_place_rotation_motion(t=60, turns=5.0),  # 30 deg per frame
    "long_walk": long_walk_motion,
    "wiggle_0": lambda: random_wiggle_motion(0),
    "wiggle_1": lambda: random_wiggle_motion(1),
}


# ------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("name", sorted(MOTIONS))
@pytest.mark.parametrize("sigma", [0.0, 20.0])
def test_round_trip(name, sigma):
    joints = MOTIONS[name]()
    err = round_trip_error(joints, facing_sigma=sigma)
    print(f"round trip {name} sigma={sigma}: {err:.3e} m")
    assert err < 1e-4


def test_round_trip_matches_explicit_comparison():
    joints = long_walk_motion()
    feats = joints_to_features(joints)
    assert feats.shape == (196, FEATURE_DIM) and feats.dtype == np.float32
    rec = features_to_joints(feats)
    assert rec.shape == (196, 22, 3) and rec.dtype == np.float32
    np.testing.assert_allclose(rec, canonicalize(joints)[:-1], atol=1e-4)


def test_round_trip_error_detects_damage():
    joints = curved_spin_motion()
    feats = joints_to_features(joints)
    feats[:, 0] *= 1.05  # a wrong yaw rate must show up as a large error
    rec = features_to_joints(feats)
    assert np.max(np.linalg.norm(rec - canonicalize(joints)[:-1], axis=-1)) > 0.05


# ------------------------------------------------------------------------------ canonical frame


def test_canonicalize_frame():
    joints = long_walk_motion()
    can = canonicalize(joints)
    assert can.dtype == np.float32
    assert abs(can[..., 1].min()) < 1e-6
    np.testing.assert_allclose(can[0, 0, [0, 2]], [0, 0], atol=1e-6)
    np.testing.assert_allclose(facing_directions(can[:1])[0], [0, 0, 1], atol=1e-6)
    # Rigid: distances between joints are unchanged.
    d0 = np.linalg.norm(joints[:, 15] - joints[:, 10], axis=-1)
    d1 = np.linalg.norm(can[:, 15] - can[:, 10], axis=-1)
    np.testing.assert_allclose(d0, d1, atol=1e-5)
    # Idempotent.
    np.testing.assert_allclose(canonicalize(can), can, atol=1e-5)


def test_facing_of_rest_pose_is_plus_z_and_follows_yaw():
    joints = forward_kinematics(np.zeros((3, 3)), np.array([0.0, np.pi / 2, np.pi]))
    np.testing.assert_allclose(facing_directions(joints), [[0, 0, 1], [1, 0, 0], [0, 0, -1]], atol=1e-9)


def test_clip_starting_exactly_backwards():
    # Facing exactly -Z is the degenerate case of a shortest-arc turn; it must still be a yaw.
    t = 30
    joints = forward_kinematics(np.tile([0, 0.93, 0], (t, 1)), np.full(t, np.pi) + np.linspace(0, 1, t))
    can = canonicalize(joints)
    np.testing.assert_allclose(facing_directions(can[:1])[0], [0, 0, 1], atol=1e-6)
    assert can[0, 15, 1] > can[0, 0, 1]  # still upright: head above pelvis
    assert round_trip_error(joints) < 1e-4


def test_root_rotations_identity_on_first_frame():
    can = canonicalize(curved_spin_motion()).astype(np.float64)
    for sigma in (0.0, 20.0):
        rot = root_rotations(can, sigma)
        np.testing.assert_allclose(rot[0], [1, 0, 0, 0], atol=1e-12)
        np.testing.assert_allclose(rot[:, [1, 3]], 0, atol=1e-12)  # pure yaw


# ------------------------------------------------------------------------------ layout facts


def test_yaw_rate_and_root_velocity_in_place():
    turns, t = 1.0, 41
    joints = in_place_rotation_motion(t=t, turns=turns)
    feats = joints_to_features(joints, facing_sigma=0.0)
    per_frame = 2 * np.pi * turns / (t - 1)
    # Turning left (positive about +Y) gives a negative stored half angle, as in HumanML3D.
    np.testing.assert_allclose(feats[:, 0], -per_frame / 2, atol=1e-6)
    np.testing.assert_allclose(feats[:, 1:3], 0, atol=1e-6)
    np.testing.assert_allclose(feats[:, 3], canonicalize(joints)[:-1, 0, 1], atol=1e-6)


def test_root_velocity_is_in_facing_frame():
    t = 30
    heading = np.full(t, 0.9)  # walk straight along a diagonal, facing it
    root = np.stack([0.05 * np.arange(t) * np.sin(0.9), np.full(t, 0.95), 0.05 * np.arange(t) * np.cos(0.9)], -1)
    feats = joints_to_features(forward_kinematics(root, heading))
    np.testing.assert_allclose(feats[:, 1], 0, atol=1e-6)  # no sideways motion
    np.testing.assert_allclose(feats[:, 2], 0.05, atol=1e-6)  # forward speed, +Z


def test_ric_first_frame_and_local_velocities():
    joints = random_wiggle_motion(3)
    can = canonicalize(joints)
    feats = joints_to_features(joints)
    ric0 = feats[0, 4:67].reshape(21, 3)
    expected = can[0, 1:] - can[0, 0] * np.array([1, 0, 1])
    np.testing.assert_allclose(ric0, expected, atol=1e-5)
    vel0 = feats[0, 193:259].reshape(22, 3)
    np.testing.assert_allclose(vel0, can[1] - can[0], atol=1e-5)  # frame 0 faces +Z


def test_foot_contacts():
    t = 20
    joints = forward_kinematics(np.tile([0, 0.93, 0], (t, 1)), np.zeros(t))
    joints[:, 8] += np.linspace(0, 1, t)[:, None] * np.array([0, 0, 1.0])  # right ankle slides
    feats = joints_to_features(joints)
    contacts = feats[:, 259:263]
    np.testing.assert_array_equal(contacts[:, :2], 1.0)  # left ankle and foot still
    np.testing.assert_array_equal(contacts[:, 2], 0.0)  # right ankle moves 5 cm per frame
    np.testing.assert_array_equal(contacts[:, 3], 1.0)
    assert set(np.unique(contacts)) <= {0.0, 1.0}


def test_rotations_are_sensible():
    joints = random_wiggle_motion(4)
    feats = joints_to_features(joints)
    rot6d = feats[:, 67:193].reshape(len(feats), 21, 6).astype(np.float64)
    assert np.all(np.isfinite(rot6d))
    c0, c1 = rot6d[..., :3], rot6d[..., 3:]
    np.testing.assert_allclose(np.linalg.norm(c0, axis=-1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(c1, axis=-1), 1, atol=1e-5)
    np.testing.assert_allclose(np.sum(c0 * c1, axis=-1), 0, atol=1e-5)


def test_inverse_kinematics_reproduces_bone_directions():
    can = canonicalize(random_wiggle_motion(5)).astype(np.float64)
    rot = root_rotations(can)
    quats = inverse_kinematics(can, rot)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=-1), 1, atol=1e-9)
    for chain in KINEMATIC_CHAINS:
        glob = rot
        for parent, child in zip(chain[:-1], chain[1:]):
            glob = Q.qmul(glob, quats[:, child])
            bone = can[:, child] - can[:, parent]
            bone /= np.linalg.norm(bone, axis=-1, keepdims=True)
            moved = Q.qrot(glob, np.broadcast_to(np.asarray(RAW_OFFSETS[child], float), bone.shape))
            np.testing.assert_allclose(moved, bone, atol=1e-9)


def test_deterministic():
    joints = random_wiggle_motion(6)
    assert joints_to_features(joints).tobytes() == joints_to_features(joints.copy()).tobytes()


# ------------------------------------------------------------------------------ torch


def test_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    feats = np.stack([joints_to_features(long_walk_motion()), joints_to_features(curved_spin_motion(197))])
    ref = features_to_joints(feats)
    assert ref.shape == (2, 196, 22, 3)
    for dtype in (torch.float32, torch.float64):
        out = features_to_joints_torch(torch.from_numpy(feats).to(dtype))
        assert out.shape == (2, 196, 22, 3) and out.dtype == dtype
        np.testing.assert_allclose(out.double().numpy(), ref, atol=1e-5)
    one = features_to_joints_torch(torch.from_numpy(feats[:, :1]))  # a single frame
    np.testing.assert_allclose(one.numpy(), features_to_joints(feats[:, :1]), atol=1e-6)
    # Batch rows are independent and equal the unbatched result.
    single = features_to_joints_torch(torch.from_numpy(feats[1]))
    np.testing.assert_allclose(single.numpy(), ref[1], atol=1e-5)


def test_torch_is_differentiable():
    torch = pytest.importorskip("torch")
    feats = torch.from_numpy(joints_to_features(curved_spin_motion(40))).double().requires_grad_(True)
    features_to_joints_torch(feats).sum().backward()
    assert torch.isfinite(feats.grad).all() and feats.grad[:, 4:67].abs().sum() > 0


# ------------------------------------------------------------------------------ statistics


def test_compute_mean_std_pools_groups():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(n, FEATURE_DIM)) * rng.uniform(0.1, 2, FEATURE_DIM) + 3 for n in (5, 17, 40)]
    ms = compute_mean_std(arrays)
    data = np.concatenate(arrays)
    np.testing.assert_allclose(ms.mean, data.mean(0), rtol=1e-5)
    per_dim = data.std(0)
    for name, sl in FEATURE_GROUPS:
        expected = per_dim[sl].mean() / (5.0 if name in ("root_rot_vel", "root_lin_vel", "root_y", "foot_contact") else 1.0)
        np.testing.assert_allclose(ms.std[sl], expected, rtol=1e-5)
        assert len(np.unique(ms.std[sl])) == 1
    assert ms.mean.dtype == np.float32 and ms.std.shape == (FEATURE_DIM,)


def test_compute_mean_std_on_real_features_and_constant_groups():
    feats = [joints_to_features(long_walk_motion()), joints_to_features(random_wiggle_motion(0))]
    for f in feats:
        f[:, 259:263] = 1.0  # contacts that never change: pooled std 0 -> guarded to 1
    ms = compute_mean_std(feats)
    np.testing.assert_array_equal(ms.std[259:263], 1.0)
    assert np.all(ms.std > 0)
    assert abs(ms.mean[3] - np.concatenate(feats)[:, 3].mean()) < 1e-5


def test_normalize_round_trip_numpy_and_torch():
    rng = np.random.default_rng(1)
    ms = MeanStd(mean=rng.normal(size=FEATURE_DIM), std=rng.uniform(0.01, 1, FEATURE_DIM))
    feats = rng.normal(size=(7, FEATURE_DIM)).astype(np.float32)
    np.testing.assert_allclose(denormalize(normalize(feats, ms), ms), feats, atol=1e-5)
    np.testing.assert_allclose(normalize(feats, ms), (feats - ms.mean) / ms.std, rtol=1e-6)
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(feats)[None]
    out = normalize(t, ms)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out[0].numpy(), normalize(feats, ms), atol=1e-6)
    np.testing.assert_allclose(denormalize(out, ms)[0].numpy(), feats, atol=1e-5)


def test_mean_std_validation():
    with pytest.raises(MotionFormatError, match="positive"):
        MeanStd(mean=np.zeros(FEATURE_DIM), std=np.zeros(FEATURE_DIM))
    with pytest.raises(MotionFormatError, match="shape"):
        MeanStd(mean=np.zeros(10), std=np.ones(10))
    with pytest.raises(MotionFormatError, match="NaN"):
        MeanStd(mean=np.full(FEATURE_DIM, np.nan), std=np.ones(FEATURE_DIM))
    with pytest.raises(MotionFormatError, match="at least one"):
        compute_mean_std([])
    with pytest.raises(MotionFormatError, match="shape"):
        compute_mean_std([np.zeros((4, 251))])


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((10, 21, 3)), "shape"),
        (np.zeros((10, 22)), "shape"),
        (np.zeros((1, 22, 3)), "at least 2"),
    ],
)
def test_joint_shape_errors(bad, match):
    with pytest.raises(MotionFormatError, match=match):
        joints_to_features(bad)
    with pytest.raises(MotionFormatError, match=match):
        canonicalize(bad)


def test_non_finite_errors():
    joints = in_place_rotation_motion(t=10)
    joints[4, 3, 1] = np.nan
    with pytest.raises(MotionFormatError, match="frame 4"):
        joints_to_features(joints)
    feats = np.zeros((5, FEATURE_DIM))
    feats[2, 7] = np.inf
    with pytest.raises(MotionFormatError, match="NaN or infinite"):
        features_to_joints(feats)


def test_feature_shape_errors():
    with pytest.raises(MotionFormatError, match="263"):
        features_to_joints(np.zeros((5, 259)))
    with pytest.raises(MotionFormatError, match="no frames"):
        features_to_joints(np.zeros((0, FEATURE_DIM)))
    torch = pytest.importorskip("torch")
    with pytest.raises(MotionFormatError, match="263"):
        features_to_joints_torch(torch.zeros(2, 5, 262))
    with pytest.raises(MotionFormatError):
        normalize(np.zeros((3, 5)), MeanStd(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)))


# ------------------------------------------------------------------------------ quaternions


def test_quaternion_helpers():
    rng = np.random.default_rng(2)
    q = Q.qnormalize(rng.normal(size=(50, 4)))
    v = rng.normal(size=(50, 3))
    mats = Q.quat_to_matrix(q)
    np.testing.assert_allclose(Q.qrot(q, v), np.einsum("nij,nj->ni", mats, v), atol=1e-12)
    np.testing.assert_allclose(Q.qrot(Q.qinv(q), Q.qrot(q, v)), v, atol=1e-12)
    p = Q.qnormalize(rng.normal(size=(50, 4)))
    np.testing.assert_allclose(Q.qrot(Q.qmul(p, q), v), Q.qrot(p, Q.qrot(q, v)), atol=1e-12)
    back = Q.matrix_to_quat(mats)
    np.testing.assert_allclose(np.abs(np.sum(back * q, axis=-1)), 1, atol=1e-9)
    np.testing.assert_allclose(Q.cont6d_to_matrix(Q.quat_to_cont6d(q)), mats, atol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(Q.cont6d_to_quat(Q.quat_to_cont6d(q)) * q, -1)), 1, atol=1e-9)


def test_qbetween_edge_cases():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    q = Q.qbetween(a, b)
    np.testing.assert_allclose(
        Q.qrot(q, a / np.linalg.norm(a, axis=-1, keepdims=True)), b / np.linalg.norm(b, axis=-1, keepdims=True), atol=1e-9
    )
    opposite = Q.qbetween(np.array([[0, 0, 1.0], [1, 0, 0]]), np.array([[0, 0, -2.0], [-1, 0, 0]]))
    np.testing.assert_allclose(Q.qrot(opposite, np.array([[0, 0, 1.0], [1, 0, 0]])), [[0, 0, -1], [-1, 0, 0]], atol=1e-9)
    np.testing.assert_allclose(Q.qbetween(np.zeros(3), np.array([1.0, 0, 0])), [1, 0, 0, 0])
    np.testing.assert_allclose(Q.qyaw(np.pi / 2), [np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0])
    np.testing.assert_allclose(Q.qrot(Q.qyaw(np.pi / 2), np.array([0, 0, 1.0])), [1, 0, 0], atol=1e-12)
