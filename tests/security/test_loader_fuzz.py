"""The checkpoint loader against hostile files: the known exploit families, and thousands of random
mutations of a valid checkpoint, never run code, never crash the process, and end either in a
loaded object or in one of the loader's two errors (UnsafeFileError, UnreadableFileError)."""

import ast
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch

from atom.safe_pickle import Opaque, UnsafeFileError, load_torch_checkpoint

MARKER = "/tmp/atom-loader-fuzz-pwned"


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def _save(obj, path):
    torch.save(obj, str(path))
    return path


def test_command_execution_is_refused(tmp_path):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    path = _save({"state_dict": {}, "x": _Reduce(os.system, (f"touch {MARKER}",))}, tmp_path / "a.tar")
    with pytest.raises(UnsafeFileError, match="system"):
        load_torch_checkpoint(path)
    assert not os.path.exists(MARKER)


def test_allocation_bomb_is_refused(tmp_path):
    path = _save({"x": _Reduce(bytes, (10**12,))}, tmp_path / "b.tar")
    with pytest.raises(UnsafeFileError, match="allocation bomb"):
        load_torch_checkpoint(path)


def test_numpy_object_arrays_never_reach_numpy(tmp_path):
    """The family that segfaulted the old loader (an object array filled from file bytes): numpy's
    reconstruction is never called; the array is an inert placeholder."""
    path = _save({"x": np.array([1, "two", None], dtype=object), "w": torch.ones(2)}, tmp_path / "c.tar")
    obj = load_torch_checkpoint(path)
    assert isinstance(obj["x"], Opaque) and torch.equal(obj["w"], torch.ones(2))


def test_compressed_entries_are_refused_before_inflating(tmp_path):
    good = _save({"w": torch.zeros(1000)}, tmp_path / "d.tar")
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "bomb.tar", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    with pytest.raises(UnsafeFileError, match="compressed"):
        load_torch_checkpoint(tmp_path / "bomb.tar")


def test_a_tensor_with_a_python_attribute_loads(tmp_path):
    t = torch.arange(3.0)
    t.note = "hello"
    obj = load_torch_checkpoint(_save({"t": t}, tmp_path / "e.tar"))
    assert torch.equal(obj["t"], torch.arange(3.0))


def test_random_mutations_never_crash_or_escape(tmp_path):
    """3,000 mutated checkpoints (bytes flipped, deleted, inserted in the pickle) loaded in a child
    process: it must finish (a segfault would kill it) and report only the allowed outcomes."""
    script = textwrap.dedent(f"""
        import io, random, sys, zipfile
        import torch
        from omegaconf import OmegaConf
        from atom.safe_pickle import load_torch_checkpoint, UnsafeFileError, UnreadableFileError
        ck = {{"state_dict": {{"vae.w": torch.randn(3, 4), "lm.b": torch.zeros(2)}},
              "hyper_parameters": {{"cfg": OmegaConf.create({{"a": {{"b": [1, 2]}}, "lr": 1e-4}})}}, "epoch": 3}}
        buf = io.BytesIO(); torch.save(ck, buf)
        zin = zipfile.ZipFile(io.BytesIO(buf.getvalue())); names = zin.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")][0]
        data = zin.read(pkl); others = {{n: zin.read(n) for n in names if n != pkl}}
        rng = random.Random(0); seen = {{}}
        for i in range(3000):
            d = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                op, pos = rng.random(), rng.randrange(len(d))
                if op < 0.5: d[pos] = rng.randrange(256)
                elif op < 0.75: del d[pos]
                else: d.insert(pos, rng.randrange(256))
            with zipfile.ZipFile({str(tmp_path / "m.tar")!r}, "w", zipfile.ZIP_STORED) as z:
                for n in names: z.writestr(n, bytes(d) if n == pkl else others[n])
            try:
                load_torch_checkpoint({str(tmp_path / "m.tar")!r}); kind = "loaded"
            except (UnsafeFileError, UnreadableFileError) as e: kind = type(e).__name__
            except BaseException as e: kind = "ESCAPED " + type(e).__name__ + ": " + str(e)[:120]
            seen[kind] = seen.get(kind, 0) + 1
        print(seen)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"the loader crashed the process (exit {res.returncode}): {res.stderr[-2000:]}"
    seen = ast.literal_eval(res.stdout.strip().splitlines()[-1])  # the dict the child printed
    assert sum(seen.values()) == 3000
    assert set(seen) <= {"loaded", "UnsafeFileError", "UnreadableFileError"}, seen
    assert seen.get("UnreadableFileError", 0) > 1000  # the mutations really broke files
