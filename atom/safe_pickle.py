"""Read pickled files from outside (released checkpoints, word lists) without running their code.

Two readers, one rule: nothing named in the file is imported or called unless it is on a short
list of types that only hold data.

- `load_torch_checkpoint`: a `torch.save` file (the zip format PyTorch writes since 1.6). It goes
  through PyTorch's own `weights_only` unpickler, which is maintained and fuzzed upstream and
  rebuilds tensors, dicts, lists and numbers only. What else the file names is sorted first:
  * old protocol-2 names (`__builtin__.dict`, `__builtin__.long`) are mapped to today's names the
    way pickle's own compatibility tables do (PyTorch applies `_compat_pickle`), and the plain
    builtin containers and numbers are allowed;
  * a name from a module that can run commands, import or evaluate code (os, subprocess,
    builtins.eval, ...) refuses the whole file: it is not a checkpoint;
  * any other name (OmegaConf's config classes, Lightning's, numpy's) becomes an inert placeholder
    class: its module is never imported, none of its code runs, the arguments are kept for display.
  Before anything is allocated the archive is checked: only stored (uncompressed) entries, as
  `torch.save` writes them, at most `CheckpointLimits.max_bytes` in all and
  `CheckpointLimits.max_records` entries.
- `load_plain_pickle`: a plain pickle of lists, dicts, strings and numbers, where numbers may be
  numpy scalars (GloVe word indexes written from numpy hold numpy integers). numpy scalars are
  rebuilt from their bytes by us, for numeric dtypes only.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np


class UnsafeFileError(ValueError):
    """The file names something that could run code, or is over a size limit; nothing was executed."""


class UnreadableFileError(ValueError):
    """The file is not a pickle or checkpoint of the expected kind."""


# Modules whose globals can run commands, import or evaluate code. A file naming one is refused
# outright (as a placeholder it would be harmless, but such a file is not a checkpoint).
DENIED_MODULES = frozenset(
    (
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "shutil",
        "socket",
        "importlib",
        "runpy",
        "pickle",
        "_pickle",
        "marshal",
        "ctypes",
        "code",
        "codeop",
        "pty",
        "webbrowser",
        "multiprocessing",
        "signal",
        "io",
        "_io",
        "types",
        "inspect",
        "operator",
        "functools",
        "pdb",
        "timeit",
        "platform",
        "tempfile",
        "glob",
        "pathlib",
        "urllib",
        "http",
        "requests",
        "asyncio",
        "threading",
        "_thread",
        "builtins",
        "__builtin__",
        "copyreg",
        "_codecs",
        "codecs",
        "gc",
        "weakref",
        "ast",
        "dill",
        "cloudpickle",
        "joblib",
        "site",
        "sysconfig",
        "zipimport",
    )
)

# Builtins a config object legitimately names (as values or to rebuild containers). Everything
# else from builtins (eval, exec, getattr, __import__, open, type, ...) refuses the file.
_PLAIN_BUILTINS = {
    name: getattr(__import__("builtins"), name)
    for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "slice", "object")
}
_MAX_BYTES_ARG = 1 << 20  # bytes(n) / bytearray(n) from a pickle: refuse absurd allocations


def _bounded_bytes(kind: type):
    def build(*args):
        if args and isinstance(args[0], int) and not 0 <= args[0] <= _MAX_BYTES_ARG:
            raise UnsafeFileError(f"the file asks for {kind.__name__}({args[0]}): refused (allocation bomb)")
        return kind(*args)

    build.__name__ = kind.__name__
    return build


class Opaque:
    """Stand-in for a class the file names but we do not trust. Records what the pickle passed to
    it; has no behaviour."""

    _opaque_global = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._opaque_args = args
        obj._opaque_state = None
        obj._opaque_items = []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._opaque_state = state

    def __setitem__(self, key, value):
        self._opaque_items.append((key, value))

    def append(self, value):
        self._opaque_items.append(value)

    def extend(self, values):
        self._opaque_items.extend(values)

    def __repr__(self) -> str:
        return f"<opaque {self._opaque_global}>"


def placeholder(full_name: str) -> type:
    module, _, name = full_name.rpartition(".")
    return type(name or full_name, (Opaque,), {"_opaque_global": full_name, "__module__": "atom.safe_pickle.opaque"})


def _plain_defaultdict(*_args):
    """collections.defaultdict -> a plain dict: the default factory is never called."""
    return {}


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def is_denied(full_name: str) -> bool:
    module = full_name.rpartition(".")[0]
    return module in DENIED_MODULES or _root(module) in DENIED_MODULES


# -- torch checkpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointLimits:
    """Caps checked before any tensor is allocated (override with ATOM_CHECKPOINT_MAX_BYTES /
    ATOM_CHECKPOINT_MAX_RECORDS). The released MotionGPT-base file is about 1 GB in a few hundred
    entries."""

    max_bytes: int = 16 << 30
    max_records: int = 100_000
    max_pickle_bytes: int = 256 << 20

    @classmethod
    def from_env(cls) -> "CheckpointLimits":
        def num(name: str, default: int) -> int:
            raw = os.environ.get(name, "")
            try:
                return int(raw) if raw else default
            except ValueError:
                raise UnreadableFileError(f"{name}={raw!r} is not an integer number of bytes/records") from None

        d = cls()
        return cls(num("ATOM_CHECKPOINT_MAX_BYTES", d.max_bytes), num("ATOM_CHECKPOINT_MAX_RECORDS", d.max_records), d.max_pickle_bytes)


def _check_archive(path: Path, limits: CheckpointLimits) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableFileError(
            f"{path} is not a readable PyTorch checkpoint (expected the zip format torch.save writes since "
            f"PyTorch 1.6: {exc}); an older file can be re-saved with torch.save on a trusted machine"
        ) from None
    if len(infos) > limits.max_records:
        raise UnsafeFileError(f"{path} has {len(infos)} entries, more than the limit of {limits.max_records} (ATOM_CHECKPOINT_MAX_RECORDS)")
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise UnsafeFileError(
            f"{path}: entry {packed[0]} is compressed; torch.save stores entries uncompressed, "
            "so this file was not written by it (a compressed entry can expand without bound)"
        )
    total = sum(i.file_size for i in infos)
    if total > limits.max_bytes:
        raise UnsafeFileError(f"{path} holds {total} bytes, more than the limit of {limits.max_bytes} (ATOM_CHECKPOINT_MAX_BYTES)")
    pkl = [i for i in infos if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
    if not pkl:
        raise UnreadableFileError(f"{path} is a zip file but not a torch.save checkpoint (no data.pkl)")
    if pkl[0].file_size > limits.max_pickle_bytes:
        raise UnsafeFileError(f"{path}: its pickle is {pkl[0].file_size} bytes; a checkpoint's is a few MB")


def _safe_globals_for(names: list[str], what: str) -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """(object, full name) pairs for torch.serialization.safe_globals: real plain types, bounded
    byte constructors, a plain-dict defaultdict, and inert placeholders for everything else."""
    out: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = []
    for full in sorted(names):
        module, _, name = full.rpartition(".")
        if module == "builtins":
            if name in _PLAIN_BUILTINS:
                out.append((_PLAIN_BUILTINS[name], full))
            elif name in ("bytes", "bytearray"):
                out.append((_bounded_bytes(bytes if name == "bytes" else bytearray), full))
            else:
                raise UnsafeFileError(
                    f"refusing to load {what}: it asks for builtins.{name}, which can run code; "
                    "this is not a plain checkpoint, or it has been tampered with. Nothing was executed"
                )
        elif is_denied(full):
            raise UnsafeFileError(
                f"refusing to load {what}: it asks for {full}, which can run code; this is not a "
                "plain checkpoint, or it has been tampered with. Nothing was executed"
            )
        elif _root(module) == "torch":
            # Torch's own loader already allows what tensors need; other torch objects (modules,
            # optimisers, scripted code) are not weights.
            raise UnsafeFileError(f"refusing to load {what}: it holds {full}, a torch object other than tensors; save a state_dict instead")
        elif full == "collections.defaultdict":
            out.append((_plain_defaultdict, full))
        else:
            out.append((placeholder(full), full))
    return out


# torch's allow-list of extra globals is process-wide; loads that add to it take turns.
_TORCH_GLOBALS_LOCK = threading.Lock()


def load_torch_checkpoint(path: str | Path, limits: CheckpointLimits | None = None) -> Any:
    """torch.load(weights_only=True) of a file that may name config classes, with the rules above.
    Raises UnsafeFileError or UnreadableFileError; never executes anything the file names."""
    import torch

    path = Path(path)
    limits = limits or CheckpointLimits.from_env()
    _check_archive(path, limits)
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:  # a malformed pickle fails in many ways; all mean "not a checkpoint"
        raise UnreadableFileError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:300]})") from None
    extra = _safe_globals_for(names, str(path))
    with _TORCH_GLOBALS_LOCK, torch.serialization.safe_globals(extra), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about odd pickle protocols before refusing them
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except UnsafeFileError:
            raise
        except pickle.UnpicklingError as exc:
            # torch wraps the reason in several paragraphs of advice meant for trusted files.
            reason = next(
                (line for line in str(exc).splitlines() if "Unsupported" in line or "Can only" in line or "Trying" in line),
                str(exc).splitlines()[0] if str(exc) else "",
            )
            raise UnreadableFileError(f"{path}: refused by the safe loader ({reason.strip()[:300]})") from None
        except MemoryError:
            raise UnsafeFileError(f"{path}: loading it needs more memory than this machine has; refused") from None
        except Exception as exc:  # torch's own asserts and errors on malformed files: all "not readable"
            raise UnreadableFileError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:300]})") from None


# -- plain pickles (word lists, indexes) --------------------------------------------------------------


class _SafeDType:
    """What `numpy.dtype(...)` becomes inside a plain pickle: a numeric dtype name and byte order,
    turned into a real dtype only when a scalar is rebuilt."""

    def __init__(self, spec, align=False, copy=True):
        if not isinstance(spec, str):
            raise UnsafeFileError(f"numpy dtype {spec!r} is not a plain type name")
        self.spec = spec
        self.order = "="

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.order = state[1]

    def dtype(self) -> np.dtype:
        try:
            dt = np.dtype(self.spec).newbyteorder(self.order if self.order != "|" else "=")
        except TypeError as exc:
            raise UnsafeFileError(f"numpy dtype {self.spec!r}: {exc}") from None
        if dt.kind not in "biuf":
            raise UnsafeFileError(f"numpy scalars of dtype {self.spec!r} are not allowed (numbers only)")
        return dt


def _numpy_scalar(dtype, data=b""):
    if not isinstance(dtype, _SafeDType) or not isinstance(data, (bytes, str)):
        raise UnsafeFileError("a numpy scalar in the file is not a plain number")
    raw = data.encode("latin1") if isinstance(data, str) else data
    dt = dtype.dtype()
    if len(raw) != dt.itemsize:
        raise UnsafeFileError(f"numpy scalar of dtype {dt} needs {dt.itemsize} bytes, the file gives {len(raw)}")
    return np.frombuffer(raw, dtype=dt, count=1)[0].item()


def _latin1(text, encoding="latin1"):
    if encoding not in ("latin1", "latin-1", "latin_1") or not isinstance(text, str):
        raise UnsafeFileError("only latin1-encoded bytes are allowed in a plain pickle")
    return text.encode("latin1")


_PLAIN_GLOBALS = {
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _SafeDType,
    ("_codecs", "encode"): _latin1,
    ("builtins", "bytes"): _bounded_bytes(bytes),
    ("builtins", "bytearray"): _bounded_bytes(bytearray),
}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        # Python 3 pickle maps protocol-2 names (__builtin__ -> builtins) before calling this.
        if module == "builtins" and name in _PLAIN_BUILTINS:
            return _PLAIN_BUILTINS[name]
        if (module, name) in _PLAIN_GLOBALS:
            return _PLAIN_GLOBALS[(module, name)]
        raise UnsafeFileError(f"refusing to unpickle {module}.{name}: this file may hold only lists, dicts, strings and numbers")


def load_plain_pickle(data: bytes, what: str) -> Any:
    """Unpickle lists/dicts/tuples/str/numbers (numpy numeric scalars become Python numbers)."""
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except UnsafeFileError as exc:
        raise UnsafeFileError(f"{what}: {exc}") from None
    except MemoryError:
        raise UnsafeFileError(f"{what}: needs more memory than this machine has; refused") from None
    except Exception as exc:  # any malformed pickle: truncated, bad opcodes, wrong types
        raise UnreadableFileError(f"{what}: not a readable pickle ({type(exc).__name__}: {exc})") from None
