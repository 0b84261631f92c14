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
from collections import deque
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
                    if exc is not None and not (isinstance(exc, grpc.RpcError) and exc.code() in RESEND_CODES):
                        for f in running:
                            f.cancel()
                        raise exc
                    reason = f"{exc.code().name}: {exc.details()}" if exc is not None else "stream ended early"
                    if attempt >= self.max_attempts:
                        self.stats.failures.append(reason)
                        raise FanOutError(f"{len(missing)} items still not done after {attempt} attempts; last error {reason}")
                    log.warning("resending %d items after %s", len(missing), reason)
                    self.stats.resent_items += len(missing)
                    resends.append((missing, attempt + 1))
        return results
