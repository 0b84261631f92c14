"""Streaming JSONL (issue #21): open_writer / stream_jsonl on the local store and on the in-repo S3
server. A write appears whole or not at all, also when the writing process dies mid-write."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from atom.store import StoreError
from atom.store.base import CorruptArtifact
from atom.store.jsonl import encode_jsonl, iter_jsonl, iter_jsonl_chunks

ROWS = [{"i": i, "text": f"row {i}: é ü 漢字 \u2028 line-separator inside a string", "nested": {"b": [1, 2], "a": None}} for i in range(50)]


def test_writer_gives_put_jsonl_bytes_and_reader_gives_get_jsonl_rows(store):
    with store.open_writer("runs/a/rows.jsonl", "application/x-ndjson") as sink:
        for row in ROWS:
            sink.write_row(row)
    ref = store.put_jsonl("runs/a/ref.jsonl", ROWS)
    assert store.get_bytes("runs/a/rows.jsonl") == store.get_bytes("runs/a/ref.jsonl") == encode_jsonl(ROWS)
    assert (sink.info.sha256, sink.info.size) == (ref.sha256, ref.size)
    assert list(store.stream_jsonl("runs/a/rows.jsonl")) == store.get_jsonl("runs/a/rows.jsonl") == ROWS


def test_a_large_stream_goes_up_whole(store):
    # About 12 MB: more than minio's 5 MiB part, so S3 takes it as a multipart upload.
    row = {"pad": "x" * 4000}
    with store.open_writer("runs/big.jsonl") as sink:
        for i in range(3000):
            sink.write_row({**row, "i": i})
    assert sink.info.size > 12_000_000
    assert sum(1 for _ in store.stream_jsonl("runs/big.jsonl")) == 3000


def test_an_exception_mid_write_leaves_nothing(store):
    with pytest.raises(RuntimeError, match="boom"):
        with store.open_writer("runs/b/rows.jsonl") as sink:
            sink.write_row(ROWS[0])
            raise RuntimeError("boom")
    assert not store.exists("runs/b/rows.jsonl")
    assert store.list("runs/b") == []


def test_a_process_killed_mid_write_leaves_no_partial_file_under_the_key(store):
    # The child writes half a file and dies without unwinding (os._exit: no finally, no cleanup),
    # as a crashed or OOM-killed stage would.
    child = textwrap.dedent(
        f"""
        import os
        from atom.store import open_store
        store = open_store({store.url!r})
        with store.open_writer("runs/c/rows.jsonl") as sink:
            for i in range(1000):
                sink.write_row({{"i": i, "pad": "y" * 100}})
            os._exit(3)
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert not store.exists("runs/c/rows.jsonl")
    assert store.list("runs/c") == []
    with pytest.raises(StoreError):
        store.get_bytes("runs/c/rows.jsonl")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_chunked_reading_matches_whole_reading_at_any_chunk_boundary(chunk):
    data = encode_jsonl(ROWS[:5]) + b"\n  \r\n" + encode_jsonl(ROWS[5:8]).replace(b"\n", b"\r\n")
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert list(iter_jsonl_chunks(chunks, "src")) == list(iter_jsonl(data, "src"))
    assert [obj for _w, obj in iter_jsonl_chunks(chunks, "src")] == ROWS[:8]


def test_a_corrupt_line_is_reported_by_line_number_as_get_jsonl_does(store):
    store.put_bytes("runs/d.jsonl", b'{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(CorruptArtifact) as whole:
        store.get_jsonl("runs/d.jsonl")
    with pytest.raises(CorruptArtifact) as streamed:
        list(store.stream_jsonl("runs/d.jsonl"))
    assert str(streamed.value) == str(whole.value) and "line 3" in str(whole.value)
