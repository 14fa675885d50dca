"""Admission control for one endpoint.

Requests and tokens each pass a leaky bucket (GCRA): admitting a request pours its units (1 request, or the tokens
it reserves) into the bucket, which drains at a steady `rate` units a second. A request of `c` units is admitted
once the bucket holds at most `max(size - c, 0)`: a request that fits in `size` waits until it fits beside what is
left, a larger one (more tokens than the bucket holds) until the bucket is empty. A counter caps requests in flight.
The state is two numbers a bucket (its level, and when it was last drained), so an admission costs the same whatever
the rate.

Sizes. For a limit `limit` per `period`, the `window` is `period` plus a small `margin`, the jitter tolerated
between an admission and its arrival at the server (0.5% of the period unless given: 0.3 s of a minute). `burst` is
how many seconds' worth of the limit the server lets go at once (default period / 60: one second of a minute). The
bucket holds

    B = limit * (burst * window - margin * period) / period**2     (0 when that is negative)

and drains `rate = (limit - B) / window`: the burst comes out of the window's budget (B + rate * window = limit),
and the steady rate is 98.3% of the limit by default. The default B is 0.7 s worth (90 RPM: 1.06 requests).

The guarantee. Let A(s, t] be the units of the requests admitted in (s, t], each counted with its current tokens
(see `settle`). What is left in the bucket at `t` of the units poured after `s` is at least

    (I)  A(s, t] - rate * (t - s):

those units leave the bucket by draining, at most `rate` a second (the factor below only slows it), or by a cut of
`settle` or `give_back`, which takes off A(s, t] at least as much (a cut never takes more than what can be left of
its own share: everything in the bucket less all poured after that share, `Bucket.cut`). Take any half-open
interval of length L and the first and the last request admitted in it, at `a0` and `a` (so a - a0 < L), the last
with `c` units. The admission rule leaves at most `max(B, c)` in the bucket after it, so by (I) with s just before
a0

    units admitted in the interval <= max(B, c) + rate * (a - a0) < max(B, c) + (limit - B) * L / window
                                   <= limit * L / period + max(B, c).

Requests (c = 1): any L seconds, in particular any L in [1 s, 60 s] of a minute, hold fewer than limit * L / period
+ max(B, 1) requests, and B is less than `burst` seconds' worth: no more than the rate of L seconds plus the burst
(or one request, where a burst is worth less). 90 RPM sends 2 requests in its first second (at 0 s and 0.64 s),
where a sliding-window log sent the whole minute's 90 at once. Tokens: the same with c a request's reservation (the
largest request's in place of B if it reserves more than B). With L = window the bound reads `limit + max(0, c -
B)`: a window holds no more than `limit` requests (A < limit + 1), nor more than `limit` tokens unless one request
reserves more than B. And a server that lets `burst` seconds' worth go at once, refilled at limit / period a second,
accepts all we send when arrivals lag admissions by delays at most `margin` apart and no request is larger than B:
any x seconds of arrivals were admitted within x + margin, so hold at most B + rate * (x + margin) <= limit * (burst
+ x) / period, which is what its bucket admits (B was chosen so).

`settle` replaces a permit's reservation by the tokens the server reported: a lower count is cut out of what can be
left of the permit's share; a higher one is poured in at once. As with any limiter that admits before the answer,
the guarantee about real usage needs reservations not below it. `reserve`/`give_back` admit a block of several
requests at once and return what was not used (llm.scale.budget's leases), with the same proof (c = the block's
units).

Restarts: with a `ledger` (llm.transport.levels), a rerun after a kill starts from the levels the killed run left.

Adaptive part: a lone 429 costs only its own retry, which the client sends no sooner than its `Retry-After`. When
`strikes` 429s come in a row (no success between), every admission pauses for the Retry-After (as exhausted
`x-ratelimit-remaining-*` headers pause it until their reset): the server's limit is reached, not a request unlucky.
429s to requests admitted before the running pause began were answered by it: their Retry-After counts from its
start, so the answers to requests sent before the server's first 429 pause once, not once after another. The rate
factor is cut in half only when 429s keep coming: when the answers of the last `window` hold at least `strikes` 429s
and more 429s than successes (once per round trip: only 429s to requests admitted after the last cut count, and a
cut starts the count afresh); each success adds 1/rpm back. So random 429s (20% with `Retry-After: 1`) neither pause
the run nor lower the factor (a pause that every random 429 imposed would cost a smooth limiter what it could not
send meanwhile: all but a burst's worth, 40% of the rate in benchmarks/bench_engine.py's case 429), while a server
that rejects most requests is paused and backed off multiplicatively. The factor scales the buckets' sizes and rates
and the concurrency cap (a bucket drains at the old rate up to the change); it only lowers them and pauses only
delay admissions, so neither can weaken the guarantee.

Waiting requests are admitted first come first served by one timer (`_dispatch`, no task each), which fires at most
every `tick` seconds (0.1 s) as long as no bucket would run empty meanwhile, and then admits every waiter that fits:
the same rate in groups, with far fewer wake-ups of the process (what a smooth limiter cost in CPU was the
wake-ups). Admitting later never weakens the guarantee. Waiters are looked at again when a slot is released at the
cap, a cut lowers a level or the factor rises, so a correction from `usage` admits them at once instead of at the end
of their estimate.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .bucket import Bucket
from .levels import Claims, Ledger


class LimitError(ValueError):
    """A limit out of range, or a request that no window can hold. `limit` names the setting ("rpm", "tpm",
    "concurrency", "burst"); `worded(name)` is the message with another name for it (a command line's flag, see
    `llm.transport.factory.flag_words`)."""

    def __init__(self, limit: str, template: str, values: dict):
        super().__init__(limit, template, values)  # all in args: the error pickles (it crosses Ray tasks)
        self.limit = limit

    def worded(self, name: str) -> str:
        _, template, values = self.args
        return template.format(name=name, **values)

    def __str__(self) -> str:
        return self.worded(self.limit)


def check_request(tokens: int, tpm: int | None) -> None:
    """LimitError when one request reserves more tokens than a whole window allows (it could never be admitted)."""
    if tpm is not None and tokens > tpm:
        raise LimitError("tpm", "one request may use {tokens} tokens but {name} is {tpm}",
                         {"tokens": tokens, "tpm": tpm})


@dataclass(eq=False, slots=True)
class Permit:
    """One admission: its time, the tokens it holds (reserved, or settled) and its shares' marks in the buckets."""

    t: float
    tokens: int
    requests: int = 1
    token_mark: int = 0
    request_mark: int = 0


