"""Which training jobs may run at the same time.

A preference job takes the trainer's accelerator, or on a CPU every thread the service has, so it
runs alone. The model jobs (pretraining the tiny base model, training the embedded evaluator) run
on one CPU thread each (PretrainConfig.threads says why), so on a 2-core machine two of them side
by side take the time of the longer one: a first run trains the evaluator while the base model
pretrains.

Each job asks for a number of CPU threads (a preference job for all of them) and jobs are let in
first come, first served while what they ask for fits. A model job then runs in a process of its
own (services/trainer/job_process.py), so jobs side by side share no random generator.
"""

from __future__ import annotations

import collections
import threading


class Admission:
    """A first-come, first-served budget of CPU threads shared by the trainer's jobs."""

    def __init__(self, threads: int):
        self.capacity = max(1, int(threads))
        self._cond = threading.Condition()
        self._used = 0
        self._queue: collections.deque[object] = collections.deque()

    def fit(self, want: int) -> int:
        """What a job asking for `want` threads gets: at least one, at most all of them."""
        return min(max(1, int(want)), self.capacity)

    def acquire(self, threads: int, cancel: threading.Event, poll_s: float = 0.2) -> bool:
        """Wait for `threads` (as fitted) to be free and for every earlier asker to be let in; take
        them and return True, or return False as soon as `cancel` is set."""
        need, ticket = self.fit(threads), object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self._used + need > self.capacity:
                    if cancel.is_set():
                        return False
                    self._cond.wait(poll_s)
                self._used += need
                return True
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now

    def release(self, threads: int) -> None:
        with self._cond:
            self._used = max(0, self._used - self.fit(threads))
            self._cond.notify_all()

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._used
