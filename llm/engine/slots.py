"""The slot runner: every slot of a run (a persona's text, a dialogue, a text to judge) goes through here.

A bounded pool of workers takes slots in input order; at most `workers` slots (default twice the client's
concurrency, so a request is ready whenever the limiter admits one) are in flight at once, whatever stage each
is at. A slot that raises `SlotFailed` is recorded in `stats.failures` under its id and the run goes on; any
other exception is fatal for the run (e.g. the API key was refused): it is handed to the consumer, and the other
workers are cancelled. Results come out in completion order, each after `client.flush()`, so the responses
behind a result are on disk before the caller writes it (see llm.transport.cache). A client that answers in rounds
(`RoundsClient`, batch mode) is told which workers are running slots.

A write the system refuses (`WriteRefused`: the request cache's commit here, or the caller's write of a result,
who then halts the client before closing the iterator) stops the sending instead: the client is halted, and the
workers are not cancelled but waited for, so the requests in flight end and their answers are kept.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol, TypeVar, runtime_checkable

from common.errors import WriteRefused
from llm.transport.protocols import ChatClient

from .stats import RunStats

Slot = TypeVar("Slot", bound=dict)  # a dict with the slot's "id"
Result = TypeVar("Result")


class SlotFailed(Exception):
    """A slot that ends without a result; the run goes on and the summary lists it."""


@runtime_checkable
class RoundsClient(ChatClient, Protocol):
    """A client that answers in rounds (batch mode, llm.engine.rounds): it sends a round once every worker holding
    `working()` waits on a request, so each worker holds it while it runs slots."""

    def working(self) -> AbstractContextManager:
        """Held by a worker while it runs slots."""

    def idle(self) -> AbstractContextManager:
        """Held by a working slot while it waits on something other than a request."""


async def run_slots(
    slots: Iterable[Slot],
    work: Callable[[Slot], Awaitable[Result]],
    client: ChatClient,
    *,
    stats: RunStats | None = None,
    workers: int | None = None,
) -> AsyncIterator[Result]:
    """`work(slot)` for every slot, `workers` (default 2 x `client.concurrency`) at a time; yields the results in
    completion order. Failed slots are recorded in `stats`, finished ones counted in `stats.done`."""
    stats = stats if stats is not None else RunStats()
    todo = iter(slots)
    results: asyncio.Queue = asyncio.Queue()
    done = object()

    working = client.working if isinstance(client, RoundsClient) else nullcontext

    async def worker() -> None:
        try:
            with working():
                for slot in todo:
                    try:
                        result = await work(slot)
                    except SlotFailed as exc:
                        stats.failures[slot["id"]] = str(exc)
                        continue
                    results.put_nowait(result)
        except Exception as exc:  # fatal for the run (e.g. the key was refused): hand it to the consumer
            results.put_nowait(exc)
        finally:
            results.put_nowait(done)

    n = workers or 2 * client.concurrency
    tasks = [asyncio.create_task(worker()) for _ in range(n)]
    try:
        while n:
            item = await results.get()
            if item is done:
                n -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                stats.done += 1
                client.flush()  # the responses behind this result are on disk before the caller writes it
                yield item
    except WriteRefused as exc:
        client.halt(exc)
        raise
    finally:
        if not client.halted:  # else the workers end by themselves, once their requests in flight are answered
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
