"""A run that meets a write the system refuses (a full disk, a quota, a read-only place): it stops sending, keeps
what it can, and says in one line what was kept and what was lost.

The slot runner halts the client when the request cache cannot commit; `write_results` halts it when the caller
cannot write a result, before it closes the runner. Either way the runner then waits for the requests in flight
instead of cancelling them, so their answers reach the cache (its memory, when the disk refuses them too), and
`stopped` words the end: the refusal, and how many answered requests could not be stored (a rerun asks those again,
and only those)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from common.errors import UsageError, WriteRefused
from llm.transport.protocols import ChatClient


async def write_results(produced: AsyncIterator, client: ChatClient, write: Callable) -> None:
    """`write(result)` for every result of the slot runner's `produced`; a write the system refuses halts `client`
    before the runner is closed, and is raised."""
    async with aclosing(produced) as results:
        async for result in results:
            try:
                write(result)
            except WriteRefused as exc:
                client.halt(exc)
                raise


def stopped(exc: WriteRefused, client: ChatClient | None) -> UsageError:
    """The error ending a run that `exc` stopped, once `client` (None: it never connected) is closed."""
    if client is None:
        return exc
    n = client.unstored
    lost = (f"{n} answered request{'s' * (n != 1)} could not be stored (a rerun asks {'them' if n != 1 else 'it'} "
            "again)" if n else "every answer received is stored")
    return UsageError(f"{exc}; no request was sent after it, the results written so far are kept, whole, and {lost}: "
                      "make room and rerun the same command to resume")
