"""FanOut against a real gRPC server whose streams break off part-way, on loopback.

The server speaks a tiny raw-bytes method (no protos needed): the request is a comma-separated list
of items, and each item `x` streams back results `x#0 .. x#(n-1)`. A scripted fault plan makes the
server abort a stream after a number of results, so every resend path is exercised exactly.
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest

from atom.pipeline.fanout import FanOut, FanOutError
from atom.runtime.net import free_port

METHOD = "/test.Items/Stream"
RESULTS_PER_ITEM = 2


class ItemServer:
    """Streams results for items; `faults` is a list of (results_before_abort, status) for the
    first calls, in arrival order."""

    def __init__(self, faults: list[tuple[int, grpc.StatusCode]]):
        self.faults = list(faults)
        self.requests: list[list[str]] = []
        self._lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler("test.Items", {"Stream": grpc.unary_stream_rpc_method_handler(self._stream)})
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        self.server.add_generic_rpc_handlers((handler,))
        self.address = f"127.0.0.1:{free_port()}"
        self.server.add_insecure_port(self.address)

    def _stream(self, request: bytes, context):
        items = request.decode().split(",")
        with self._lock:
            self.requests.append(items)
            fault = self.faults.pop(0) if self.faults else None
        sent = 0
        for item in items:
            for i in range(RESULTS_PER_ITEM):
                if fault is not None and sent == fault[0]:
                    context.abort(fault[1], "scripted fault")
                yield f"{item}#{i}".encode()
                sent += 1

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(None)


def fan_out(server: ItemServer, items: list[str], chunk_size: int, done: dict | None = None, **kw) -> tuple[FanOut, dict]:
    channel = grpc.insecure_channel(server.address)
    call = channel.unary_stream(METHOD)

    def stream(chunk):
        for raw in call(",".join(chunk).encode(), timeout=10):
            yield raw.decode()

    fan = FanOut(
        call=stream,
        expected=lambda it: [f"{it}#{i}" for i in range(RESULTS_PER_ITEM)],
        result_key=lambda r: r,
        chunk_size=chunk_size,
        concurrency=1,
        **kw,
    )
    try:
        return fan, fan.run(items, done=done)
    finally:
        channel.close()


def test_stream_broken_mid_item_resends_only_unfinished_items_and_keeps_repeats_once():
    # First request: results a#0, a#1, b#0 arrive, then the stream breaks in the middle of b.
    with ItemServer([(3, grpc.StatusCode.UNAVAILABLE)]) as server:
        fan, results = fan_out(server, ["a", "b", "c"], chunk_size=3)
    assert sorted(results) == [f"{x}#{i}" for x in "abc" for i in range(RESULTS_PER_ITEM)]
    assert server.requests == [["a", "b", "c"], ["b", "c"]]  # a was complete, so it is not sent again
    assert fan.stats.resent_items == 2
    assert fan.stats.redelivered == 1  # b#0 came back twice, kept once
    assert fan.stats.requests == 2


def test_items_already_done_are_not_sent():
    with ItemServer([]) as server:
        _, results = fan_out(server, ["a", "b", "c"], chunk_size=2, done={"a#0": "a#0", "a#1": "a#1"})
    assert server.requests == [["b", "c"]]
    assert len(results) == 6


def test_error_that_is_not_worth_resending_is_raised():
    with ItemServer([(1, grpc.StatusCode.INVALID_ARGUMENT)]) as server:
        with pytest.raises(grpc.RpcError) as err:
            fan_out(server, ["a", "b"], chunk_size=2)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(server.requests) == 1


def test_gives_up_after_max_attempts_with_the_last_error():
    faults = [(0, grpc.StatusCode.UNAVAILABLE)] * 3
    with ItemServer(faults) as server:
        with pytest.raises(FanOutError, match=r"2 items still not done after 3 attempts; last error UNAVAILABLE"):
            fan_out(server, ["a", "b"], chunk_size=2, max_attempts=3)
    assert len(server.requests) == 3
