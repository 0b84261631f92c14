"""JSON Lines, the one codec every JSONL artifact goes through (store methods, MotionPrefer
records, pair sets). Pure functions: bytes in, objects out."""

from __future__ import annotations

import json
from typing import Iterable, Iterator


def encode_jsonl(rows: Iterable[dict]) -> bytes:
    """One JSON object per line, keys sorted, so equal rows give equal bytes."""
    return b"".join(encode_jsonl_row(r) for r in rows)


def iter_jsonl(data: bytes, source: str, error: type[Exception] = ValueError) -> Iterator[tuple[str, object]]:
    """Yield (where, object) per non-blank line; `where` is 'source line N'. Undecodable text or a
    line that is not JSON raises `error` with a message naming the source and line. Lines end at
    "\\n" only: json.dumps(ensure_ascii=False) leaves U+2028, U+0085 and the like unescaped inside
    strings, and splitlines() would cut a row there."""
    return iter_jsonl_chunks((data,), source, error)


def encode_jsonl_row(row: dict) -> bytes:
    """One line of encode_jsonl: rows written one at a time give the same bytes as all at once."""
    return (json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n").encode()


def iter_jsonl_chunks(chunks: Iterable[bytes], source: str, error: type[Exception] = ValueError) -> Iterator[tuple[str, object]]:
    """iter_jsonl over a stream of byte chunks, holding one line at a time. b"\\n" is never part of
    a multi-byte UTF-8 character, so a chunk may end anywhere."""
    n, rest = 0, b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            n += 1
            yield from _parse_line(line, n, source, error)
    if rest:
        yield from _parse_line(rest, n + 1, source, error)


def _parse_line(line: bytes, n: int, source: str, error: type[Exception]) -> Iterator[tuple[str, object]]:
    try:
        text = line.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{source} line {n}: not UTF-8 text ({exc})") from None
    if not text.strip():
        return
    where = f"{source} line {n}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    yield where, obj
