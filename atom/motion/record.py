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


def validate_joints(joints: np.ndarray, what: str = "joints") -> np.ndarray:
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise MotionFormatError(f"{what} must have shape (T, {NUM_JOINTS}, 3), got {tuple(joints.shape)}")
    if joints.shape[0] < 2:
        raise MotionFormatError(f"{what} must have at least 2 frames, got {joints.shape[0]}")
    if not np.all(np.isfinite(joints)):
        bad = int(np.argwhere(~np.isfinite(joints))[0][0])
        raise MotionFormatError(f"{what} contain NaN or infinite values (first at frame {bad})")
    return joints.astype(np.float32, copy=False)


@dataclass
class MotionRecord:
    joints: np.ndarray
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, FEATURE_DIM), np.float32))
    tokens: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.joints = validate_joints(self.joints)
        self.features = np.asarray(self.features, dtype=np.float32).reshape(-1, FEATURE_DIM)
        self.tokens = np.asarray(self.tokens, dtype=np.int32).reshape(-1)

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
