"""The global budget without Ray: a `Budget` driven in this event loop as Ray drives the actor, several
`RemoteLimiter`s (shards) leasing from it. Limits are proved from the recorded grant times (scaled time: a 2 s
"minute"), never from durations."""
import asyncio
import inspect
import math

import pytest

from llm.scale.budget import Budget, RemoteLimiter, Superseded
from llm.testing.record import max_in_window


class Handle:
    """`handle.method.remote(...)` as on a Ray actor handle: an awaitable (calls nobody awaits still run). Counts
    the calls by method."""

    def __init__(self, budget: Budget):
        self.budget, self.calls = budget, {}

    def __getattr__(self, name):
        method, calls = getattr(self.budget, name), self.calls

        class Remote:
            @staticmethod
            def remote(*args):
                calls[name] = calls.get(name, 0) + 1
                result = method(*args)
                if inspect.isawaitable(result):
                    return asyncio.ensure_future(result)
                future = asyncio.get_running_loop().create_future()
                future.set_result(result)
                return future

        return Remote


async def hammer(limiter: RemoteLimiter, seconds: float, workers: int, granted: list, tokens: int = 10) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def one():
        while loop.time() < end:
            async with limiter.admit(tokens) as permit:
                granted.append((loop.time(), tokens // 2))  # the tokens it uses: half its reservation
                await asyncio.sleep(0.01)
                limiter.settle(permit, tokens // 2)
                limiter.succeeded()

    await asyncio.gather(*(one() for _ in range(workers)))


@pytest.mark.timeout(60)
async def test_shards_spending_leases_keep_the_sum_under_the_limits():
    # before: every request was two actor calls (an admission and a release), about 600 requests a second per actor
    period, rpm, tpm, burst = 2.0, 240, 6000, 0.5  # 120 requests and 3000 tokens a second; a burst of 0.5 s
    budget = Budget(concurrency=12, rpm=rpm, tpm=tpm, period=period, burst=burst, hold=0.05)
    handle = Handle(budget)
    shards = [RemoteLimiter(handle, f"s{i}/1", concurrency=12, tpm=tpm) for i in range(3)]
    granted = [[] for _ in shards]
    await asyncio.gather(*(hammer(s, 3.0, 8, g) for s, g in zip(shards, granted)))
    every = sorted(t for g in granted for t in g)
    for limit, events in ((rpm, [(t, 1) for t, _ in every]), (tpm, every)):
        assert max_in_window(events, period) <= limit
        for length in (0.1, 0.25, 0.5, 1.0):  # the rate of any stretch plus one burst, over all shards together
            assert max_in_window(events, length) <= limit * (length + burst) / period + 1e-6
    assert all(len(g) > 10 for g in granted)  # every shard got its turn
    assert handle.calls["take"] < len(every) / 3  # blocks: several requests an actor call
    assert budget.state()["slots"] <= 12


async def test_requests_in_flight_over_all_shards_stay_under_the_cap_and_are_shared():
    budget = Budget(concurrency=6)
    shards = [RemoteLimiter(Handle(budget), f"s{i}/1", concurrency=6, tpm=None) for i in range(2)]
    active = peak = 0
    per_shard = [0, 0]

    async def one(i):
        nonlocal active, peak
        for _ in range(30):
            async with shards[i].admit(1):
                active += 1
                peak = max(peak, active)
                per_shard[i] += 1
                await asyncio.sleep(0.005)
                active -= 1

    await asyncio.gather(*(one(i) for i in (0, 1) for _ in range(6)))
    assert peak <= 6 and per_shard == [180, 180]


async def test_a_block_is_spent_only_within_its_hold_and_the_rest_goes_back():
    budget = Budget(rpm=60_000, hold=0.05)  # blocks of 0.05 s worth: 49 requests
    handle = Handle(budget)
    shard = RemoteLimiter(handle, "s/1", concurrency=4, tpm=None)
    for _ in range(2):
        async with shard.admit(1):
            pass
    size = budget._owners["s/1"].block.requests
    assert size == 49 and handle.calls["take"] == 1  # the second came out of the first block
    returned = []
    settle = budget._settle
    budget._settle = lambda me, unused, *rest: (returned.append(unused), settle(me, unused, *rest))
    await asyncio.sleep(0.06)  # past its hold: its 47 left may not go out any more
    async with shard.admit(1):
        pass
    assert handle.calls["take"] == 2 and returned == [(47, math.inf)]


async def test_a_budget_frees_what_a_killed_attempt_held_or_queued_for_and_forgets_silent_owners():
    budget = Budget(lease_s=0.3, concurrency=2, rpm=60, period=1.0, burst=0.0)  # one request at a time, 1/60 s apart
    first = await budget.take("s/1", 10, 2, 0)
    assert first["slots"] == 2 and first["requests"] == 1
    queued = asyncio.ensure_future(budget.take("s/1", 10, 2, 1))  # waits for the bucket
    await asyncio.sleep(0)
    assert not queued.done()
    assert await budget.start("s", "s/2") == 2  # the retry of shard s begins: attempt 1 is dead
    with pytest.raises(Superseded):  # admitted, given back at once, and its worker told
        await queued
    assert budget.state()["slots"] == 0
    with pytest.raises(Superseded):
        await budget.take("s/1", 10, 2, 0)
    assert (await budget.take("s/2", 10, 2, 0))["slots"] == 2
    other = await budget.take("t/1", 10, 2, 0)
    assert other["slots"] == 0 and other["share"] == 1  # all in use: s/2 sheds down to one as its requests end
    await asyncio.sleep(0.6)
    assert budget.state()["owners"] == 0  # not heard from for lease_s: forgotten, their slots free
