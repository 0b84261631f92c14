"""Spread work over a service's replicas with bounded concurrency, and lose nothing.

Work is cut into chunks; each chunk is one streaming request, sent to the next replica
(ServiceClient round-robins). At most `concurrency` requests are in flight, which is the
backpressure: the controller never queues more work on a service than it can take. When a replica
dies mid-stream, the items of that chunk that have not come back are sent again (to another
replica); results are keyed, so an item that arrives twice is kept once. Services make resends
cheap: their outputs are content-addressed and cached.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Generic, Hashable, Iterable, Iterator, Sequence, TypeVar

import grpc

log = logging.getLogger("atom.fanout")

T = TypeVar("T")
R = TypeVar("R")

# Worth resending elsewhere: the replica went away or broke off the stream.
RESEND_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
)


class FanOutError(RuntimeError):
    """Some items could not be done after every attempt."""


@dataclass
class FanOutStats:
    requests: int = 0
    resent_items: int = 0
    redelivered: int = 0  # results that came back twice after a resend (kept once)
    failures: list[str] = field(default_factory=list)


@dataclass
class FanOut(Generic[T, R]):
    call: Callable[[Sequence[T]], Iterator[R]]  # one streaming request for a chunk of items
    expected: Callable[[T], list[Hashable]]  # the result keys an item must produce
    result_key: Callable[[R], Hashable]
    chunk_size: int = 8
    concurrency: int = 2
    max_attempts: int = 4
    on_result: Callable[[R], None] | None = None  # called once per new result, in this thread's order
    stats: FanOutStats = field(default_factory=FanOutStats)

    def _done(self, item: T, results: dict) -> bool:
        return all(k in results for k in self.expected(item))

    def _chunks(self, items: Iterable[T], results: dict, lock: threading.Lock) -> Iterator[list[T]]:
        """The items not done yet, `chunk_size` at a time, cut as they are sent: no list of every
        chunk is built up front."""
        chunk: list[T] = []
        for it in items:
            with lock:
                if self._done(it, results):
                    continue
            chunk.append(it)
            if len(chunk) == self.chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def run(self, items: Iterable[T], done: dict | None = None) -> dict[Hashable, R]:
        """Results by key for every item. `done` holds results known from an earlier run: items
        whose expected results are all there are not sent again. The chunks are sent in order,
        then the resends, in the order they were found missing."""
        results: dict[Hashable, R] = dict(done or {})
        lock = threading.Lock()
        fresh = self._chunks(items, results, lock)
        resends: deque[tuple[list[T], int]] = deque()

        def next_chunk() -> tuple[list[T], int] | None:
            chunk = next(fresh, None)
            if chunk is not None:
                return chunk, 1
            return resends.popleft() if resends else None

        def send(chunk: list[T]) -> None:
            for result in self.call(chunk):
                key = self.result_key(result)
                with lock:
                    if key in results:
                        self.stats.redelivered += 1
                        continue
                    results[key] = result
                if self.on_result:
                    self.on_result(result)

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="fanout") as pool:
            running: dict[Future, tuple[list[T], int]] = {}
            while True:
                while len(running) < self.concurrency:
                    nxt = next_chunk()
                    if nxt is None:
                        break
                    chunk, attempt = nxt
                    self.stats.requests += 1
                    running[pool.submit(send, chunk)] = (chunk, attempt)
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    chunk, attempt = running.pop(fut)
                    exc = fut.exception()
                    with lock:
                        missing = [it for it in chunk if not self._done(it, results)]
                    if exc is None and not missing:
                        continue
                    try:
                        resends.append(self._resend(missing, attempt, exc))
                    except BaseException:
                        for f in running:
                            f.cancel()
                        raise
        return results

    def _resend(self, missing: list[T], attempt: int, exc: BaseException | None) -> tuple[list[T], int]:
        """The chunk to send again for a call that failed or ended early (`exc` None) with items
        `missing`; raises `exc` when it is not worth a retry, FanOutError when attempts run out."""
        if exc is not None and not (isinstance(exc, grpc.RpcError) and exc.code() in RESEND_CODES):
            raise exc
        reason = f"{exc.code().name}: {exc.details()}" if exc is not None else "stream ended early"
        if attempt >= self.max_attempts:
            self.stats.failures.append(reason)
            raise FanOutError(f"{len(missing)} items still not done after {attempt} attempts; last error {reason}")
        log.warning("resending %d items after %s", len(missing), reason)
        self.stats.resent_items += len(missing)
        return missing, attempt + 1

    def ordered(self, items: Iterable[T], window: int) -> Iterator[tuple[T, list[R]]]:
        """Each item with its results (in `expected` order), in input order, as soon as it and
        every item before it are done; chunks are cut and sent as run() cuts them. The bound: a
        chunk is sent only while at most `window` items are sent and not yet handed out, so a slow
        or resent chunk holds back the sending of later chunks instead of letting their results
        pile up; memory holds at most `window` items and their results, whatever the number of
        items. A result whose key no item in the window expects (one that came back twice after a
        resend) is dropped and counted as redelivered. An item whose keys equal an item's still in
        the window is not sent again: it is handed out with the same results."""
        if window < self.chunk_size:
            raise ValueError(f"window ({window}) must hold at least one chunk ({self.chunk_size} items)")
        results: dict[Hashable, R] = {}
        wanted: Counter[Hashable] = Counter()  # the keys the items in the window expect, with how many want each
        window_items: deque[T] = deque()  # sent and not yet handed out, in input order
        lock = threading.Lock()
        source = iter(items)
        exhausted = False
        resends: deque[tuple[list[T], int]] = deque()

        def next_chunk() -> tuple[list[T], int] | None:
            nonlocal exhausted
            if resends:  # resends first: they hold back the head of the window
                return resends.popleft()
            chunk: list[T] = []
            while len(chunk) < self.chunk_size and len(window_items) < window:
                it = next(source, None)
                if it is None:
                    exhausted = True
                    break
                keys = self.expected(it)
                with lock:
                    fresh = not all(wanted[k] for k in keys)
                    wanted.update(keys)
                window_items.append(it)
                if fresh:
                    chunk.append(it)
            return (chunk, 1) if chunk else None

        def send(chunk: list[T]) -> None:
            for result in self.call(chunk):
                key = self.result_key(result)
                with lock:
                    if key in results or not wanted[key]:
                        self.stats.redelivered += 1
                        continue
                    results[key] = result
                if self.on_result:
                    self.on_result(result)

        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fanout")
        running: dict[Future, tuple[list[T], int]] = {}
        try:
            while True:
                # A full chunk's room in the window before cutting one, so chunks are cut as run() cuts them.
                while len(running) < self.concurrency and (resends or len(window_items) + self.chunk_size <= window):
                    nxt = next_chunk()
                    if nxt is None:
                        break
                    chunk, attempt = nxt
                    self.stats.requests += 1
                    running[pool.submit(send, chunk)] = (chunk, attempt)
                while window_items:
                    with lock:
                        head = window_items[0]
                        keys = self.expected(head)
                        if not all(k in results for k in keys):
                            break
                        window_items.popleft()
                        out = [results[k] for k in keys]
                        wanted.subtract(keys)
                        for k in keys:
                            if not wanted[k]:
                                del wanted[k], results[k]
                    yield head, out
                if not running:
                    if exhausted and not resends:
                        break
                    continue  # handing out made room in the window: cut the next chunks
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    chunk, attempt = running.pop(fut)
                    exc = fut.exception()
                    with lock:  # an item already handed out has no results left here, and is not missing
                        missing = [it for it in chunk if any(wanted[k] for k in self.expected(it)) and not self._done(it, results)]
                    if exc is None and not missing:
                        continue
                    resends.append(self._resend(missing, attempt, exc))
        finally:
            for f in running:
                f.cancel()
            pool.shutdown(wait=True)
