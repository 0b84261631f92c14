"""JSON Lines, the one codec every JSONL artifact goes through (store methods, MotionPrefer
records, pair sets). Pure functions: bytes in, objects out."""

from __future__ import annotations

import json
from typing import Iterable, Iterator


def encode_jsonl(rows: Iterable[dict]) -> bytes:
    """One JSON object per line, keys sorted, so equal rows give equal bytes."""
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows).encode()


def iter_jsonl(data: bytes, source: str, error: type[Exception] = ValueError) -> Iterator[tuple[str, object]]:
    """Yield (where, object) per non-blank line; `where` is 'source line N'. Undecodable text or a
    line that is not JSON raises `error` with a message naming the source and line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not UTF-8 text ({exc})") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source} line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        yield where, obj
