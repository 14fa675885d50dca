"""Admission control for one endpoint.

A sliding-window log of admitted requests (time, reserved tokens) enforces requests and tokens per
`period`; a counter caps requests in flight. Proof sketch of the window guarantee: a request is
admitted at time `a` only if fewer than `limit` logged requests lie in (a - window, a], so any
half-open interval of length `window` holds at most `limit` admissions (look at the last one in
it). The same argument bounds tokens, provided the reservation made before a call is not below
what the call really uses (`settle` then only lowers it). The window is `period` plus a small
`margin`, so jitter between our clock and the server's arrival times cannot push a server-side
window over the limit.

Adaptive part: a 429 pauses every admission for its `Retry-After` (as do exhausted
`x-ratelimit-remaining-*` headers until their reset), and that is all a lone 429 costs. The rate
factor is cut in half only when 429s keep coming: when the answers of the last `window` hold at
least `strikes` 429s and more 429s than successes (once per round trip: only 429s to requests
admitted after the last cut count, and a cut starts the count afresh); each success adds
1/rpm back. So random 429s (20% with `Retry-After: 1` at 60 rpm: 12 pauses of 1 s a minute) keep
the factor at 1, while a server that rejects most requests is backed off multiplicatively. The
factor only lowers the limits and pauses only delay admissions, so neither can weaken the window
guarantee. Waiters re-check when a slot is released, `settle` lowers a reservation or the factor
rises, so a correction from `usage` admits them at once instead of at the end of their estimate.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class LimitError(ValueError):
    """A limit below 1, or a request that no window can hold. `limit` names the setting ("rpm", "tpm",
    "concurrency"); `worded(name)` is the message with another name for it (a command line's flag, see
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


@dataclass(eq=False)
class Permit:
    """One admitted request: its admission time and the tokens it holds in the window."""

    t: float
    tokens: int
    live: bool = True


class Limiter:
    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int = 16,
        period: float = 60.0,
        margin: float | None = None,
        min_factor: float = 0.05,
        strikes: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        for name, value in (("rpm", rpm), ("tpm", tpm), ("concurrency", concurrency)):
            if value is not None and value < 1:
                raise LimitError(name, "{name} must be at least 1, got {value}", {"value": value})
        self.rpm, self.tpm, self.concurrency = rpm, tpm, concurrency
        self.window = period + (0.01 * period if margin is None else margin)
        self.factor = 1.0
        self._min_factor = min_factor
        self._recovery = 1.0 / (rpm or 50)
        self._clock, self._sleep = clock, sleep
        self._log: deque[Permit] = deque()
        self._tokens = 0
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
        self._changed.set()

    def settle(self, permit: Permit, tokens: int) -> None:
        """Replace a permit's reservation by the tokens the server reported (a lower one wakes the waiters)."""
        if permit.live:
            self._tokens += tokens - permit.tokens
            if tokens < permit.tokens:
                self._changed.set()
        permit.tokens = tokens

    def succeeded(self) -> None:
        self._answer(False)
        if self.factor < 1.0:
            self.factor = min(1.0, self.factor + self._recovery)
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
            self.factor = max(self._min_factor, self.factor / 2)

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
            if self._delay(now, tokens) <= 0 and self._in_flight < max(1, math.floor(self.concurrency * self.factor)):
                return self._grant(now, tokens)
        self._queued += 1
        try:
            async with self._lock:  # FIFO: waiters are admitted in arrival order
                while True:
                    now = self._clock()
                    delay = self._delay(now, tokens)
                    if delay <= 0 and self._in_flight < max(1, math.floor(self.concurrency * self.factor)):
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

    def _grant(self, now: float, tokens: int) -> Permit:
        permit = Permit(now, tokens)
        self._log.append(permit)
        self._tokens += tokens
        self._in_flight += 1
        return permit

    def _delay(self, now: float, tokens: int) -> float:
        """Seconds until a request reserving `tokens` fits every limit (0 when it fits now)."""
        log, window = self._log, self.window
        while log and log[0].t + window <= now:
            expired = log.popleft()
            expired.live = False
            self._tokens -= expired.tokens
        ready = self._paused_until
        if self.rpm is not None:
            excess = len(log) - max(1, math.floor(self.rpm * self.factor)) + 1
            if excess > 0:
                ready = max(ready, log[excess - 1].t + window)
        if self.tpm is not None and log:
            budget = max(tokens, math.floor(self.tpm * self.factor))
            over, i = self._tokens + tokens - budget, 0
            while over > 0:
                over -= log[i].tokens
                i += 1
            if i:
                ready = max(ready, log[i - 1].t + window)
        return ready - now


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
