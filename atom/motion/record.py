"""The motion artifact: one motion as it travels between services through the store.

Stored as an .npz under motions/<sha256>.npz with arrays
  joints   (T, 22, 3) float32, metres, HumanML3D axes (Y up)
  features (T-1, 263) float32, un-normalised HumanML3D features (may be empty (0, 263))
  tokens   (N,) int32, VQ codes (may be empty)
  meta     0-d unicode string holding JSON (prompt, seed, model, adapter, ...)
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np

from atom.motion.skeleton import FEATURE_DIM, NUM_JOINTS


class MotionFormatError(ValueError):
    """A motion array or file is malformed; the message says what is wrong."""


# A person's joints stay within this many metres of the origin; values beyond it are a unit mistake
# (millimetres) or a hostile file, and would otherwise be rendered and scored as if real.
MAX_ABS_COORD_M = 1000.0
# Far longer than any motion data set (HumanML3D's longest is 10 s at 20 fps); bounds the work and
# memory one motion can ask of a renderer or judge.
MAX_FRAMES = 20_000


def validate_joints(joints: np.ndarray, what: str = "joints") -> np.ndarray:
    joints = np.asarray(joints)
    if joints.dtype.kind != "f":
        raise MotionFormatError(f"{what} must be floating point (float32 metres), got dtype {joints.dtype}")
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise MotionFormatError(f"{what} must have shape (T, {NUM_JOINTS}, 3), got {tuple(joints.shape)}")
    if joints.shape[0] < 2:
        raise MotionFormatError(f"{what} must have at least 2 frames, got {joints.shape[0]}")
    if joints.shape[0] > MAX_FRAMES:
        raise MotionFormatError(f"{what} have {joints.shape[0]} frames, more than the {MAX_FRAMES} allowed")
    if not np.all(np.isfinite(joints)):
        bad = int(np.argwhere(~np.isfinite(joints))[0][0])
        raise MotionFormatError(f"{what} contain NaN or infinite values (first at frame {bad})")
    peak = float(np.abs(joints).max())
    if peak > MAX_ABS_COORD_M:
        raise MotionFormatError(
            f"{what} reach {peak:.4g} m from the origin, beyond the plausible "
            f"{MAX_ABS_COORD_M:g} m (joint positions are in metres, not millimetres)"
        )
    return joints.astype(np.float32, copy=False)


@dataclass
class MotionRecord:
    joints: np.ndarray
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, FEATURE_DIM), np.float32))
    tokens: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.joints = validate_joints(self.joints)
        features, tokens = np.asarray(self.features), np.asarray(self.tokens)
        if features.size and features.dtype.kind != "f":
            raise MotionFormatError(f"features must be floating point, got dtype {features.dtype}")
        if features.size and (features.ndim != 2 or features.shape[1] != FEATURE_DIM):
            raise MotionFormatError(f"features must have shape (T-1, {FEATURE_DIM}), got {tuple(features.shape)}")
        if tokens.size and tokens.dtype.kind not in "iu":
            raise MotionFormatError(f"tokens must be integers, got dtype {tokens.dtype}")
        if not isinstance(self.meta, dict):
            raise MotionFormatError(f"meta must be a JSON object, got {type(self.meta).__name__}")
        self.features = features.astype(np.float32, copy=False).reshape(-1, FEATURE_DIM)
        self.tokens = tokens.astype(np.int32, copy=False).reshape(-1)

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        # Fixed key order and no compression timestamps: the same motion gives the same bytes,
        # so content addressing dedupes identical motions.
        np.savez(
            buf,
            joints=self.joints,
            features=self.features,
            tokens=self.tokens,
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "motion") -> "MotionRecord":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                missing = {"joints", "meta"} - set(z.files)
                if missing:
                    raise MotionFormatError(f"{source}: missing arrays {sorted(missing)} (found {z.files})")
                joints = z["joints"]
                features = z["features"] if "features" in z.files else np.zeros((0, FEATURE_DIM), np.float32)
                tokens = z["tokens"] if "tokens" in z.files else np.zeros((0,), np.int32)
                meta = json.loads(str(z["meta"]))
        except MotionFormatError:
            raise
        except Exception as exc:  # zip, npy header or JSON corruption
            raise MotionFormatError(f"{source}: not a readable motion .npz ({exc})") from None
        try:
            return cls(joints=joints, features=features, tokens=tokens, meta=meta)
        except MotionFormatError as exc:
            raise MotionFormatError(f"{source}: {exc}") from None
