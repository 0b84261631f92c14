"""SMPL parameters of a motion, for Blender and the SMPL tool chain: the 22 HumanML3D joints
turned into SMPL joint rotations by inverse kinematics (atom.motion.ik), saved in the npz layout
of AMASS (Mahmood et al., ICCV 2019), which SMPL loaders and Blender importers read.

Keys of the file (T frames; float32 unless said):

    poses          (T, 72)  SMPL axis-angle: global orientation, then body joints 1..23 (SMPL's order)
    root_orient    (T, 3)   = poses[:, :3]    AMASS's SMPL+H / SMPL-X split of the same numbers:
    pose_body      (T, 63)  = poses[:, 3:66]  the 21 body joints all three models share
    trans          (T, 3)   root translation, metres: the pelvis is at rest pelvis + trans
    betas          (10,)    zeros: SMPL's mean shape (the IK fits directions; the model gives lengths)
    gender         str      "neutral"
    mocap_framerate float64 20.0 (HumanML3D's frame rate)

SMPL's 72-d `poses` is what SMPL itself and most SMPL loaders take; `root_orient`/`pose_body` are
written too so that SMPL+H and SMPL-X tools, whose own `poses` are longer (156 and 165 values),
find the body in the keys AMASS uses for it. Hands (SMPL joints 22 and 23) and wrists stay at rest:
the motion has no hand joints, so nothing tells how they turn.

Frames: Y up, metres, the body facing +Z at rest, the same world as joints.npy and as SMPL's own
model space; AMASS's files are Z up, so an importer that assumes AMASS's world needs a 90 degree
turn about X.

The rest pose the rotations are measured from. SMPL's pose parameters rotate SMPL's T-pose, so
the IK solves against a T-pose too: with a SMPL model file, that model's own rest joints (the
export then plays back onto the joints on that model; tests/renderer/test_smpl_export.py); without
one, HumanML3D's bone directions (legs down, spine up, feet forward) with the arms out sideways
and the head up, as SMPL's T-pose has them (HumanML3D's own rest hangs the arms down and points
the head forward). Without a model the rest pelvis is taken at the origin, so trans is the pelvis
position itself, and on a SMPL body each bone lands off by the angle between these axis
directions and that model's rest bones (docs/method.md gives the error measured on a test model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from atom.motion.ik import local_rotations, offsets_from_positions, solve_rotations
from atom.motion.record import MotionFormatError, validate_joints
from atom.motion.skeleton import FPS, NUM_JOINTS, PARENTS, RAW_OFFSETS

NUM_SMPL_JOINTS = 24
SMPL_PARENTS = tuple(PARENTS) + (20, 21)  # joints 22/23 are the hands, children of the wrists
NUM_BETAS = 10

_LEFT_ARM, _RIGHT_ARM = (16, 18, 20, 22), (17, 19, 21, 23)  # shoulder, elbow, wrist, hand
_HEAD = 15


def default_rest_joints() -> np.ndarray:
    """(24, 3) a T-pose with unit bones: HumanML3D's directions, the arms out and the head up."""
    offsets = np.zeros((NUM_SMPL_JOINTS, 3))
    offsets[:NUM_JOINTS] = RAW_OFFSETS
    offsets[list(_LEFT_ARM)] = (1.0, 0.0, 0.0)  # +X is the body's left (it faces +Z, Y up)
    offsets[list(_RIGHT_ARM)] = (-1.0, 0.0, 0.0)
    offsets[_HEAD] = (0.0, 1.0, 0.0)
    rest = np.zeros_like(offsets)
    for c, p in enumerate(SMPL_PARENTS):
        if p >= 0:
            rest[c] = rest[p] + offsets[c]
    return rest


def model_rest_joints(path) -> np.ndarray:
    """(24, 3) rest joints of a SMPL model file at the mean shape: J_regressor @ v_template.

    The file is the .npz of plain arrays the renderer uses (converted once from the official
    .pkl; see services/renderer/smpl.py)."""
    p = Path(path)
    if p.suffix == ".pkl":
        raise FileNotFoundError(
            f"{p} is an official SMPL pickle; convert it to .npz first with "
            "services.renderer.smpl.convert_smpl_pkl (chumpy does not run on Python 3.11)"
        )
    if not p.is_file():
        raise FileNotFoundError(f"SMPL model file {str(p)!r} does not exist")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("v_template", "J_regressor") if k in z.files}
    except Exception as exc:
        raise ValueError(f"{p} is not a readable .npz of SMPL arrays ({type(exc).__name__}: {exc})") from None
    missing = [k for k in ("v_template", "J_regressor") if k not in arrays]
    if missing:
        raise ValueError(f"{p} is not a SMPL model: it lacks {', '.join(missing)}")
    v, regressor = arrays["v_template"].astype(np.float64), arrays["J_regressor"].astype(np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or regressor.shape != (NUM_SMPL_JOINTS, len(v)):
        raise ValueError(
            f"{p} is not a SMPL model: v_template {v.shape} and J_regressor {regressor.shape} should be (V, 3) and ({NUM_SMPL_JOINTS}, V)"
        )
    return regressor @ v


def solve_smpl_pose(joints: np.ndarray, rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL joint rotations for target joints (T, 22, 3) given a SMPL model's rest joints (24, 3).

    Returns the local rotation matrices (T, 24, 3, 3) (index 0 is the global orientation) and the
    translation (T, 3). SMPL turns the body about its rest pelvis and then adds the translation,
    so the translation that puts the pelvis on the motion's is the pelvis minus the rest pelvis."""
    rest = np.asarray(rest_joints, np.float64)
    if rest.shape != (NUM_SMPL_JOINTS, 3) or not np.all(np.isfinite(rest)):
        raise MotionFormatError(f"SMPL rest joints must be a finite ({NUM_SMPL_JOINTS}, 3) array, got {rest.shape}")
    joints = np.asarray(joints, np.float64)
    offsets = offsets_from_positions(rest, SMPL_PARENTS)
    local = local_rotations(solve_rotations(joints, offsets, SMPL_PARENTS), SMPL_PARENTS)
    return local, joints[:, 0] - rest[0]


def smpl_parameters(joints: np.ndarray, rest_joints: np.ndarray | None = None, fps: float = FPS) -> dict:
    """The SMPL parameters (the keys above) of a motion given as joint positions (T, 22, 3).

    rest_joints: (24, 3) the rest joints of the SMPL model the file is meant for (see
    model_rest_joints); default: the T-pose of default_rest_joints."""
    joints = validate_joints(joints).astype(np.float64)
    local, trans = solve_smpl_pose(joints, default_rest_joints() if rest_joints is None else rest_joints)
    T = len(joints)
    poses = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(T, NUM_SMPL_JOINTS * 3)
    poses = poses.astype(np.float32)
    return {
        "poses": poses,
        "root_orient": poses[:, :3].copy(),
        "pose_body": poses[:, 3 : 3 * NUM_JOINTS].copy(),
        "trans": trans.astype(np.float32),
        "betas": np.zeros(NUM_BETAS, np.float32),
        "gender": np.array("neutral"),
        "mocap_framerate": np.float64(fps),
    }


def write_smpl_npz(path, joints: np.ndarray, rest_joints: np.ndarray | None = None, fps: float = FPS) -> Path:
    """Write the SMPL parameters of a motion to an .npz (loads with np.load, no pickle); returns its path."""
    path = Path(path)
    np.savez(path, **smpl_parameters(joints, rest_joints, fps))
    return path
