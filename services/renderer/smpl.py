"""SMPL body meshes from 22 HumanML3D joints: model conversion, analytic IK, posing with smplx.

SMPL model files are licensed and never shipped. Users download SMPL_NEUTRAL.pkl (or the male /
female files) from the SMPL website and convert it once to plain numpy arrays:

    python -c "from services.renderer.smpl import convert_smpl_pkl; \
               convert_smpl_pkl('SMPL_NEUTRAL.pkl', 'SMPL_NEUTRAL.npz')"

The official .pkl holds chumpy arrays, and chumpy neither installs nor imports on Python 3.11, so
`convert_smpl_pkl` reads the pickle with a restricted unpickler that turns chumpy objects into
their numpy values without importing chumpy (and refuses every other class, so a hostile pickle
cannot run code). The renderer then finds the .npz through ATOM_SMPL_MODEL or an explicit path.

Pose from joints: the analytic inverse kinematics of atom.motion.ik (shared with the BVH and
SMPL-parameter exports), solved against this model's rest joints (atom.motion.smpl_export's
solve_smpl_pose). Twist about a bone is not observable from positions and is inherited from the
parent. Body shape stays the mean shape (betas = 0), so limb lengths are SMPL's, not the
motion's; directions match.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
from pathlib import Path

import numpy as np

from atom.motion.smpl_export import NUM_SMPL_JOINTS, SMPL_PARENTS, solve_smpl_pose

SMPL_ENV = "ATOM_SMPL_MODEL"
REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
CONVERT_HINT = (
    "Download the SMPL model from https://smpl.is.tue.mpg.de (licence required), then convert it "
    'once: python -c "from services.renderer.smpl import convert_smpl_pkl; '
    "convert_smpl_pkl('SMPL_NEUTRAL.pkl', 'SMPL_NEUTRAL.npz')\" and set "
    f"{SMPL_ENV}=/path/to/SMPL_NEUTRAL.npz. Without it, use style='skeleton'."
)

# Mesh tint: torso and head a warm orange (the field's usual body colour), limbs tinted with the
# skeleton's side colours so left and right stay distinguishable.
_TORSO = np.array([0.93, 0.62, 0.33])
_LEFT = np.array([0.45, 0.62, 0.93])
_RIGHT = np.array([0.93, 0.45, 0.42])


class SmplModelMissing(FileNotFoundError):
    """Mesh rendering was asked for but no SMPL model arrays are available."""


class SmplModelError(ValueError):
    """A SMPL model file is malformed or is not a SMPL model."""


# ----------------------------------------------------------------------------------------------
# Conversion of the official pickle
# ----------------------------------------------------------------------------------------------


class _ChumpyStandIn:
    """Receives a chumpy object's pickled state; its numpy value is state['x']."""

    def __setstate__(self, state):
        self.state = state


class _SparseStandIn:
    """Receives a scipy sparse matrix's pickled __dict__ (any scipy version)."""

    def __setstate__(self, state):
        self.state = state


class _SmplUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
        ("__builtin__", "set"),
        ("builtins", "set"),
        ("__builtin__", "frozenset"),
        ("builtins", "frozenset"),
        # Python 3 protocol-2 pickles spell bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module.startswith("scipy.sparse") and name.endswith("_matrix"):
            return _SparseStandIn
        if (module, name) in self._ALLOWED:
            if module.startswith("numpy.core"):  # numpy 2 moved numpy.core to numpy._core
                module = "numpy._core" + module[len("numpy.core") :]
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a SMPL model pickle: only numpy, scipy.sparse and chumpy arrays are expected"
        )


