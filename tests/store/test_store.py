import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from atom.store import ArtifactNotFound, LocalStore, StoreUnavailable, content_key, open_store, sha256_hex
from atom.store.s3 import S3Store
from atom.runtime.net import free_port


def test_put_get_exists_list_delete(store):
    info = store.put_bytes("motions/a.npz", b"abc")
    assert info.sha256 == sha256_hex(b"abc") and info.size == 3
    store.put_bytes("motions/b.npz", b"defg")
    store.put_bytes("renders/x/0.png", b"png")
    assert store.get_bytes("motions/a.npz") == b"abc"
    assert store.exists("motions/a.npz") and not store.exists("motions/zzz")
    assert store.list("motions/") == ["motions/a.npz", "motions/b.npz"]
    assert store.list("renders/x") == ["renders/x/0.png"]
    assert set(store.list("")) == {"motions/a.npz", "motions/b.npz", "renders/x/0.png"}
    store.delete("motions/a.npz")
    store.delete("motions/a.npz")  # deleting twice is fine
    assert not store.exists("motions/a.npz")
    with pytest.raises(ArtifactNotFound, match="motions/a.npz"):
        store.get_bytes("motions/a.npz")


def test_overwrite_and_stream(store):
    big = os.urandom(3 * (1 << 20) + 17)
    store.put_bytes("blobs/big.bin", b"old")
    store.put_bytes("blobs/big.bin", big)
    chunks = list(store.iter_chunks("blobs/big.bin", chunk_size=1 << 20))
    assert len(chunks) >= 3 and b"".join(chunks) == big


def test_content_addressed_is_idempotent(store):
    a = store.put_content_addressed("motions", b"same bytes", ".npz")
    b = store.put_content_addressed("motions", b"same bytes", ".npz")
    assert a.key == b.key == content_key("motions", b"same bytes", ".npz")
    assert a.key == f"motions/{sha256_hex(b'same bytes')}.npz"
    assert store.list("motions/") == [a.key]


def test_json_and_tree(store, tmp_path):
    store.put_json("runs/r1/manifest.json", {"b": 1, "a": [1, 2]})
    assert store.get_json("runs/r1/manifest.json") == {"a": [1, 2], "b": 1}
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "x.txt").write_text("x")
    (src / "sub" / "y.txt").write_text("y")
    store.put_tree("models/m", src)
    out = store.get_tree("models/m", tmp_path / "dst")
    assert (out / "x.txt").read_text() == "x" and (out / "sub" / "y.txt").read_text() == "y"
    with pytest.raises(ArtifactNotFound):
        store.get_tree("models/missing", tmp_path / "dst2")


def test_bad_keys_are_rejected(store):
    for key in ["/abs", "a/../b", "", "a//b", "sp ace"]:
        with pytest.raises(ValueError, match="invalid artifact key"):
            store.put_bytes(key, b"x")


def test_local_write_is_atomic_after_crash(tmp_path, wait_for):
    """A writer killed mid-write leaves either the old object or nothing, never half an object."""
    root = tmp_path / "store"
    LocalStore(root).put_bytes("blob.bin", b"old")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from atom.store import LocalStore
        s = LocalStore({str(root)!r})
        data = b"n" * (64 << 20)
        print("go", flush=True)
        while True:
            s.put_bytes("blob.bin", data)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"go"
    # Kill it while a write is under way: a temporary file of a new version is there.
    wait_for(lambda: any(p.name.startswith(".tmp-") for p in root.iterdir()), 30, "a write under way")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = LocalStore(root)
    data = store.get_bytes("blob.bin")
    assert data == b"old" or data == b"n" * (64 << 20)
    assert store.list("") == ["blob.bin"]  # the abandoned temp file is not an artifact


def test_unreachable_s3_store_gives_clear_error():
    port = free_port()  # nothing listens here
    store = S3Store(f"127.0.0.1:{port}", "atom", timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.put_bytes("a.txt", b"x")
    assert time.monotonic() - t0 < 15


def test_open_store_urls(tmp_path, monkeypatch):
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    s3 = open_store("http://127.0.0.1:9000/atom/prefix")
    assert isinstance(s3, S3Store) and s3.bucket == "atom" and s3.prefix == "prefix"
    monkeypatch.delenv("ATOM_S3_ENDPOINT", raising=False)
    with pytest.raises(ValueError, match="ATOM_S3_ENDPOINT"):
        open_store("s3://atom")
    with pytest.raises(ValueError, match="unsupported store URL"):
        open_store("ftp://x/y")
    with pytest.raises(ValueError, match="names no bucket"):
        open_store("http://127.0.0.1:9000/")


def test_unwritable_local_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StoreUnavailable, match="cannot"):
        LocalStore(blocker / "store").ping()
