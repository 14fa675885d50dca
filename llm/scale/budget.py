"""The global budget of a Ray run: one `Budget` actor per endpoint, leasing admissions to every shard's clients
through `RemoteLimiter`, so the *sum* over shards stays under the endpoint's RPM/TPM/concurrency, with one clock.

The actor holds that endpoint's `Limiter` (the same class a single process uses, with the same sliding-window
proof). Leases of a killed attempt are dropped when its retry starts (and any it was still queued for are given
back on admission), and any lease expires after `lease_s` (`timeout + 30 s` in a run).
"""
from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from llm.transport.limiter import Limiter, check_request


@dataclass
class _Lease:
    permit: object
    stack: AsyncExitStack
    owner: str
    t: float


class Budget:
    """One endpoint's `Limiter`, shared by all shards (run it as an async Ray actor: `ray.remote(Budget)`).

    `acquire` enters `Limiter.admit` and holds it open under a lease id until `release`, so admission order,
    windows, the concurrency cap and the adaptive 429 factor are exactly the single-process limiter's."""

    def __init__(self, lease_s: float = 90.0, **limits):
        self.limiter = Limiter(**limits)
        self.lease_s = lease_s
        self._leases: dict[int, _Lease] = {}
        self._next = 0
        self._dead: set[str] = set()  # owners (shard attempts) known to be gone
        self._owners: dict[str, set[str]] = {}  # shard -> its attempts seen
        self._sweeper: asyncio.Task | None = None

    async def acquire(self, tokens: int, owner: str = "") -> int:
        """A lease id (0: the owner is dead, nothing held)."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self._owners.setdefault(owner.partition("/")[0], set()).add(owner)
        stack = AsyncExitStack()
        permit = await stack.enter_async_context(self.limiter.admit(tokens))
        if owner in self._dead:  # a call of a killed attempt that waited in the queue: let the slot go at once
            await stack.aclose()
            return 0
        self._next += 1
        self._leases[self._next] = _Lease(permit, stack, owner, time.monotonic())
        return self._next

    async def release(self, lease_id: int, tokens: int | None = None, throttled: bool = False,
                      retry_after: float | None = None) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            return
        if tokens is not None:
            self.limiter.settle(lease.permit, tokens)
        if throttled:
            self.limiter.throttled(lease.permit, retry_after)
        await lease.stack.aclose()

    def succeeded(self) -> None:
        self.limiter.succeeded()

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def start(self, shard: str, owner: str) -> int:
        """Attempt `owner` of `shard` begins: earlier attempts are dead. Drop the leases they still hold (their
        admissions stay in the window) and any they are still queued for; returns how many were dropped."""
        stale = [k for k, lease in self._leases.items()
                 if lease.owner.partition("/")[0] == shard and lease.owner != owner]
        self._dead.update(self._leases[k].owner for k in stale)
        self._dead.update(o for o in self._owners.get(shard, ()) if o != owner)
        self._owners[shard] = {owner}
        for k in stale:
            await self._leases.pop(k).stack.aclose()
        return len(stale)

    async def _sweep(self) -> None:
        """Expire leases older than `lease_s` (a worker that died with no retry to call `start`)."""
        while True:
            await asyncio.sleep(min(1.0, self.lease_s / 4))
            now = time.monotonic()
            for k in [k for k, lease in self._leases.items() if now - lease.t > self.lease_s]:
                await self._leases.pop(k).stack.aclose()

    def state(self) -> dict:
        return {"leases": len(self._leases), "factor": self.limiter.factor}


@dataclass(eq=False)
class _RemotePermit:
    lease: int
    tokens: int | None = None
    throttled: bool = False
    retry_after: float | None = None


class RemoteLimiter:
    """What a `Client` sees of a `Budget` actor: a `RateLimiter` (llm.transport.protocols), one actor call to
    admit and one to release (carrying the settled tokens and any 429)."""

    def __init__(self, budget, owner: str, *, concurrency: int, tpm: int | None):
        self._budget, self._owner = budget, owner
        self.concurrency, self.tpm = concurrency, tpm

    @asynccontextmanager
    async def admit(self, tokens: int):
        check_request(tokens, self.tpm)
        permit = _RemotePermit(await self._budget.acquire.remote(tokens, self._owner))
        try:
            yield permit
        finally:
            self._budget.release.remote(permit.lease, permit.tokens, permit.throttled, permit.retry_after)

    def settle(self, permit: _RemotePermit, tokens: int) -> None:
        permit.tokens = tokens

    def throttled(self, permit: _RemotePermit, retry_after: float | None) -> None:
        permit.throttled, permit.retry_after = True, retry_after

    def succeeded(self) -> None:
        self._budget.succeeded.remote()

    def pause(self, seconds: float) -> None:
        self._budget.pause.remote(seconds)