def _plain(value, key: str):
    if isinstance(value, _ChumpyStandIn):
        state = value.state if isinstance(value.state, dict) else {}
        if "x" not in state:
            raise SmplModelError(f"{key}: a chumpy expression without a stored value cannot be converted")
        return np.asarray(state["x"])
    if isinstance(value, _SparseStandIn):
        st = value.state
        shape = st.get("_shape") or st.get("shape")
        fmt = st.get("format", "csc")
        import scipy.sparse as sp

        build = {"csc": sp.csc_matrix, "csr": sp.csr_matrix}.get(fmt)
        if build is None or shape is None:
            raise SmplModelError(f"{key}: unsupported sparse matrix format {fmt!r}")
        return np.asarray(build((st["data"], st["indices"], st["indptr"]), shape=tuple(shape)).toarray())
    return value


def read_smpl_pkl(pkl_path) -> dict[str, np.ndarray]:
    """Read an official SMPL .pkl into plain numpy arrays, without chumpy."""
    path = Path(pkl_path)
    if not path.is_file():
        raise SmplModelMissing(f"SMPL model pickle {str(path)!r} does not exist. {CONVERT_HINT}")
    with path.open("rb") as fh:
        try:
            raw = _SmplUnpickler(fh, encoding="latin1").load()
        except pickle.UnpicklingError:
            raise
        except Exception as exc:
            raise SmplModelError(f"{path} is not a readable SMPL pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(raw, dict):
        raise SmplModelError(f"{path} does not hold a dict of model arrays (got {type(raw).__name__})")
    out = {}
    for key in REQUIRED:
        if key not in raw:
            raise SmplModelError(f"{path} lacks {key!r}; found {sorted(raw)}")
        out[key] = np.asarray(_plain(raw[key], key))
    return out


def convert_smpl_pkl(pkl_path, out_npz) -> Path:
    """Convert an official SMPL .pkl (chumpy inside) into an .npz of plain arrays; returns its path."""
    arrays = validate_smpl_arrays(read_smpl_pkl(pkl_path), str(pkl_path))
    out = Path(out_npz)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, allow_pickle=True, **arrays)  # numpy's default, given so that **arrays cannot fill it
    os.replace(tmp, out)
    return out


