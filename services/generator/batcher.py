"""Batch sampling work across requests.

Requests put (prompt, seed) items on one queue; a worker thread takes the oldest item and every
other waiting item that shares its model and sampling settings (up to `max_batch`), samples them
in one batch and resolves each item's future. Per-sample seeds make the result of an item
independent of which batch it lands in, so batching across requests changes speed, never output.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

log = logging.getLogger("atom.generator")


@dataclass
class WorkItem:
    group: Hashable  # items of one group can share a batch (same model, adapter, settings)
    prompt: str
    seed: int
    future: Future = field(default_factory=Future)


class Batcher:
    def __init__(self, run_batch: Callable[[Hashable, Sequence[WorkItem]], list], max_batch: int = 32, window_s: float = 0.01):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.window_s = window_s
        self._queue: list[WorkItem] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="generator-batcher", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[WorkItem]) -> None:
        with self._cond:
            if self._stop:
                raise RuntimeError("the generator is shutting down")
            self._queue.extend(items)
            self._cond.notify()

    def _take(self) -> list[WorkItem]:
        with self._cond:
            while not self._queue and not self._stop:
                self._cond.wait(0.5)
            if self._stop and not self._queue:
                return []
        time.sleep(self.window_s)  # let concurrent requests add their items to this batch
        with self._cond:
            live = [it for it in self._queue if not it.future.cancelled()]
            self._queue = live
            if not live:
                return []
            group = live[0].group
            batch = [it for it in live if it.group == group][: self.max_batch]
            taken = set(map(id, batch))
            self._queue = [it for it in live if id(it) not in taken]
            return [it for it in batch if it.future.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                if self._stop:
                    return
                continue
            try:
                results = self.run_batch(batch[0].group, batch)
                for it, res in zip(batch, results):
                    it.future.set_result(res)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                log.exception("sampling batch failed")
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(exc)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            for it in self._queue:
                it.future.cancel()
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(10)
