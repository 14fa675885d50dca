"""eval.parallel: the report's workers are single-threaded (OpenMP per worker, BLAS for the phase), one per
usable core, and give BLAS its threads back afterwards."""
import threading

import numpy as np
from threadpoolctl import threadpool_info

import eval.parallel
from eval.parallel import workers


def threads(api: str) -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == api}


def test_workers_are_single_threaded_and_blas_is_restored(monkeypatch):
    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS loaded
    before = threads("blas")
    monkeypatch.setattr(eval.parallel, "usable_cores", lambda: 3)
    with workers() as pool:
        seen = list(pool.map(lambda _: (threading.current_thread().name, threads("openmp"), threads("blas")),
                             range(12)))
    assert {name.split("_")[0] for name, _, _ in seen} == {"report"}
    assert len({name for name, _, _ in seen}) <= 3
    assert all(blas <= {1} and openmp <= {1} for _, openmp, blas in seen)
    assert threads("blas") == before


def test_an_error_in_a_piece_reaches_the_caller():
    with workers(2) as pool:
        future = pool.submit(lambda: 1 / 0)
    try:
        future.result()
    except ZeroDivisionError:
        return
    raise AssertionError("the piece's error was lost")


def test_leaving_on_an_error_cancels_the_pieces_not_started():
    import time
    started = []

    def slow(i):
        started.append(i)
        time.sleep(0.3)

    try:
        with workers(1) as pool:
            first = pool.submit(lambda: 1 / 0)
            later = [pool.submit(slow, i) for i in range(5)]
            first.result()
    except ZeroDivisionError:
        pass
    assert sum(f.cancelled() for f in later) >= 4 and len(started) <= 1  # at most the one already picked up