def validate_smpl_arrays(arrays: dict, source: str = "SMPL model") -> dict[str, np.ndarray]:
    """Check shapes and dtypes; returns float64/int arrays ready for smplx."""
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise SmplModelError(f"{source}: missing arrays {missing}; a SMPL model needs {list(REQUIRED)}")
    v = np.asarray(arrays["v_template"], np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise SmplModelError(f"{source}: v_template must be (V, 3), got {v.shape}")
    nv = v.shape[0]
    out: dict[str, np.ndarray] = {"v_template": v}
    checks = {
        "shapedirs": lambda a: a.ndim == 3 and a.shape[:2] == (nv, 3),
        "posedirs": lambda a: a.ndim == 3 and a.shape[:2] == (nv, 3) and a.shape[2] == 9 * (NUM_SMPL_JOINTS - 1),
        "J_regressor": lambda a: a.shape == (NUM_SMPL_JOINTS, nv),
        "weights": lambda a: a.shape == (nv, NUM_SMPL_JOINTS),
    }
    for key, ok in checks.items():
        a = np.asarray(arrays[key], np.float64)
        if not ok(a):
            raise SmplModelError(f"{source}: {key} has shape {a.shape}, which does not fit {nv} vertices and 24 joints")
        out[key] = a
    kt = np.asarray(arrays["kintree_table"]).astype(np.int64)
    if kt.shape != (2, NUM_SMPL_JOINTS):
        raise SmplModelError(f"{source}: kintree_table must be (2, 24), got {kt.shape}")
    parents = kt[0].copy()
    parents[0] = -1
    if tuple(parents.tolist()) != SMPL_PARENTS:
        raise SmplModelError(f"{source}: kinematic tree {parents.tolist()} is not SMPL's")
    out["kintree_table"] = kt
    f = np.asarray(arrays["f"]).astype(np.int64)
    if f.ndim != 2 or f.shape[1] != 3 or f.min() < 0 or f.max() >= nv:
        raise SmplModelError(f"{source}: f must be (F, 3) vertex indices below {nv}")
    out["f"] = f
    return out


def find_smpl_model(path=None) -> Path:
    """The SMPL .npz to use: `path`, else $ATOM_SMPL_MODEL; raises SmplModelMissing with the fix."""
    chosen = path or os.environ.get(SMPL_ENV)
    if not chosen:
        raise SmplModelMissing(f"style='mesh' needs a SMPL model file, and {SMPL_ENV} is not set. {CONVERT_HINT}")
    p = Path(chosen)
    if p.suffix == ".pkl":
        raise SmplModelMissing(
            f"{p} is an official SMPL pickle; convert it to .npz first (chumpy does not run on Python 3.11). {CONVERT_HINT}"
        )
    if not p.is_file():
        raise SmplModelMissing(f"SMPL model file {str(p)!r} does not exist. {CONVERT_HINT}")
    return p


def load_smpl_arrays(path=None) -> dict[str, np.ndarray]:
    p = find_smpl_model(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise SmplModelError(f"{p} is not a readable .npz of SMPL arrays ({exc})") from None
    return validate_smpl_arrays(arrays, str(p))


# ----------------------------------------------------------------------------------------------
# The body: posed SMPL vertices for the renderer
# ----------------------------------------------------------------------------------------------


class SmplBody:
    """A SMPL mesh posed from 22 joints; same interface as SkeletonTemplate (see frames.Body)."""

    def __init__(self, arrays: dict[str, np.ndarray], source: str = "SMPL model"):
        import scipy.sparse as sp
        import smplx
        import torch
        from smplx.utils import Struct

        arrays = validate_smpl_arrays(arrays, source)
        self._torch = torch
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 betas
            self._model = smplx.SMPL(model_path="", data_struct=Struct(**arrays), batch_size=1)
        self._model.eval()
        self._faces = arrays["f"].astype(np.uint32)
        nv = arrays["v_template"].shape[0]
        self.vertices_per_pose = nv
        self.rest_joints = arrays["J_regressor"] @ arrays["v_template"]
        table = np.tile(_TORSO, (NUM_SMPL_JOINTS, 1))
        for j in (1, 4, 7, 10, 13, 16, 18, 20, 22):
            table[j] = _LEFT
        for j in (2, 5, 8, 11, 14, 17, 19, 21, 23):
            table[j] = _RIGHT
        self.colors = np.clip(arrays["weights"] @ table, 0.0, 1.0)
        rows = self._faces.reshape(-1).astype(np.int64)
        cols = np.repeat(np.arange(len(self._faces)), 3)
        # Vertex normal = sum of adjacent face normals (area-weighted by the cross product).
        self._incidence = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(nv, len(self._faces)))

    @classmethod
    def from_file(cls, path=None) -> "SmplBody":
        p = find_smpl_model(path)
        return cls(load_smpl_arrays(p), str(p))

    def faces_for(self, num_poses: int) -> np.ndarray:
        offs = (np.arange(num_poses, dtype=np.uint32) * self.vertices_per_pose)[:, None, None]
        return (self._faces[None] + offs).reshape(-1, 3)

    def posed_vertices(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SMPL vertices (P, V, 3) and SMPL joints (P, 24, 3) for target joints (P, 22, 3)."""
        torch = self._torch
        joints = np.asarray(joints, np.float64)
        if joints.ndim == 2:
            joints = joints[None]
        local, transl = solve_smpl_pose(joints, self.rest_joints)
        P = len(joints)
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            out = self._model(
                betas=torch.zeros(P, self._model.num_betas),
                global_orient=t(local[:, :1]),
                body_pose=t(local[:, 1:]),
                transl=t(transl),
                pose2rot=False,
            )
        return out.vertices.numpy().astype(np.float64), out.joints[:, :NUM_SMPL_JOINTS].numpy().astype(np.float64)

    def pose(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        verts, _ = self.posed_vertices(joints)
        f = self._faces
        normals = np.empty_like(verts)
        for p, v in enumerate(verts):
            fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
            normals[p] = self._incidence @ fn
        normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
        return verts.astype(np.float32), normals.astype(np.float32)
