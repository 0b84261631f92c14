"""Reading and writing the HumanML3D directory layout.

    <root>/new_joints/<id>.npy       (T, 22, 3) joint positions (float32)
    <root>/new_joint_vecs/<id>.npy   (N, 263) features (float32)
    <root>/texts/<id>.txt            one caption per line: caption#word/POS ...#from_sec#to_sec
    <root>/Mean.npy, <root>/Std.npy  (263,) normalisation statistics
    <root>/train.txt, val.txt, test.txt   one clip id per line
    <root>/labels/<id>.json          structured event labels (procedural world only; optional)

In the released data new_joints holds the joints recovered from new_joint_vecs, so both have the
same number of rows N; a clip written from original joints has T = N + 1. Both are accepted.
A caption range of 0.0#0.0 means the whole clip; other ranges (seconds) mark a sub-clip.

Writes are byte-deterministic (same clip -> same bytes) and atomic per file (a temporary file in
the same directory, then os.replace), so a reader never sees a half-written file.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from atom.motion import postag
from atom.motion.features import MeanStd, features_to_joints, joints_to_features
from atom.motion.record import MotionFormatError
from atom.motion.skeleton import FEATURE_DIM, FPS, NUM_JOINTS

JOINTS_DIR = "new_joints"
FEATURES_DIR = "new_joint_vecs"
TEXTS_DIR = "texts"
LABELS_DIR = "labels"
MEAN_FILE = "Mean.npy"
STD_FILE = "Std.npy"

_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@\-]*$")
_TOKEN_BAD = re.compile(r"[\s#]")


class HumanML3DError(MotionFormatError):
    """A HumanML3D directory, file or record is missing or malformed; the message says which
    file and what to do."""


def check_clip_id(clip_id: str) -> str:
    if not isinstance(clip_id, str) or not _ID.match(clip_id):
        raise HumanML3DError(
            f"invalid clip id {clip_id!r}: use letters, digits, '_', '-', '.', '@' (not first), no path separators or spaces"
        )
    return clip_id


# ----------------------------------------------------------------------------------- records


def _format_seconds(x: float) -> str:
    return repr(float(x))


@dataclass(frozen=True)
class Caption:
    """One caption line. start == end == 0.0 means the whole clip."""

    text: str
    tokens: tuple[str, ...] = ()
    start: float = 0.0
    end: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or "\n" in self.text or "\r" in self.text or "#" in self.text:
            raise HumanML3DError(f"caption text must be one line without '#', got {self.text!r}")
        tokens = tuple(self.tokens)
        for tok in tokens:
            if not tok or _TOKEN_BAD.search(tok):
                raise HumanML3DError(f"caption token {tok!r} must be non-empty, without spaces or '#'")
        object.__setattr__(self, "tokens", tokens)
        for name in ("start", "end"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0:
                raise HumanML3DError(f"caption {name} must be a finite number of seconds >= 0, got {v}")
            object.__setattr__(self, name, v)

    @property
    def whole_clip(self) -> bool:
        return self.start == 0.0 and self.end == 0.0

    @classmethod
    def from_text(cls, text: str, start: float = 0.0, end: float = 0.0) -> "Caption":
        """A caption with tokens made by the rule-based tagger (atom.motion.postag)."""
        text = text.strip()
        return cls(text=text, tokens=tuple(postag.tag_builtin(text)), start=start, end=end)

    def to_line(self) -> str:
        return f"{self.text}#{' '.join(self.tokens)}#{_format_seconds(self.start)}#{_format_seconds(self.end)}"

    @classmethod
    def from_line(cls, line: str, source: str = "caption line") -> "Caption":
        """Parse `caption#tokens#from#to`. NaN times (present in the released texts) read as 0.0,
        as the HumanML3D loaders treat them."""
        line = line.rstrip("\r\n")
        parts = line.split("#")
        if len(parts) != 4:
            raise HumanML3DError(
                f"{source}: expected 'caption#word/POS ...#from_sec#to_sec' (4 fields separated by '#'), "
                f"got {len(parts)} fields in {line!r}"
            )
        text, toks, start_s, end_s = parts
        try:
            start, end = float(start_s), float(end_s)
        except ValueError:
            raise HumanML3DError(f"{source}: from/to must be numbers of seconds, got {start_s!r} and {end_s!r}") from None
        start = 0.0 if math.isnan(start) else start
        end = 0.0 if math.isnan(end) else end
        try:
            return cls(text=text, tokens=tuple(toks.split()), start=start, end=end)
        except HumanML3DError as exc:
            raise HumanML3DError(f"{source}: {exc}") from None


@dataclass
class Clip:
    """One motion with its captions. joints may be None for a directory without new_joints/."""

    clip_id: str
    joints: np.ndarray | None
    features: np.ndarray
    captions: tuple[Caption, ...] = ()
    labels: dict | None = None

    def __post_init__(self) -> None:
        check_clip_id(self.clip_id)
        f = np.asarray(self.features)
        if f.ndim != 2 or f.shape[1] != FEATURE_DIM or len(f) < 1:
            raise HumanML3DError(f"clip {self.clip_id}: features must have shape (N, {FEATURE_DIM}), N >= 1, got {f.shape}")
        if not np.all(np.isfinite(f)):
            raise HumanML3DError(f"clip {self.clip_id}: features contain NaN or infinite values")
        self.features = np.ascontiguousarray(f, dtype=np.float32)
        if self.joints is not None:
            j = np.asarray(self.joints)
            if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3):
                raise HumanML3DError(f"clip {self.clip_id}: joints must have shape (T, {NUM_JOINTS}, 3), got {j.shape}")
            if len(j) not in (len(f), len(f) + 1):
                raise HumanML3DError(
                    f"clip {self.clip_id}: {len(j)} joint frames do not match {len(f)} feature rows (expected {len(f)} or {len(f) + 1})"
                )
            if not np.all(np.isfinite(j)):
                raise HumanML3DError(f"clip {self.clip_id}: joints contain NaN or infinite values")
            self.joints = np.ascontiguousarray(j, dtype=np.float32)
        caps = tuple(self.captions)
        for c in caps:
            if not isinstance(c, Caption):
                raise HumanML3DError(f"clip {self.clip_id}: captions must be Caption objects, got {type(c).__name__}")
        self.captions = caps
        if self.labels is not None and not isinstance(self.labels, dict):
            raise HumanML3DError(f"clip {self.clip_id}: labels must be a dict or None, got {type(self.labels).__name__}")

    @property
    def length(self) -> int:
        """Motion length in frames, as the HumanML3D loaders count it (feature rows)."""
        return int(len(self.features))


def clip_from_joints(clip_id: str, joints: np.ndarray, captions: Iterable[Caption | str] = (), labels: dict | None = None) -> Clip:
    """Build a clip the way HumanML3D built its files: features from the joints, and new_joints
    as the joints recovered from those features (so both have N rows, N = T - 1). Plain strings
    are tagged into Captions over the whole clip."""
    feats = joints_to_features(joints)
    caps = tuple(c if isinstance(c, Caption) else Caption.from_text(c) for c in captions)
    return Clip(clip_id, features_to_joints(feats), feats, caps, labels)


# ----------------------------------------------------------------------------------- writing


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; data sets are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # Little-endian float32, C order, no pickle: the same array always gives the same bytes.
    np.save(buf, np.ascontiguousarray(arr, dtype="<f4"), allow_pickle=False)
    return buf.getvalue()


def captions_text(captions: Iterable[Caption]) -> str:
    return "".join(c.to_line() + "\n" for c in captions)


def write_clip(root: str | os.PathLike, clip: Clip) -> None:
    """Write one clip's files (joints if present, features, texts, labels if present)."""
    root = Path(root)
    cid = check_clip_id(clip.clip_id)
    joints_path = root / JOINTS_DIR / f"{cid}.npy"
    if clip.joints is not None:
        _atomic_write(joints_path, _npy_bytes(clip.joints))
    elif joints_path.exists():
        joints_path.unlink()  # a rewrite without joints must not leave stale ones behind
    _atomic_write(root / FEATURES_DIR / f"{cid}.npy", _npy_bytes(clip.features))
    _atomic_write(root / TEXTS_DIR / f"{cid}.txt", captions_text(clip.captions).encode("utf-8"))
    label_path = root / LABELS_DIR / f"{cid}.json"
    if clip.labels is not None:
        try:
            text = json.dumps(clip.labels, sort_keys=True, ensure_ascii=False, indent=1, allow_nan=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise HumanML3DError(f"clip {cid}: labels are not JSON-serialisable ({exc}); use plain dicts, lists, str, int, float") from None
        _atomic_write(label_path, text.encode("utf-8"))
    elif label_path.exists():
        label_path.unlink()  # a rewrite without labels must not leave stale ones behind


def write_split(root: str | os.PathLike, name: str, ids: Iterable[str]) -> None:
    """Write <root>/<name>.txt with one id per line, in the given order."""
    if not re.match(r"^[A-Za-z0-9_\-]+$", name):
        raise HumanML3DError(f"invalid split name {name!r}: use letters, digits, '_' or '-'")
    lines = [check_clip_id(i) for i in ids]
    _atomic_write(Path(root) / f"{name}.txt", "".join(i + "\n" for i in lines).encode("utf-8"))


def write_mean_std(root: str | os.PathLike, ms: MeanStd) -> None:
    root = Path(root)
    _atomic_write(root / MEAN_FILE, _npy_bytes(ms.mean))
    _atomic_write(root / STD_FILE, _npy_bytes(ms.std))


# ----------------------------------------------------------------------------------- reading


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise HumanML3DError(f"{path}: missing {what} file; restore it from the data set or regenerate the clip") from None
    except Exception as exc:  # truncated file, bad header, pickled object array
        raise MotionFormatError(
            f"{path}: not a readable .npy file ({type(exc).__name__}: {exc}); the file is corrupt, "
            f"restore it from the data set or regenerate the clip"
        ) from None
    if not np.issubdtype(arr.dtype, np.floating):
        raise MotionFormatError(f"{path}: {what} must be floating point, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise MotionFormatError(f"{path}: {what} contains NaN or infinite values; regenerate the file")
    return arr.astype(np.float32, copy=False)


class HumanML3D:
    """Reader for a HumanML3D-layout directory (the released data set or one written here)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise HumanML3DError(
                f"HumanML3D directory {self.root} does not exist; give the folder that holds "
                f"new_joint_vecs/, texts/ and the split files (or generate the procedural world there)"
            )
        missing = [d for d in (FEATURES_DIR, TEXTS_DIR) if not (self.root / d).is_dir()]
        if missing:
            raise HumanML3DError(
                f"{self.root} is not a HumanML3D directory: missing {', '.join(d + '/' for d in missing)}; "
                f"expected new_joint_vecs/, texts/, Mean.npy, Std.npy, train.txt/val.txt/test.txt "
                f"(new_joints/ and labels/ optional)"
            )

    # ---- ids
    def split_ids(self, name: str) -> list[str]:
        path = self.root / f"{name}.txt"
        if not path.is_file():
            have = sorted(p.stem for p in self.root.glob("*.txt"))
            raise HumanML3DError(
                f"{path}: split file missing (splits present: {', '.join(have) or 'none'}); "
                f"write it with write_split or copy it from the HumanML3D release"
            )
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return [i for i in ids if i]

    def all_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.root / FEATURES_DIR).glob("*.npy"))

    # ---- files
    def load_features(self, clip_id: str) -> np.ndarray:
        path = self.root / FEATURES_DIR / f"{check_clip_id(clip_id)}.npy"
        arr = _load_npy(path, "features")
        if arr.ndim != 2 or arr.shape[1] != FEATURE_DIM or len(arr) < 1:
            raise MotionFormatError(f"{path}: features must have shape (N, {FEATURE_DIM}), got {arr.shape}")
        return arr

    def load_joints(self, clip_id: str) -> np.ndarray | None:
        path = self.root / JOINTS_DIR / f"{check_clip_id(clip_id)}.npy"
        if not path.exists():
            return None
        arr = _load_npy(path, "joints")
        if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3):
            raise MotionFormatError(f"{path}: joints must have shape (T, {NUM_JOINTS}, 3), got {arr.shape}")
        return arr

    def load_captions(self, clip_id: str) -> tuple[Caption, ...]:
        path = self.root / TEXTS_DIR / f"{check_clip_id(clip_id)}.txt"
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise HumanML3DError(f"{path}: caption file missing; every clip needs texts/<id>.txt") from None
        except UnicodeDecodeError as exc:
            raise HumanML3DError(f"{path}: not UTF-8 text ({exc})") from None
        return tuple(Caption.from_line(line, source=f"{path}:{n}") for n, line in enumerate(text.splitlines(), start=1) if line.strip())

    def load_labels(self, clip_id: str) -> dict | None:
        path = self.root / LABELS_DIR / f"{check_clip_id(clip_id)}.json"
        if not path.exists():
            return None
        try:
            labels = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise HumanML3DError(f"{path}: not valid JSON ({exc}); regenerate the clip's labels") from None
        if not isinstance(labels, dict):
            raise HumanML3DError(f"{path}: labels must be a JSON object, got {type(labels).__name__}")
        return labels

    def load_clip(self, clip_id: str) -> Clip:
        feats = self.load_features(clip_id)
        joints = self.load_joints(clip_id)
        try:
            return Clip(clip_id, joints, feats, self.load_captions(clip_id), self.load_labels(clip_id))
        except HumanML3DError as exc:
            raise HumanML3DError(f"{self.root}: {exc}") from None

    def mean_std(self) -> MeanStd:
        paths = (self.root / MEAN_FILE, self.root / STD_FILE)
        for p in paths:
            if not p.is_file():
                raise HumanML3DError(
                    f"{p}: missing; compute it from the training split with compute_mean_std and "
                    f"write_mean_std, or copy it from the HumanML3D release"
                )
        mean, std = (_load_npy(p, "statistics").reshape(-1) for p in paths)
        try:
            return MeanStd(mean=mean, std=std)
        except MotionFormatError as exc:
            raise HumanML3DError(f"{self.root}: Mean.npy/Std.npy: {exc}") from None

    # ---- evaluation-style iteration
    def iter_clips(
        self,
        split: str,
        min_len: int = 40,
        max_len: int = 200,
        crop_multiple: int = 1,
        sub_clips: bool = True,
    ) -> Iterator[Clip]:
        """Clips of a split under the HumanML3D evaluation rules, in split-file order.

        A clip is kept when min_len <= length < max_len (length = feature rows) and it has at
        least one whole-clip caption. With `sub_clips`, captions with a time range make extra
        clips "<id>@<from>-<to>" cut at from*20 .. to*20, under the same length rule.
        `crop_multiple` (e.g. 4 for VQ tokens) cuts the end so the length is a multiple of it;
        the length rule applies before the crop, as in the HumanML3D loaders.
        """
        if crop_multiple < 1:
            raise ValueError(f"crop_multiple must be >= 1, got {crop_multiple}")
        for cid in self.split_ids(split):
            clip = self.load_clip(cid)
            whole = tuple(c for c in clip.captions if c.whole_clip)
            if whole and min_len <= clip.length < max_len:
                yield _crop(Clip(cid, clip.joints, clip.features, whole, clip.labels), crop_multiple)
            if not sub_clips:
                continue
            ranges: dict[tuple[float, float], list[Caption]] = {}
            for c in clip.captions:
                if not c.whole_clip:
                    ranges.setdefault((c.start, c.end), []).append(c)
            for (start, end), caps in ranges.items():
                a, b = int(start * FPS), int(end * FPS)
                feats = clip.features[a:b]
                if not (min_len <= len(feats) < max_len):
                    continue
                joints = None if clip.joints is None else clip.joints[a : a + len(feats)]
                if joints is not None and len(joints) != len(feats):
                    joints = None
                sub_id = f"{cid}@{_format_seconds(start)}-{_format_seconds(end)}"
                yield _crop(Clip(sub_id, joints, feats, tuple(caps), clip.labels), crop_multiple)


def _crop(clip: Clip, multiple: int) -> Clip:
    n = (clip.length // multiple) * multiple
    if n == clip.length:
        return clip
    joints = None if clip.joints is None else clip.joints[: n + (len(clip.joints) - clip.length)]
    return Clip(clip.clip_id, joints, clip.features[:n], clip.captions, clip.labels)
