"""A round's requests through batches to their outcomes, durably (`Jobs`), over a `Backend`: the endpoint's Batch
API (llm.transport.batch.batchapi) or a directory of batch files (llm.transport.batch.offline).

`answer` splits the requests into files under the limits (llm.transport.batch.lines), records each in the ledger
before its batch exists, submits them, polls every `poll` seconds until each is finished and delivers the outcome
of every custom_id it answered or failed; what a batch left unanswered (expired, cancelled) has no outcome and
goes into the next round. `resume` first finishes the batches an earlier, killed run left open."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from common.errors import Stopped, UsageError
from common.hashing import hexdigest

from .ledger import Entry, Ledger
from .lines import Outcome, files, outcomes


class BatchFailed(UsageError):
    """A batch in a terminal failed state (its input refused): one line naming its id."""


class Waiting(Stopped):
    """--no-wait: a round's batch files are written (or still lack their outputs); rerun once they are answered."""

    code = 3


class Backend(Protocol):
    """Where batches go: submitted, looked at, their output read."""

    async def submit(self, entry: Entry, data: bytes, ledger: Ledger) -> None:
        """Make the batch of `entry` from its input file `data`, moving the entry's state on in the ledger."""

    async def adopt(self, entry: Entry, ledger: Ledger) -> bool:
        """Whether the open `entry` of an earlier run has a live batch (else it is dropped: nothing was sent)."""

    async def finished(self, entry: Entry) -> tuple[str, bytes, bytes] | None:
        """(final status, output file, error file) once the batch is over, else None; BatchFailed if it failed."""

    def waiting(self, entries: list[Entry]) -> Waiting | None:
        """What to stop with instead of polling (offline --no-wait), or None to wait."""


class Jobs:
    """Batches to outcomes over `backend`; `deliver(outcomes)` takes each finished batch's outcomes (and makes them
    durable) before its ledger row says done."""

    def __init__(self, backend: Backend, ledger: Ledger, deliver: Callable[[dict[str, Outcome]], None], *,
                 poll: float, max_requests: int, max_bytes: int,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.backend, self.ledger, self.deliver, self.poll = backend, ledger, deliver, poll
        self.max_requests, self.max_bytes = max_requests, max_bytes
        self.sleep = sleep
        self.batches: list[str] = []  # the batch ids (or files) of this invocation
        self.statuses: dict[str, int] = {}  # final status -> batches

    async def resume(self) -> None:
        """Finish the batches an earlier run left open (those without a live batch are dropped)."""
        live = []
        for entry in self.ledger.open():
            if await self.backend.adopt(entry, self.ledger):
                live.append(entry)
            else:
                self.ledger.update(entry, state="dropped")
        await self._collect(live)

    async def answer(self, lines: list[tuple[str, bytes]]) -> None:
        """Submit `lines` ((custom_id, body payload)) as one round of batches and deliver their outcomes."""
        round_ = self.ledger.next_round()
        entries = []
        for part, (ids, data) in enumerate(files(lines, self.max_requests, self.max_bytes), 1):
            entry = self.ledger.add(f"round-{round_:04d}-{part:03d}-{hexdigest(data)[:8]}", round_, ids)
            await self.backend.submit(entry, data, self.ledger)
            entries.append(entry)
        await self._collect(entries)

    async def _collect(self, entries: list[Entry]) -> None:
        self.batches += [e.label for e in entries if e.label not in self.batches]
        todo = list(entries)
        while todo:
            for entry in list(todo):
                try:
                    result = await self.backend.finished(entry)
                except BatchFailed:
                    self.ledger.update(entry, state="done", status="failed")  # a rerun makes a new batch
                    raise
                if result is None:
                    continue
                status, output, errors = result
                self.deliver(outcomes(output, errors))
                self.ledger.update(entry, state="done", status=status)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                todo.remove(entry)
            if todo:
                if (stop := self.backend.waiting(todo)) is not None:
                    raise stop
                await self.sleep(self.poll)
