"""The report's pieces after the embeddings, side by side: one worker thread per usable core, each single-threaded.

t-SNE, the LightGBM classifiers and the JAX metrics each run on one thread (their OpenMP workers spin-wait, and
with the several OpenMP runtimes a report loads, two threads apiece ran 6-15x slower on 2 cores: eval.plots,
eval.classify). One after the other they left every core but one idle; here they run at the same time, one per
core. The pieces are independent and seeded, so which worker runs which, and when, changes no number: callers
collect the results in their own fixed order.

Threads, set here once for the whole phase: BLAS one thread (process-wide, for the phase), each worker's OpenMP
one thread (OpenMP's setting is per thread, so each worker sets its own when it starts), LightGBM `n_jobs=1`
(eval.classify). PyTorch keeps its default (a thread per core) for the embeddings, which run before, alone.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from common.cpus import usable_cores


def _single_threaded() -> None:
    """A worker's start: its OpenMP pools to one thread for as long as it lives."""
    threadpool_limits(1, user_api="openmp")


@contextmanager
def workers(count: int | None = None) -> Iterator[Executor]:
    """An executor of `count` (default: one per usable core) single-threaded workers; on leaving, every piece
    started has finished and BLAS has its threads back. Leaving on an error (a piece's, or Ctrl-C) cancels the
    pieces not started yet, so the error is not held up by work whose result nobody will read."""
    with threadpool_limits(1, user_api="blas"):
        pool = ThreadPoolExecutor(count or usable_cores(), thread_name_prefix="report", initializer=_single_threaded)
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
