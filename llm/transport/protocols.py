"""The declared seams: what the engine needs of a chat client, what a client needs of a limiter, and the values
that cross them (`Completion`, `ClientStats`).

`Client` and `Pool` (several endpoints used as one) are chat clients (and `llm.engine.rounds.Rounds`, batch mode's);
`Limiter` (one process) and `llm.scale.budget.RemoteLimiter` (a lease on a shared Ray `Budget` actor) are limiters;
`llm.transport.spend.Spend` and `llm.scale.shared_spend.RemoteSpend` are budgets in money. tests/llm/transport/test_protocols.py
checks that each satisfies its protocol.
"""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Completion:
    content: str
    usage: dict
    cached: bool


@dataclass
class ClientStats:
    requests: int = 0  # HTTP attempts sent
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0  # as reported for requests actually sent
    completion_tokens: int = 0
    bad_usage: int = 0  # responses whose `usage` was ignored (not non-negative integer counts)
    faults: dict = field(default_factory=dict)  # transient failure kind -> count


@runtime_checkable
class RateLimiter(Protocol):
    """Admission control for one endpoint, as a `Client` uses it."""

    concurrency: int  # requests in flight at most (the client sizes its connection pool by it)

    def admit(self, tokens: int) -> AbstractAsyncContextManager[Any]:
        """`async with limiter.admit(tokens) as permit:` waits until a request reserving `tokens` may be sent and
        holds it admitted meanwhile."""

    def settle(self, permit: Any, tokens: int) -> None:
        """The tokens the server reported for the permit's request."""

    def throttled(self, permit: Any, retry_after: float | None) -> None:
        """The permit's request got a 429 (`retry_after`: the seconds the server asked for, if it said)."""

    def succeeded(self) -> None:
        """A request succeeded."""

    def pause(self, seconds: float) -> None:
        """Admit nothing for `seconds` (the server says a quota is spent until then)."""


@runtime_checkable
class Spending(Protocol):
    """A budget in money (`--max-cost`) as a `Client` uses it: `llm.transport.spend.Spend` in one process,
    `RemoteSpend` (a Ray actor shared by every shard) under --ray."""

    def paying(self, prompt_tokens: int, max_tokens: int) -> AbstractAsyncContextManager[Any]:
        """`async with spend.paying(estimate, max_tokens) as bill:` holds the request's worst case while it is out
        (waiting while requests in flight may still free enough; raising `BudgetReached` when nothing can);
        `bill.usage` (the response's token counts) settles it, the worst case being charged when it is not set."""

    def flush(self) -> None:
        """Make what was spent so far durable (beside the request cache), as `ChatClient.flush` does its answers."""


@runtime_checkable
class ChatClient(Protocol):
    """What the engine (the slot runner, text mode, dialogue mode, the judge) needs of a client."""

    model: str  # written into every result
    stats: ClientStats  # for the progress bar and the run summary

    @property
    def concurrency(self) -> int:
        """Requests it may have in flight (the slot runner keeps twice as many slots going)."""

    async def chat(self, messages: list[dict], *, schema: dict | None = None, schema_name: str = "answer",
                   temperature: float = 0.0, max_tokens: int = 256, seed: int | None = None) -> Completion:
        """One chat completion."""

    def flush(self) -> None:
        """Make every response received so far durable (commit the request cache): the slot runner calls it before
        it hands out a result, so the answers behind a result are on disk before the caller writes the result."""

    def halt(self, reason: Exception) -> None:
        """Send nothing more (every later request raises `reason`; those waiting for the limiter or a backoff are
        cancelled); requests in flight end and their answers are kept, in memory if the disk refuses them. The slot
        runner halts the client when a result or an answer cannot be written, and then waits for those in flight."""

    @property
    def halted(self) -> bool:
        """Whether the client was halted (or halted itself: its request cache's disk refused a commit)."""

    @property
    def unstored(self) -> int:
        """Answers received that could not be stored (after a halt): a rerun asks them again."""
