"""A model job (pretraining, the embedded evaluator) run in a process of its own.

Two model jobs side by side in one process would share what PyTorch keeps per process: the
default random generator (weight initialisation, dropout, the VQ-VAE's code resets draw from it,
so the interleaving of two jobs would change both models) and the interpreter lock. In a process
each, they make the same bytes as one after the other, and their memory goes back to the system
when they end. The child reports progress and its outcome over a pipe; cancelling the job asks it
to stop between steps; it gets SIGTERM if the trainer dies.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from typing import Callable

from services.trainer.model_jobs import EvaluatorSpec, JobCancelled, JobOutcome, JobProgress, PretrainSpec

ModelSpec = PretrainSpec | EvaluatorSpec
_STOP_GRACE_S = 30.0


class JobProcessDied(RuntimeError):
    """The job's process ended without an outcome (killed, out of memory, a crash in native code)."""


def run_in_process(
    spec: ModelSpec,
    store_url: str,
    threads: int,
    progress: Callable[[JobProgress], None],
    cancel: threading.Event,
    poll_s: float = 0.2,
) -> JobOutcome:
    """Run `spec` in a spawned child on `threads` CPU threads; return its outcome, or raise what it
    raised (JobCancelled when `cancel` stopped it)."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs gRPC threads
    receive, send = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    proc = ctx.Process(target=_child, args=(spec, store_url, threads, send, stop), name=f"trainer-{spec.kind}", daemon=True)
    proc.start()
    send.close()  # the child holds the only writer: its exit ends the pipe
    try:
        while True:
            if cancel.is_set():
                stop.set()
            try:
                if not receive.poll(poll_s):
                    continue
                kind, payload = receive.recv()
            except EOFError:
                proc.join(5)
                raise JobProcessDied(
                    f"the {spec.kind} job's process ended without a result (exit code {proc.exitcode}); "
                    "see the trainer's log, then start the job again"
                ) from None
            if kind == "progress":
                progress(payload)
            elif kind == "done":
                return payload
            else:  # "raised"
                raise payload
    finally:
        receive.close()
        if proc.is_alive():
            stop.set()
            proc.join(_STOP_GRACE_S)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


def _child(spec: ModelSpec, store_url: str, threads: int, send, stop) -> None:
    from atom.runtime.launch import die_with_parent

    die_with_parent()
    try:
        import torch

        from atom.store import open_store

        torch.set_num_threads(max(1, threads))
        outcome = spec.run(open_store(store_url), lambda p: send.send(("progress", p)), stop)
        send.send(("done", outcome))
    except BaseException as exc:  # everything goes back to the trainer, which ends the job with it
        send.send(("raised", _portable(exc)))
    finally:
        send.close()


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives the pipe (pickling), else a RuntimeError with the same words."""
    if isinstance(exc, JobCancelled):
        return exc
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
