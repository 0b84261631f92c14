"""FanOut.ordered (issue #21): results handed out in input order through a bounded window."""

from __future__ import annotations

import random
import threading
import time

import grpc
import pytest

from atom.pipeline.fanout import FanOut


class Recorder:
    """A `call` that answers each item `x` with results x#0, x#1, after a delay per chunk; it
    counts the items sent, so the test can see how far sending runs ahead of handing out."""

    def __init__(self, delay=lambda chunk: 0.0, fail_first: int = 0):
        self.delay, self.fail_first = delay, fail_first
        self.sent = 0
        self.chunks: list[list[int]] = []
        self.lock = threading.Lock()

    def __call__(self, chunk):
        with self.lock:
            self.sent += len(chunk)
            self.chunks.append(list(chunk))
            fail = self.fail_first > 0
            self.fail_first -= 1
        time.sleep(self.delay(chunk))
        for n, it in enumerate(chunk):
            if fail and n == 1:  # the stream breaks off after the first item
                raise FakeUnavailable()
            yield f"{it}#0"
            yield f"{it}#1"


class FakeUnavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "replica went away"


def fan(call, chunk_size=4, concurrency=3) -> FanOut:
    return FanOut(
        call=call, expected=lambda it: [f"{it}#0", f"{it}#1"], result_key=lambda r: r, chunk_size=chunk_size, concurrency=concurrency
    )


def test_order_is_input_order_exactly_whatever_order_chunks_finish_in():
    rng = random.Random(0)
    delays = {}
    rec = Recorder(delay=lambda chunk: delays.setdefault(chunk[0], rng.uniform(0, 0.01)))
    out = list(fan(rec).ordered(range(203), window=24))
    assert [it for it, _ in out] == list(range(203))
    assert all(res == [f"{it}#0", f"{it}#1"] for it, res in out)
    # the chunks are the ones run() cuts: consecutive runs of chunk_size items
    assert sorted(rec.chunks) == [list(range(i, min(i + 4, 203))) for i in range(0, 203, 4)]


def test_a_slow_head_chunk_holds_back_sending_at_exactly_the_window():
    release = threading.Event()
    rec = Recorder(delay=lambda chunk: 0.0)

    def call(chunk):
        if chunk[0] == 0:
            release.wait(10)
        return rec(chunk)

    window = 12
    stream = fan(call, chunk_size=4, concurrency=3).ordered(range(100), window=window)
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream))
    reader.start()
    time.sleep(0.3)  # the other chunks finish meanwhile; only the window's worth may be sent
    assert rec.sent == window - 4 and got == []  # chunk 0 (4 items) is held in `call`, not counted yet
    release.set()
    reader.join(10)
    assert [it for it, _ in got] == list(range(100))


def test_items_sent_and_not_handed_out_never_exceed_the_window():
    window, handed = 10, 0
    peak = 0
    rec = Recorder(delay=lambda chunk: 0.002 * (chunk[0] % 3))
    for it, _ in fan(rec, chunk_size=5, concurrency=4).ordered(range(300), window=window):
        peak = max(peak, rec.sent - handed)
        handed += 1
        time.sleep(0.0005)  # a slow consumer: sending must wait for it
    assert handed == 300 and peak <= window


def test_resent_items_come_out_in_order_once():
    rec = Recorder(fail_first=1)
    f = fan(rec, chunk_size=3, concurrency=1)
    out = list(f.ordered(range(10), window=6))
    assert [it for it, _ in out] == list(range(10))
    assert f.stats.resent_items == 2 and rec.chunks[1] == [1, 2]


def test_duplicate_items_in_the_window_are_sent_once_and_both_handed_out():
    rec = Recorder()
    out = list(fan(rec, chunk_size=2, concurrency=1).ordered(["a", "b", "a", "c"], window=4))
    assert [it for it, _ in out] == ["a", "b", "a", "c"]
    assert out[2][1] == ["a#0", "a#1"] and sum(c.count("a") for c in rec.chunks) == 1


def test_a_window_smaller_than_a_chunk_is_refused():
    with pytest.raises(ValueError, match="window"):
        list(fan(Recorder(), chunk_size=4).ordered(range(3), window=3))
