"""The limiter alone, on a virtual clock: limits hold in every window, whatever the load and the 429s."""
import asyncio
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm.transport.limiter import Limiter, LimitError
from llm.transport.session import flag_words
from llm.testserver import max_in_window
from common.errors import UsageError


class VirtualClock:
    """Time that only moves when someone sleeps (only the limiter's lock holder ever does)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def limiter(clock, **kw) -> Limiter:
    return Limiter(period=1.0, margin=0.0, clock=clock, sleep=clock.sleep, **kw)


requests = st.lists(
    st.tuples(
        st.integers(1, 60),  # tokens reserved
        st.integers(0, 60),  # tokens the "server" reports (at most the reservation)
        st.integers(0, 5),  # event-loop turns the request stays in flight
        st.sampled_from([None, None, None, "429", "429+retry"]),
        st.floats(0, 0.3),  # virtual gap before the request is made
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(reqs=requests, rpm=st.integers(1, 12), tpm=st.integers(60, 300), concurrency=st.integers(1, 6))
def test_no_window_ever_exceeds_the_limits(reqs, rpm, tpm, concurrency):
    clock = VirtualClock()
    lim = limiter(clock, rpm=rpm, tpm=tpm, concurrency=concurrency)
    permits, in_flight, peak = [], 0, 0

    async def one(i, tokens, used, hold, outcome, gap):
        nonlocal in_flight, peak
        for _ in range(i):  # start in order, spread over a few loop turns
            await asyncio.sleep(0)
        async with lim.admit(tokens) as permit:
            in_flight += 1
            peak = max(peak, in_flight)
            for _ in range(hold):
                await asyncio.sleep(0)
            if outcome is None:
                lim.settle(permit, min(used, tokens))
                lim.succeeded()
            else:
                lim.throttled(permit, 0.25 if outcome == "429+retry" else None)
            permits.append(permit)
            in_flight -= 1

    async def run():
        await asyncio.gather(*(one(i, *r) for i, r in enumerate(reqs)))

    asyncio.run(run())
    assert len(permits) == len(reqs)
    assert max_in_window([(p.t, 1) for p in permits], 1.0) <= rpm
    assert max_in_window([(p.t, p.tokens) for p in permits], 1.0) <= tpm
    assert peak <= concurrency


async def test_settling_returns_unused_tokens_at_once():
    clock = VirtualClock()
    lim = limiter(clock, tpm=100)
    async with lim.admit(80) as p:
        lim.settle(p, 10)
    async with lim.admit(80) as q:
        pass
    assert q.t == 0.0  # fits beside the corrected 10 without waiting
    async with lim.admit(80) as r:
        pass
    assert r.t == pytest.approx(1.0)  # 10 + 80 + 80 > 100: waits until the first two leave the window


async def test_a_429_cuts_the_rate_once_per_round_trip_and_success_restores_it():
    clock = VirtualClock()
    lim = limiter(clock, rpm=10)
    async with lim.admit(1) as a, lim.admit(1) as b:
        lim.throttled(a, None)
        lim.throttled(b, None)  # sent before the cut: no second cut
    assert lim.factor == 0.5
    for _ in range(4):
        lim.succeeded()
    assert lim.factor == pytest.approx(0.9)  # one request/minute back per success
    lim.succeeded()
    lim.succeeded()
    assert lim.factor == 1.0


async def test_retry_after_pauses_every_admission():
    clock = VirtualClock()
    lim = limiter(clock, rpm=100)
    async with lim.admit(1) as p:
        lim.throttled(p, 2.5)
    async with lim.admit(1) as q:
        pass
    assert q.t == pytest.approx(2.5)


async def test_the_concurrency_cap_holds_requests_back():
    lim = Limiter(concurrency=2)
    active = peak = 0

    async def one():
        nonlocal active, peak
        async with lim.admit(0):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    await asyncio.gather(*(one() for _ in range(10)))
    assert peak == 2


async def test_a_request_larger_than_the_tpm_is_a_usage_error():
    with pytest.raises(LimitError, match="tpm is 100"):  # a ValueError without flag words (a library error) ...
        async with Limiter(tpm=100).admit(101):
            pass


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="rpm must be at least 1"):
        Limiter(rpm=0)


async def test_a_command_line_words_limit_errors_with_their_flags():  # ... that a command line words as before
    with pytest.raises(UsageError, match="^one request may use 101 tokens but --tpm is 100$"):
        with flag_words():
            async with Limiter(tpm=100).admit(101):
                pass
    with pytest.raises(UsageError, match="^--concurrency must be at least 1, got 0$"):
        with flag_words():
            Limiter(concurrency=0)


def test_a_limit_error_survives_pickling():  # it crosses from a Ray shard task to the driver
    error = pickle.loads(pickle.dumps(LimitError("tpm", "{name} is {tpm}", {"tpm": 5})))
    assert str(error) == "tpm is 5" and error.worded("--tpm") == "--tpm is 5" and error.limit == "tpm"
