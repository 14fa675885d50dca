"""The one slot runner (text mode, dialogue mode and the judge run on it), alone with a fake client: the in-flight
bound, failure accounting, the flush before each result, fatal errors."""
import asyncio

import pytest

from llm.engine.slots import SlotFailed, run_slots
from llm.engine.stats import RunStats
from llm.transport.protocols import ChatClient, ClientStats


class FakeClient:
    """A `ChatClient` that is never asked anything: the runner only sizes its pool by it and flushes it."""

    model, concurrency = "fake", 2

    def __init__(self):
        self.stats, self.flushes = ClientStats(), 0

    async def chat(self, messages, **kw):
        raise AssertionError("the runner sends nothing itself")

    def flush(self) -> None:
        self.flushes += 1

    def halt(self, reason: Exception) -> None:
        self.halted = True

    halted, unstored = False, 0


def test_the_fake_is_a_chat_client():
    assert isinstance(FakeClient(), ChatClient)


async def test_slots_in_flight_are_bounded_failures_recorded_and_each_result_flushed_first():
    client, stats = FakeClient(), RunStats()
    active = peak = 0

    async def work(slot: dict) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.002 * (slot["id"] % 3))
        active -= 1
        if slot["id"] % 5 == 0:
            raise SlotFailed(f"slot {slot['id']}: no")
        return slot["id"]

    got = []
    async for i in run_slots(({"id": i} for i in range(20)), work, client, stats=stats):
        assert client.flushes == len(got) + 1  # flushed before this result was handed out
        got.append(i)
    assert peak == 2 * client.concurrency
    assert sorted(got) == [i for i in range(20) if i % 5] and got != sorted(got)  # completion order
    assert stats.failures == {i: f"slot {i}: no" for i in (0, 5, 10, 15)} and stats.done == 16


async def test_a_fatal_error_reaches_the_consumer_and_stops_the_other_slots():
    started = []

    async def work(slot: dict) -> None:
        started.append(slot["id"])
        if slot["id"] == 3:
            raise RuntimeError("the key was refused")
        await asyncio.sleep(10)

    with pytest.raises(RuntimeError, match="the key was refused"):
        async for _ in run_slots(({"id": i} for i in range(100)), work, FakeClient()):
            pass
    assert sorted(started) == [0, 1, 2, 3]  # four workers took a slot each; none took another
