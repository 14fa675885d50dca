"""Several endpoints serving the same model, used as one client.

Requests go out in proportion to the endpoints' weights (smooth weighted round robin, so the split is exact
over any stretch of sum(weights) requests); each endpoint keeps its own limiter.
"""
from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import fields

from .client import Client
from .protocols import ClientStats, Completion


class Pool:
    """A `ChatClient` (see llm.transport.protocols) over several `Client`s."""

    def __init__(self, clients: list[Client], weights: list[float]):
        if not clients or len(clients) != len(weights):
            raise ValueError("one weight per client, at least one client")
        self.clients, self.weights = clients, weights
        self.model = clients[0].model
        self._current = [0.0] * len(clients)
        self._stack = AsyncExitStack()

    @property
    def concurrency(self) -> int:
        return sum(c.concurrency for c in self.clients)

    def flush(self) -> None:
        for c in self.clients:  # one shared cache: the members after the first find nothing left to commit
            c.flush()

    def halt(self, reason: Exception) -> None:
        for c in self.clients:
            c.halt(reason)

    @property
    def halted(self) -> bool:
        return any(c.halted for c in self.clients)

    @property
    def unstored(self) -> int:
        return sum(c.unstored for c in self.clients)

    @property
    def stats(self) -> ClientStats:
        total = ClientStats()
        for c in self.clients:
            for f in fields(ClientStats):
                if f.name == "faults":
                    for kind, count in c.stats.faults.items():
                        total.faults[kind] = total.faults.get(kind, 0) + count
                else:
                    setattr(total, f.name, getattr(total, f.name) + getattr(c.stats, f.name))
        return total

    def pick(self) -> int:
        """The index of the member the next request goes to."""
        total = sum(self.weights)
        for i, w in enumerate(self.weights):
            self._current[i] += w
        best = max(range(len(self.clients)), key=self._current.__getitem__)
        self._current[best] -= total
        return best

    async def chat(self, messages: list[dict], **kw) -> Completion:
        return await self.clients[self.pick()].chat(messages, **kw)

    async def __aenter__(self) -> Pool:
        async with AsyncExitStack() as stack:
            for c in self.clients:
                await stack.enter_async_context(c)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._stack.aclose()
