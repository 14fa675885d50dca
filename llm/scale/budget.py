"""The global budget of a Ray run: one `Budget` actor per endpoint, leasing blocks of permits to every shard's client
through `RemoteLimiter`, so the *sum* over shards stays under the endpoint's RPM/TPM/concurrency.

Leases. A shard does not go to the actor for each request (that took two actor round trips a request, about 600
requests a second through one actor). It takes a lease: a block of requests and tokens that the actor's `Limiter`
admits as one admission (`Limiter.reserve`), and concurrency slots; it spends them locally. A block is sized from
the endpoint's rate: `hold` seconds' worth (default 0.1 s of a minute's limits) and never more than the bucket, so a
shard calls the actor about once a `hold` whatever its request rate. A shard may send a block's requests only until
`hold` seconds after the block reached it; what it has not used then it gives back at its next call or on exit, and
the actor cuts it out of what can be left of the block's share (`Limiter.give_back`).

Why the global limits still hold exactly. Every request a shard sends belongs to a block that the actor's limiter
admitted before, and it is sent within `hold` seconds of the block's arrival at the shard: the sends of all shards
are admissions of that one limiter delayed by the reply's transit plus 0 to `hold` seconds. The limiter's guarantee
(llm.transport.limiter) already covers admissions whose arrivals lag them by delays at most `margin` apart (the
per-request leases relied on it for the same transit); the actor's limiter counts `hold` into its margin, so the
same bounds hold for the sum of the shards' sends (any L seconds: fewer than limit * L / period + the burst; any
window: no more than the limit) with transit and network jitter tolerated as before. A block is one admission of c =
its units, and c is at most the bucket's size B, so the burst term max(B, c) is unchanged; giving back is a
`give_back` cut, which the proof allows; usage above a reservation is poured at the shard's next call, as `settle`
pours it at once in one process. Slots: the actor grants only free slots (the concurrency times the adaptive factor
in all), a shard sends at most as many requests at once as it holds, and holds them until it hands them back in a
call (it keeps those still in flight), so the requests in flight over all shards never exceed the cap. The cap is
shared fairly: a shard holding more than an equal share of it while another shard waits for slots sheds its surplus
as its requests finish.

Leases of a killed attempt are dropped when its retry starts (`start`), and any owner not heard from for `lease_s`
(`timeout + 30 s` in a run) loses its slots. The actor's levels are kept in its `ledger` file, if given, so a
restarted run starts where the killed one left (see llm.transport.limiter).
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

from llm.transport.cache import Cache
from llm.transport.limiter import Limiter, Permit, check_request


class Superseded(Exception):
    """A lease asked for by a shard attempt whose retry has started."""


@dataclass
class _Owner:
    """What the actor knows of one shard attempt."""

    slots: int = 0  # held
    wants: int = 0  # slots it asked to hold at its last call
    block: Permit | None = None  # its last block
    seen: float = field(default_factory=time.monotonic)


class Budget:
    """One endpoint's `Limiter`, shared by all shards (run it as an async Ray actor: `ray.remote(Budget)`).

    `take` admits a block through the limiter (FIFO over all shards), so admission order, buckets and the adaptive
    429 factor are the single-process limiter's; slots are counted here."""

    def __init__(self, lease_s: float = 90.0, hold: float | None = None, ledger: tuple[str, str] | None = None,
                 **limits):
        period = limits.get("period", 60.0)
        self.hold = period / 600 if hold is None else hold
        margin = limits.pop("margin", None)
        margin = (0.005 * period if margin is None else margin) + self.hold
        if ledger is not None:  # (file, name): the levels kept in that SQLite file under that name
            limits["ledger"] = Cache(ledger[0]).ledger(ledger[1])
        self.limiter = Limiter(margin=margin, tick=0.0, **limits)  # blocks group the admissions already
        self.lease_s = lease_s
        self._owners: dict[str, _Owner] = {}
        self._dead: set[str] = set()  # owners (shard attempts) known to be gone
        self._sweeper: asyncio.Task | None = None

    async def take(self, owner: str, tokens: int, wants: int, in_flight: int, returned: tuple[int, int] = (0, 0),
                   over: int = 0, successes: int = 0) -> dict:
        """A lease for `owner`: `returned` (requests, tokens) of its last block unused, `over` tokens used above its
        reservations, `successes` answers since its last call; it holds `in_flight` slots in use and would like to
        hold `wants`. Returns {"slots": to hold now, "share": the most it may keep, "requests", "tokens": the new
        block (0 when it has no slot to use one), "t": the block's admission time, "pause": seconds to pause}."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        lease = {"slots": 0, "share": 0, "requests": 0, "tokens": 0, "t": 0.0, "hold": self.hold, "pause": 0.0}
        self._alive(owner)
        me = self._owners.setdefault(owner, _Owner())
        me.seen, me.wants = time.monotonic(), wants
        self._settle(me, returned, over, successes)
        share = self._share()
        free = self.limiter.slots() - sum(o.slots for o in self._owners.values())
        me.slots = max(in_flight, min(wants, share, me.slots + max(0, free)))
        lease |= {"slots": me.slots, "share": share}
        if me.slots > in_flight:  # a slot to use a block with
            requests, tokens = self._block(tokens)
            me.block = block = await self.limiter.reserve(0 if requests == math.inf else requests, tokens)
            if owner in self._dead:  # its attempt was declared dead while it waited: the block is given back
                self.limiter.give_back(block, block.requests, tokens)
                self._alive(owner)
            lease |= {"requests": requests, "tokens": tokens if self.limiter.tpm else math.inf, "t": block.t}
        return lease | {"pause": self.limiter.paused_for()}

    def _alive(self, owner: str) -> None:
        """Superseded when `owner`'s shard has started a retry (it was thought dead: it gets nothing more)."""
        if owner in self._dead:
            raise Superseded(f"shard attempt {owner} was superseded by a retry")

    def _settle(self, me: _Owner, returned: tuple[int, int], over: int, successes: int) -> None:
        if me.block is not None:
            self.limiter.give_back(me.block, *(units if math.isfinite(units) else 0 for units in returned))
            if over > 0:
                self.limiter.settle(me.block, me.block.tokens + over)
        for _ in range(successes):
            self.limiter.succeeded()

    def _share(self) -> int:
        """An equal share of the slots among the owners that hold or want some (at least one each)."""
        active = sum(1 for o in self._owners.values() if o.slots or o.wants)
        return max(1, self.limiter.slots() // max(1, active))

    def _block(self, tokens: int) -> tuple[float, int]:
        """A block's requests (inf: no request limit) and tokens (0: no token limit): `hold` seconds' worth, at most
        the bucket, at least one request and the tokens of the request at hand."""
        factor, (requests_bucket, tokens_bucket) = self.limiter.factor, self.limiter.buckets

        def worth(bucket, least: int) -> int:
            return max(least, math.floor(factor * min(bucket.size, bucket.rate * self.hold)))

        requests = math.inf if requests_bucket is None else worth(requests_bucket, 1)
        if tokens_bucket is None:
            return requests, 0
        budget = worth(tokens_bucket, tokens)
        return min(requests, max(1, budget // max(1, tokens))), budget

    def leave(self, owner: str, returned: tuple[int, int] = (0, 0), over: int = 0, successes: int = 0) -> None:
        """`owner` is done: what it did not use of its block comes back, its slots are free."""
        me = self._owners.pop(owner, None)
        if me is not None:
            self._settle(me, returned, over, successes)

    def throttled(self, t: float, retry_after: float | None) -> None:
        """A 429 to a request of the block admitted at `t`."""
        self.limiter.throttled(Permit(t, 0), retry_after)

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def start(self, shard: str, owner: str) -> int:
        """Attempt `owner` of `shard` begins: earlier attempts are dead. Drop the slots they still hold (their
        blocks stay admitted) and any lease they are still queued for; returns how many slots were dropped."""
        stale = [o for o in self._owners if o.partition("/")[0] == shard and o != owner]
        self._dead.update(stale)
        return sum(self._owners.pop(o).slots for o in stale)

    async def _sweep(self) -> None:
        """Forget owners not heard from for `lease_s` (a worker that died with no retry to call `start`)."""
        while True:
            await asyncio.sleep(min(1.0, self.lease_s / 4))
            now = time.monotonic()
            for o in [o for o, me in self._owners.items() if now - me.seen > self.lease_s]:
                del self._owners[o]

    def state(self) -> dict:
        return {"slots": sum(o.slots for o in self._owners.values()), "owners": len(self._owners),
                "factor": self.limiter.factor}


@dataclass(eq=False, slots=True)
class _LocalPermit:
    tokens: int
    t: float  # its block's admission time at the actor
    block: int  # which of the shard's blocks it came from


class RemoteLimiter:
    """What a `Client` sees of a `Budget` actor: a `RateLimiter` (llm.transport.protocols) spending leases locally,
    one actor call a block (see the module docstring)."""

    def __init__(self, budget, owner: str, *, concurrency: int, tpm: int | None):
        self._budget, self._owner = budget, owner
        self.concurrency, self.tpm = concurrency, tpm
        self._requests = self._tokens = 0  # left of the block
        self._block = 0  # the block's number (permits of older blocks give nothing back to it)
        self._t = 0.0  # its admission time at the actor
        self._expires = -math.inf
        self._over = self._successes = 0
        self._slots = 0  # held
        self._share = concurrency
        self._in_flight = 0
        self._paused_until = -math.inf
        self._queued = 0
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    def admit(self, tokens: int) -> _RemoteAdmission:
        return _RemoteAdmission(self, tokens)

    def _fits(self, tokens: int) -> bool:
        now = time.monotonic()
        return (self._in_flight < min(self._slots, self.concurrency) and self._requests >= 1
                and self._tokens >= tokens and now < self._expires and now >= self._paused_until)

    async def _acquire(self, tokens: int) -> _LocalPermit:
        check_request(tokens, self.tpm)
        if self._queued or not self._fits(tokens):
            self._queued += 1
            try:
                async with self._lock:  # FIFO; the lock holder alone calls the actor
                    while not self._fits(tokens):
                        await self._wait(tokens)
            finally:
                self._queued -= 1
        self._requests -= 1
        self._tokens -= tokens
        self._in_flight += 1
        return _LocalPermit(tokens, self._t, self._block)

    async def _wait(self, tokens: int) -> None:
        """Wait for what is missing: the pause, a slot in use to come back, or a new lease."""
        now = time.monotonic()
        if now < self._paused_until:
            await asyncio.sleep(self._paused_until - now)
        elif self._in_flight >= min(self._slots, self.concurrency) and self._slots >= self._share:
            self._changed.clear()  # our share is in use: wait for one of ours
            await self._changed.wait()
        else:
            await self._take(tokens)

    async def _take(self, tokens: int) -> None:
        wants = min(self.concurrency, self._in_flight + self._queued)
        lease = await self._budget.take.remote(self._owner, tokens, wants, self._in_flight, self._unused(), self._over,
                                               self._successes)
        self._over = self._successes = 0
        self._slots, self._share = lease["slots"], lease["share"]
        self._requests, self._tokens, self._t = lease["requests"], lease["tokens"], lease["t"]
        self._block += 1
        self._expires = time.monotonic() + lease["hold"]
        self._paused_until = max(self._paused_until, time.monotonic() + lease["pause"])
        if not lease["requests"] and self._slots <= self._in_flight:  # no slot free anywhere: ask again in a while
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.05)
            except asyncio.TimeoutError:
                pass

    def _unused(self) -> tuple[int, int]:
        return self._requests, self._tokens

    def _release(self) -> None:
        self._in_flight -= 1
        if self._slots > self._share:  # shed a slot over our share as it comes back (handed back at the next call)
            self._slots -= 1
        self._changed.set()

    def settle(self, permit: _LocalPermit, tokens: int) -> None:
        if tokens > permit.tokens:
            self._over += tokens - permit.tokens
        elif permit.block == self._block:  # unused tokens of the running block may still go out under it
            self._tokens += permit.tokens - tokens
        permit.tokens = tokens

    def throttled(self, permit: _LocalPermit, retry_after: float | None) -> None:
        if retry_after is not None:
            self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
        self._budget.throttled.remote(permit.t, retry_after)

    def succeeded(self) -> None:
        self._successes += 1

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        self._budget.pause.remote(seconds)

    def leave(self) -> None:
        """Hand back what is left (call once the shard is done, outside its event loop)."""
        import ray

        ray.get(self._budget.leave.remote(self._owner, self._unused(), self._over, self._successes))


class _RemoteAdmission:
    __slots__ = ("_limiter", "_tokens")

    def __init__(self, limiter: RemoteLimiter, tokens: int):
        self._limiter, self._tokens = limiter, tokens

    async def __aenter__(self) -> _LocalPermit:
        return await self._limiter._acquire(self._tokens)

    async def __aexit__(self, *exc) -> None:
        self._limiter._release()
