"""Local copies of store trees: made once, redone when unfinished, and safe when several jobs ask
for the same tree at once (a first run's pretraining and evaluator training do)."""

import threading

from atom.store import LocalStore
from atom.store.localcache import local_tree


def _store(tmp_path, files=40):
    store = LocalStore(tmp_path / "store")
    for i in range(files):
        store.put_bytes(f"data/set/part-{i:03d}.bin", bytes([i]) * (1000 + i))
    return store


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".atom-complete"}


def test_a_tree_is_copied_once_and_an_unfinished_copy_is_redone(tmp_path):
    store = _store(tmp_path)
    cache = tmp_path / "cache"
    local = local_tree(store, "data/set", cache)
    assert len(_tree(local)) == 40 and _tree(local)["part-007.bin"] == bytes([7]) * 1007
    (local / "part-007.bin").write_bytes(b"changed here")
    assert local_tree(store, "data/set", cache) == local and (local / "part-007.bin").read_bytes() == b"changed here"
    # A copy without its completion marker (an older, interrupted one) is made again.
    (local / ".atom-complete").unlink()
    assert _tree(local_tree(store, "data/set", cache))["part-007.bin"] == bytes([7]) * 1007
    assert sorted(p.name for p in cache.iterdir()) == [local.name]  # no leftover partial copies


def test_jobs_asking_at_once_each_get_the_whole_tree(tmp_path):
    store = _store(tmp_path, files=200)
    cache = tmp_path / "cache"
    got, errors = [], []
    start = threading.Barrier(6)

    def ask():
        start.wait(10)
        try:
            got.append(_tree(local_tree(store, "data/set", cache)))
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(got) == 6
    assert all(tree == got[0] for tree in got) and len(got[0]) == 200
    assert len(list(cache.iterdir())) == 1