def _call_later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback)


class Limiter:
    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int = 16,
        period: float = 60.0,
        margin: float | None = None,
        burst: float | None = None,
        min_factor: float = 0.05,
        strikes: int = 3,
        ledger: Ledger | None = None,
        tick: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        timer: Callable[[float, Callable[[], None]], asyncio.TimerHandle] = _call_later,
    ):
        for name, value in (("rpm", rpm), ("tpm", tpm), ("concurrency", concurrency)):
            if value is not None and value < 1:
                raise LimitError(name, "{name} must be at least 1, got {value}", {"value": value})
        burst = period / 60 if burst is None else burst
        if not 0 <= burst < period:
            raise LimitError("burst", "{name} must be at least 0 and below the period of {period:g} s, got {value:g}",
                             {"value": burst, "period": period})
        self.rpm, self.tpm, self.concurrency, self.burst, self.tick = rpm, tpm, concurrency, burst, tick
        self.margin = 0.005 * period if margin is None else margin
        self.window = period + self.margin
        self.factor = 1.0
        held = max(0.0, burst * self.window - self.margin * period) / period**2  # B / limit
        self._requests, self._tokens = (
            None if limit is None else Bucket(limit * held, limit * (1 - held) / self.window) for limit in (rpm, tpm))
        self._min_factor = min_factor
        self._recovery = 1.0 / (rpm or 50)
        self._clock, self._timer = clock, timer
        self._in_flight = 0
        self._paused_until = -math.inf
        self._pause_began = -math.inf
        self._last_cut = -math.inf
        self._strikes = strikes
        self._streak = 0  # 429s answered since the last success
        self._answers: deque[tuple[float, bool]] = deque()  # (time, was a 429) of answers since the last cut
        self._throttled = 0  # 429s among them
        self._queue: deque[tuple[int, int, bool, asyncio.Future]] = deque()  # waiters, first come first served
        self._alarm: asyncio.TimerHandle | None = None  # when the first waiter fits ...
        self._alarm_at = -math.inf  # ... on the clock
        self._claims = None if ledger is None else Claims(ledger, (self._requests, self._tokens), clock())

    @property
    def buckets(self) -> tuple[Bucket | None, Bucket | None]:
        """The request and the token bucket (None where there is no limit)."""
        return self._requests, self._tokens

    def admit(self, tokens: int) -> _Admission:
        """`async with limiter.admit(tokens) as permit:` waits until a request reserving `tokens` may be sent and
        holds a concurrency slot meanwhile."""
        return _Admission(self, tokens)

    async def reserve(self, requests: int, tokens: int) -> Permit:
        """Admit a block of `requests` requests reserving `tokens` in all, as one admission, without a concurrency
        slot (the caller counts its own); `give_back` returns what it did not use."""
        return await self._acquire(tokens, requests, slot=False)

    def give_back(self, permit: Permit, requests: int, tokens: int) -> None:
        """Return unused units of a `reserve`d block: cut out of what can be left of its shares."""
        cut = False
        for bucket, units, mark in ((self._requests, requests, permit.request_mark),
                                    (self._tokens, tokens, permit.token_mark)):
            if bucket is not None and units > 0:
                bucket.drain(self._clock(), self.factor)
                cut = bucket.cut(units, mark) or cut
        if cut:
            self._dispatch()

    def _release(self) -> None:
        self._in_flight -= 1
        if self._queue and self._in_flight >= self.slots() - 1:  # it was full: the first waiter may take the slot
            self._dispatch()

    def slots(self) -> int:
        """Requests that may be in flight now (the concurrency times the factor, at least one)."""
        return max(1, math.floor(self.concurrency * self.factor))

    def settle(self, permit: Permit, tokens: int) -> None:
        """Replace a permit's reservation by the tokens the server reported (a lower one wakes the waiters)."""
        bucket = self._tokens
        if bucket is not None and tokens != permit.tokens:
            bucket.drain(self._clock(), self.factor)
            if tokens < permit.tokens:
                if bucket.cut(permit.tokens - tokens, permit.token_mark):
                    self._dispatch()
            else:
                if self._claims is not None:
                    self._claims.spend(0, tokens - permit.tokens)
                bucket.pour(tokens - permit.tokens)
        permit.tokens = tokens

    def succeeded(self) -> None:
        self._streak = 0
        self._answer(False)
        if self.factor < 1.0:
            self._set_factor(min(1.0, self.factor + self._recovery))
            self._dispatch()

    def throttled(self, permit: Permit, retry_after: float | None) -> None:
        """A 429: when 429s come in a row, pause for Retry-After; cut the rate when they keep coming (see the module
        docstring)."""
        self._streak += 1
        if retry_after is not None and self._streak >= self._strikes:
            if permit.t <= self._pause_began:  # sent before the running pause began: that pause answers for it
                self._paused_until = max(self._paused_until, self._pause_began + max(0.0, retry_after))
            else:
                self.pause(retry_after)
        if permit.t <= self._last_cut:  # sent before the last cut: that cut already answered for it
            return
        self._answer(True)
        if self._throttled >= self._strikes and 2 * self._throttled > len(self._answers):
            self._last_cut = self._clock()
            self._answers.clear()
            self._throttled = 0
            self._set_factor(max(self._min_factor, self.factor / 2))

    def _set_factor(self, factor: float) -> None:
        self._drain(self._clock())  # what drained so far drained at the old rate
        self.factor = factor

    def _answer(self, throttled: bool) -> None:
        """Log one answer; forget those older than a window."""
        now, answers = self._clock(), self._answers
        answers.append((now, throttled))
        self._throttled += throttled
        while answers[0][0] + self.window <= now:
            self._throttled -= answers.popleft()[1]

    def pause(self, seconds: float) -> None:
        now = self._clock()
        if now >= self._paused_until:
            self._pause_began = now
        self._paused_until = max(self._paused_until, now + max(0.0, seconds))

    def paused_for(self) -> float:
        """Seconds left of the running pause (0 when none)."""
        return max(0.0, self._paused_until - self._clock())

    async def _acquire(self, tokens: int, requests: int = 1, slot: bool = True) -> Permit:
        if not self._queue:  # nobody waiting: admit at once when everything allows it
            now = self._clock()
            if self._delay(now, requests, tokens) <= 0 and (not slot or self._in_flight < self.slots()):
                return self._grant(now, requests, tokens, slot)
        future = asyncio.get_running_loop().create_future()
        self._queue.append((requests, tokens, slot, future))
        if len(self._queue) == 1:
            self._dispatch()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and slot:  # admitted as it was cancelled: free the slot
                self._release()
            raise

    def _dispatch(self) -> None:
        """Admit the waiters at the head of the queue that fit now, in order (one timer callback admits all that
        fit); then set the alarm for when the first one left fits, unless one is set no later (a waiter held back by
        the concurrency cap is dispatched again when a slot is released)."""
        queue = self._queue
        while queue:
            requests, tokens, slot, future = queue[0]
            if future.done():  # its task was cancelled
                queue.popleft()
                continue
            now = self._clock()
            delay = self._delay(now, requests, tokens)
            if delay > 0:
                at = now + max(delay, min(self.tick, self._slack()))
                if not now < self._alarm_at <= at:  # none pending (or it is this call), or a later one
                    if self._alarm is not None:
                        self._alarm.cancel()
                    self._alarm, self._alarm_at = self._timer(at - now, self._dispatch), at
                return
            if slot and self._in_flight >= self.slots():
                return
            queue.popleft()
            future.set_result(self._grant(now, requests, tokens, slot))

    def _drain(self, now: float) -> None:
        for bucket in (self._requests, self._tokens):
            if bucket is not None:
                bucket.drain(now, self.factor)

    def _grant(self, now: float, requests: int, tokens: int, slot: bool) -> Permit:
        if self._claims is not None:
            self._claims.spend(requests, tokens)
        permit = Permit(now, tokens, requests)
        if self._requests is not None:
            permit.request_mark = self._requests.pour(requests)
        if self._tokens is not None:
            permit.token_mark = self._tokens.pour(tokens)
        self._in_flight += slot
        return permit

    def _delay(self, now: float, requests: int, tokens: int) -> float:
        """Seconds until `requests` requests reserving `tokens` fit every limit (0 when they fit now)."""
        delay = self._paused_until - now
        factor = self.factor
        for bucket, units in ((self._requests, requests), (self._tokens, tokens)):
            if bucket is not None:
                bucket.drain(now, factor)
                wait = bucket.wait(units, factor)
                if wait > delay:
                    delay = wait
        return delay

    def _slack(self) -> float:
        """Seconds the buckets may drain before one of them is empty (admitting later loses nothing until then)."""
        return min((b.level / (b.rate * self.factor) for b in (self._requests, self._tokens) if b is not None),
                   default=0.0)


class _Admission:
    """What `Limiter.admit` returns: an async context manager holding one permit."""

    __slots__ = ("_limiter", "_tokens")

    def __init__(self, limiter: Limiter, tokens: int):
        self._limiter, self._tokens = limiter, tokens

    async def __aenter__(self) -> Permit:
        limiter, tokens = self._limiter, self._tokens
        check_request(tokens, limiter.tpm)
        return await limiter._acquire(tokens)

    async def __aexit__(self, *exc) -> None:
        self._limiter._release()
