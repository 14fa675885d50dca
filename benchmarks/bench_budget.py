"""Leases per second one `Budget` actor grants (no limits set, so the actor itself is the bottleneck):
`python benchmarks/bench_budget.py [--tasks 2] [--inflight 32] [--seconds 5]`, on a local Ray instance."""
import argparse
import asyncio
import time

import ray

from llm.scale.budget import Budget, RemoteLimiter


def hammer(budget, inflight: int, seconds: float) -> int:
    limiter = RemoteLimiter(budget, "bench", concurrency=inflight, tpm=None)

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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--inflight", type=int, default=32)
    p.add_argument("--seconds", type=float, default=5.0)
    a = p.parse_args()
    ray.init(address="local", num_cpus=a.tasks, include_dashboard=False, log_to_driver=False)
    budget = ray.remote(Budget).options(num_cpus=0, max_concurrency=10_000).remote(concurrency=a.tasks * a.inflight)
    task = ray.remote(hammer)
    ray.get(task.remote(budget, 4, 0.5))  # warm up a worker
    t0 = time.monotonic()
    counts = ray.get([task.remote(budget, a.inflight, a.seconds) for _ in range(a.tasks)])
    wall = time.monotonic() - t0
    print(f"{sum(counts)} leases in {wall:.1f} s from {a.tasks} tasks x {a.inflight} in flight: "
          f"{sum(counts) / a.seconds:.0f} leases/s = {60 * sum(counts) / a.seconds:.0f} requests/min per endpoint")
    ray.shutdown()


if __name__ == "__main__":
    main()
