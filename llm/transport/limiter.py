"""Admission control for one endpoint.

Requests and tokens each pass a leaky bucket (GCRA): admitting a request pours its units (1 request, or the
tokens it reserves) into the bucket, which drains at a steady `rate` units a second, first in first out. A request
of `c` units is admitted once the bucket holds at most `max(size - c, 0)`: a request that fits in `size` waits
until it fits beside what is left, a larger one (more tokens than the bucket holds) until it is empty. A counter
caps requests in flight.

For a limit `limit` per `period`, the `window` is `period` plus a small `margin`, the jitter tolerated between
our clock and the server's arrival times (1% of the period unless given). The bucket holds `B = limit * (burst -
margin) / period` (none when the margin is longer): `burst` is how many seconds' worth of the limit the server
lets go at once (default period / 60, one second of a minute), less the margin so that requests arriving late
cannot pile up past it. It drains `rate = (limit - B) / window`: the burst comes out of the period's budget, and
the steady rate is 98.3% of the limit by default (the old sliding-window log's 99%, `limit / window`, less B).

The guarantee. Let A(s, t] be the units of the requests admitted in (s, t], each counted with its current tokens
(see `settle`). What is left in the bucket at `t` of the units poured in after `s` is at least

    (I)  A(s, t] - rate * (t - s):

those units leave the bucket by draining, at most `rate` a second (the factor below only slows it), or by a cut of
`settle`, which takes off A(s, t] at least as much (or comes out of a share poured for a permit admitted before s,
which A(s, t] never counted). Now take any half-open interval of length L and the first and the last request
admitted in it, at `a0` and `a` (so a - a0 < L), the last with `c` units. The admission rule leaves at most
`max(B, c)` in the bucket after it (plus rounding, `_SLACK`), so by (I) with s just before a0

    units admitted in the interval <= max(B, c) + rate * (a - a0) < max(B, c) + (limit - B) * L / window
                                   <= limit * L / period + max(B, c).

For requests c = 1: any L seconds (in particular any L in [1 s, 60 s] of a minute) hold fewer than
limit * L / period + max(B, 1) requests, and B is at most `burst` seconds' worth. 90 RPM with the default burst
(B = 0.6) sends fewer than 1.5 + 1.5 in any second (two: at 0 s and 0.68 s), where the log sent the whole minute's
90 at once. For tokens c is a request's reservation: fewer than limit * L / period + B tokens, or the largest
request's in place of B if it reserves more. With L = window the bound reads `limit + max(0, c - B)`: a window
holds no more than `limit` requests (A < limit + 1), as with the log, nor more than `limit` tokens unless a
request reserves more than B tokens (by its excess). And a server that lets `burst` seconds' worth go at once,
refilled at `limit / period` a second, accepts everything we send when arrivals lag our admissions by delays at
most `margin` apart and no request is larger than B (for requests: B >= 1, 150 RPM or more by default): any x
seconds of its arrivals were admitted within x + margin, so hold at most B + rate * (x + margin) <=
limit * (burst + x) / period, which is what its bucket admits.

`settle` replaces a permit's reservation by the tokens the server reported: a lower count is cut out of what is
left of the permit in the bucket (what has drained is gone); a higher one is poured in as a new share at once. As
with any limiter that admits before the answer, the guarantee about real usage needs reservations not below it.

Adaptive part: a 429 pauses every admission for its `Retry-After` (as do exhausted `x-ratelimit-remaining-*`
headers until their reset), and that is all a lone 429 costs. The rate factor is cut in half only when 429s keep
coming: when the answers of the last `window` hold at least `strikes` 429s and more 429s than successes (once per
round trip: only 429s to requests admitted after the last cut count, and a cut starts the count afresh); each
success adds 1/rpm back. So random 429s (20% with `Retry-After: 1` at 60 rpm: 12 pauses of 1 s a minute) keep
the factor at 1, while a server that rejects most requests is backed off multiplicatively. The factor scales the
buckets' sizes and rates and the concurrency cap (the buckets drain at the old rate up to the change); it only
lowers them and pauses only delay admissions, so neither can weaken the guarantee. Waiters re-check when a slot
is released at the concurrency cap, `settle` lowers a reservation or the factor rises, so a correction from `usage` admits them at once
instead of at the end of their estimate.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

_SLACK = 1e-9  # units a bucket may be over when a request is admitted (rounding of the drained amounts)


class LimitError(ValueError):
    """A limit out of range, or a request that no window can hold. `limit` names the setting ("rpm", "tpm",
    "concurrency", "burst"); `worded(name)` is the message with another name for it (a command line's flag, see
    `llm.transport.session.flag_words`)."""

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


@dataclass(eq=False)
class _Share:
    """The units one admission still holds in a bucket."""

    units: float


class _Bucket:
    """A leaky bucket of `size` units drained at `rate` units a second (both times the limiter's factor), first in
    first out (see the module docstring)."""

    def __init__(self, size: float, rate: float):
        self.size, self.rate = size, rate
        self.level = 0.0
        self._t = -math.inf
        self._shares: deque[_Share] = deque()

    def drain(self, now: float, factor: float) -> None:
        flow = self.rate * factor * (now - self._t)
        self._t = now
        shares = self._shares
        while shares and flow > 0:
            share = shares[0]
            taken = min(share.units, flow)
            share.units -= taken
            self.level -= taken
            flow -= taken
            if share.units <= 0:
                shares.popleft()
        if not shares:
            self.level = 0.0

    def wait(self, units: int, factor: float) -> float:
        """Seconds until `units` fit (after `drain`): until the level is down to `max(size - units, 0)`."""
        over = self.level - max(self.size * factor - units, 0.0)
        return over / (self.rate * factor) if over > _SLACK else 0.0

    def pour(self, units: float) -> _Share:
        share = _Share(units)
        self._shares.append(share)
        self.level += units
        return share

    def cut(self, share: _Share, units: float) -> bool:
        """Take up to `units` out of what `share` still holds; True when anything came out."""
        taken = min(units, share.units)
        share.units -= taken
        self.level -= taken
        return taken > 0


@dataclass(eq=False)
class Permit:
    """One admitted request: its admission time, the tokens it reserved (or settled), and what of them is still
    in the token bucket."""

    t: float
    tokens: int
    share: _Share | None = None


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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        for name, value in (("rpm", rpm), ("tpm", tpm), ("concurrency", concurrency)):
            if value is not None and value < 1:
                raise LimitError(name, "{name} must be at least 1, got {value}", {"value": value})
        burst = period / 60 if burst is None else burst
        if not 0 <= burst < period:
            raise LimitError("burst", "{name} must be at least 0 and below the period of {period:g} s, got {value}",
                             {"value": burst, "period": period})
        self.rpm, self.tpm, self.concurrency, self.burst = rpm, tpm, concurrency, burst
        self.window = period + (0.01 * period if margin is None else margin)
        self.factor = 1.0
        held = max(0.0, burst - (self.window - period)) / period  # B / limit: the burst less the margin
        self._requests, self._tokens = (
            None if limit is None else _Bucket(limit * held, limit * (1 - held) / self.window) for limit in (rpm, tpm))
        self._min_factor = min_factor
        self._recovery = 1.0 / (rpm or 50)
        self._clock, self._sleep = clock, sleep
        self._in_flight = 0
        self._paused_until = -math.inf
        self._last_cut = -math.inf
        self._strikes = strikes
        self._answers: deque[tuple[float, bool]] = deque()  # (time, was a 429) of answers since the last cut
        self._throttled = 0  # 429s among them
        self._lock = asyncio.Lock()
        self._queued = 0  # tasks in the slow path of _acquire (holding or waiting for the lock)
        self._changed = asyncio.Event()  # set when a waiter may be admitted sooner than it computed

    def admit(self, tokens: int) -> _Admission:
        """`async with limiter.admit(tokens) as permit:` waits until a request reserving `tokens` may be sent
        and holds a concurrency slot meanwhile."""
        return _Admission(self, tokens)

    def _release(self) -> None:
        self._in_flight -= 1
        if self._in_flight >= self._slots() - 1:  # it was full: a waiter may take the slot (else none waits for one)
            self._changed.set()

    def _slots(self) -> int:
        """Requests that may be in flight now."""
        return max(1, math.floor(self.concurrency * self.factor))

    def settle(self, permit: Permit, tokens: int) -> None:
        """Replace a permit's reservation by the tokens the server reported (a lower one wakes the waiters)."""
        bucket = self._tokens
        if bucket is not None:
            self._drain(self._clock())
            if tokens < permit.tokens:
                if bucket.cut(permit.share, permit.tokens - tokens):
                    self._changed.set()
            elif tokens > permit.tokens:
                permit.share = bucket.pour(tokens - permit.tokens)
        permit.tokens = tokens

    def succeeded(self) -> None:
        self._answer(False)
        if self.factor < 1.0:
            self._set_factor(min(1.0, self.factor + self._recovery))
            self._changed.set()

    def throttled(self, permit: Permit, retry_after: float | None) -> None:
        """A 429: honour Retry-After; cut the rate when 429s keep coming (see the module docstring)."""
        if retry_after is not None:
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
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    async def _acquire(self, tokens: int) -> Permit:
        if not self._queued:  # nobody waiting: admit at once when everything allows it, without the lock
            now = self._clock()
            if self._delay(now, tokens) <= 0 and self._in_flight < self._slots():
                return self._grant(now, tokens)
        self._queued += 1
        try:
            async with self._lock:  # FIFO: waiters are admitted in arrival order
                while True:
                    now = self._clock()
                    delay = self._delay(now, tokens)
                    if delay <= 0 and self._in_flight < self._slots():
                        return self._grant(now, tokens)
                    self._changed.clear()
                    await self._wait(delay if delay > 0 else None)
        finally:
            self._queued -= 1

    async def _wait(self, delay: float | None) -> None:
        """Until `delay` seconds have passed (None: no time limit) or `_changed` is set, whichever is first."""
        waiters = [asyncio.ensure_future(self._changed.wait())]
        if delay is not None:
            waiters.append(asyncio.ensure_future(self._sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _drain(self, now: float) -> None:
        for bucket in (self._requests, self._tokens):
            if bucket is not None:
                bucket.drain(now, self.factor)

    def _grant(self, now: float, tokens: int) -> Permit:
        permit = Permit(now, tokens)
        if self._requests is not None:
            self._requests.pour(1)
        if self._tokens is not None:
            permit.share = self._tokens.pour(tokens)
        self._in_flight += 1
        return permit

    def _delay(self, now: float, tokens: int) -> float:
        """Seconds until a request reserving `tokens` fits every limit (0 when it fits now)."""
        self._drain(now)
        delay = self._paused_until - now
        for bucket, units in ((self._requests, 1), (self._tokens, tokens)):
            if bucket is not None:
                delay = max(delay, bucket.wait(units, self.factor))
        return delay


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
