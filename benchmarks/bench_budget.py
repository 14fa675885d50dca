"""Requests a minute one `Budget` actor carries for one endpoint (no limits set, so the actor itself is the
bottleneck), with our leases (a block of permits an actor call) against the per-request lease before issue 26 (two
actor calls a request: the baseline, `llm/scale/budget.py` at BEFORE_26 read from git by benchmarks/baseline.py),
in the same run on one local Ray instance:

    python benchmarks/bench_budget.py [--tasks 2] [--inflight 32] [--seconds 5] [--rpm R]

Each of `--tasks` Ray tasks keeps `--inflight` requests going through its `RemoteLimiter` (an empty request:
admit, settle, success), so the count is what the budget grants, not what a server answers. With `--rpm` the
endpoint has that limit too (our blocks are then sized from it)."""
import argparse
import asyncio
import sys
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm.scale import budget as ours  # noqa: E402

from baseline import BEFORE_26, from_git  # noqa: E402

def hammer(remote_limiter, budget, inflight: int, seconds: float) -> int:
    limiter = remote_limiter(budget, "bench/1", concurrency=inflight, tpm=None)

    async def loop() -> int:
        count, end = 0, time.monotonic() + seconds

        async def one():
            nonlocal count
            while time.monotonic() < end:
                async with limiter.admit(100) as permit:
                    limiter.settle(permit, 90)
                    limiter.succeeded()
                count += 1

        await asyncio.gather(*(one() for _ in range(inflight)))
        return count

    return asyncio.run(loop())


def measure(module, a) -> float:
    """Requests a minute through one actor of `module`'s Budget."""
    budget = ray.remote(module.Budget).options(num_cpus=0, max_concurrency=10_000).remote(
        concurrency=a.tasks * a.inflight, rpm=a.rpm)
    task = ray.remote(hammer)
    ray.get(task.remote(module.RemoteLimiter, budget, 4, 0.5))  # warm up a worker
    counts = ray.get([task.remote(module.RemoteLimiter, budget, a.inflight, a.seconds) for _ in range(a.tasks)])
    ray.kill(budget)
    return 60 * sum(counts) / a.seconds


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--inflight", type=int, default=32)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rpm", type=int, help="the endpoint's requests a minute (default: no limit)")
    a = p.parse_args()
    ray.init(address="local", num_cpus=a.tasks, include_dashboard=False, log_to_driver=False)
    old = from_git(BEFORE_26, "llm/scale/budget.py")
    ray.cloudpickle.register_pickle_by_value(old)  # its classes travel to the workers by value, not by import
    rates = {"leases (ours)": measure(ours, a), "per-request lease (before)": measure(old, a)}
    for name, rate in rates.items():
        print(f"{name}: {rate:,.0f} requests/min per endpoint ({rate / 60:,.0f}/s) from {a.tasks} tasks x "
              f"{a.inflight} in flight")
    print(f"ratio ours/before: {rates['leases (ours)'] / rates['per-request lease (before)']:.1f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
