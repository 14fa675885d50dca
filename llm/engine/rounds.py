"""Batch mode: the same slot state machine, driven in rounds. `Rounds` is a chat client whose `chat` checks the
request cache and otherwise registers the request and waits; the slot runner runs every open slot at once and
holds `working()` while a worker runs them, so once every working slot waits on a request (or has finished) a
round is complete: its requests (the next one of every open slot: a validation stage, a generation, a redraw's
first stage, a re-ask) go out as batches (llm.transport.batch.jobs), and their answers go into the cache and wake
the slots. A whole run is a handful of batches; the records are those of an online run.

The same request from two slots is one line (its custom_id is its cache key). A request a batch failed (an error
line, or left unanswered by an expired or cancelled batch) goes into the next round, at most `max_attempts` times
in all, as online retries; a 4xx answer fails at once. With a budget (llm.transport.spend) a round holds only the
requests whose worst case fits, in order; the rest wait for the next round, and a round that can send nothing
stops the run (`BudgetReached`). Before its first round a run finishes the batches a killed run left open."""
from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import contextmanager

from llm.transport.batch.jobs import Jobs
from llm.transport.batch.ledger import Ledger
from llm.transport.batch.lines import Outcome
from llm.transport.client import Client, RequestFailed, completion
from llm.transport.protocols import ClientStats, Completion
from llm.transport.spend import Bill, Spend
from llm.transport.usage import believed


class Rounds:
    """A `ChatClient` answering in rounds through `jobs` (see the module docstring); `client` builds the requests
    (body, cache key, prompt estimate) and holds the cache, `spend` the budget if any."""

    def __init__(self, client: Client, jobs: Jobs | None = None, *, spend: Spend | None = None,
                 max_attempts: int = 6):
        self.client, self.jobs, self.spend, self.max_attempts = client, jobs, spend, max_attempts
        self.model = client.model
        self.stats = ClientStats()
        self.rounds = 0  # rounds that sent requests
        self._waiting: dict[str, list[asyncio.Future]] = {}  # cache key -> the slots waiting on it
        self._bodies: dict[str, tuple[dict, bytes]] = {}  # cache key -> (body, payload)
        self._held: dict[str, float] = {}  # cache key -> its worst case, held against the budget
        self._attempts: Counter = Counter()
        self._blocked = 0  # slots waiting on a request
        self._working = 0  # workers running slots
        self._task: asyncio.Task | None = None
        self._resumed = False
        self._delivered: set[str] = set()  # keys the current round's batches answered or failed

    @classmethod
    def over(cls, client: Client, backend, *, spend: Spend | None = None, max_attempts: int = 6, poll: float = 30.0,
             max_requests: int = 50_000, max_bytes: int = 190_000_000) -> Rounds:
        """Rounds through `backend` (llm.transport.batch: the Batch API, a directory of batch files), the ledger in
        the client's cache file."""
        rounds = cls(client, spend=spend, max_attempts=max_attempts)
        rounds.jobs = Jobs(backend, Ledger(client.cache), rounds.deliver, poll=poll, max_requests=max_requests,
                           max_bytes=max_bytes)
        return rounds

    @property
    def concurrency(self) -> int:
        return self.client.concurrency

    def flush(self) -> None:
        self.client.flush()

    def halt(self, reason: Exception) -> None:
        """Send nothing more (a write the system refused): the client is halted, and so is every round to come."""
        self.client.halt(reason)

    @property
    def halted(self) -> bool:
        return self.client.halted

    @property
    def unstored(self) -> int:
        return self.client.unstored

    @contextmanager
    def working(self):
        """Held by each worker of the slot runner while it runs slots."""
        self._working += 1
        try:
            yield
        finally:
            self._working -= 1
            self._check()

    @contextmanager
    def idle(self):
        """Held by a working slot while it waits on something other than a request (its turn to settle under
        `--dedup`, llm.engine.unique): a round does not wait for it."""
        self._working -= 1
        self._check()
        try:
            yield
        finally:
            self._working += 1

    async def chat(self, messages: list[dict], **kw) -> Completion:
        body, payload, key = self.client.request(messages, **kw)
        data = self.client.cache.get(key)
        if data is not None:
            self.stats.cache_hits += 1
            return completion(data, True, payload, body["max_tokens"])
        future = asyncio.get_running_loop().create_future()
        if key not in self._waiting:
            self._waiting[key], self._bodies[key] = [], (body, payload)
        self._waiting[key].append(future)
        self._blocked += 1
        self._check()
        return completion(await future, False, payload, body["max_tokens"])

    def _check(self) -> None:
        """Start a round when every working slot waits on a request."""
        if self._task is None and self._blocked and self._blocked >= self._working:
            self._task = asyncio.get_running_loop().create_task(self._round())

    async def _round(self) -> None:
        """One round, started once the workers' first steps have all run (a task is scheduled after them)."""
        try:
            if self._blocked and self._blocked >= self._working:
                await self._rounds()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # fatal for the run (a failed batch, a budget reached): every slot gets it
            for key in list(self._waiting):
                self._fail(key, exc)
        finally:
            self._task = None
        self._check()  # nothing answered (every line failed): the next round at once

    async def _rounds(self) -> None:
        if not self._resumed:
            self._resumed = True
            blocked = self._blocked
            await self.jobs.resume()
            if self._blocked < blocked:  # answers of a killed run's batches woke slots: wait for their next requests
                return
        keys = list(self._waiting)
        if self.spend is not None:
            keys = self._affordable(keys)
        self.rounds += 1
        self.stats.requests += len(keys)
        self._delivered = set()
        await self.jobs.answer([(key, self._bodies[key][1]) for key in keys])
        for key in keys:  # what the round's batches left unanswered
            if key not in self._delivered and key in self._waiting:
                self._unanswered(key, Outcome(why="not answered by its batch"))

    def _affordable(self, keys: list[str]) -> list[str]:
        """The first requests whose worst cases fit in the budget; BudgetReached when not even one does."""
        chosen = []
        for key in keys:
            body = self._bodies[key][0]
            worst = self.spend.worst(self.client.prompt_estimate(body), body["max_tokens"])
            if not self.spend.take(worst):
                if not chosen:
                    raise self.spend.refused(worst)
                break
            self._held[key] = worst
            chosen.append(key)
        return chosen

    def deliver(self, outcomes: dict[str, Outcome]) -> None:
        """A finished batch's outcomes: answers into the cache (committed) and to their slots; failures retried."""
        for key, outcome in outcomes.items():
            self._delivered.add(key)
            if outcome.data is None:
                if key in self._waiting:
                    self._unanswered(key, outcome)
                continue
            self.client.cache.put(key, outcome.data)
            self._count(key, outcome.data)
            for future in self._waiting.pop(key, ()):
                self._blocked -= 1
                future.set_result(outcome.data)
            self._bodies.pop(key, None)
        self.flush()

    def _count(self, key: str, data: dict) -> None:
        body, payload = self._bodies[key]
        usage = believed(data.get("usage"), len(payload), body["max_tokens"])
        if usage is None:
            self.stats.bad_usage += 1
        usage = usage or {}
        self.stats.prompt_tokens += usage.get("prompt_tokens", 0)
        self.stats.completion_tokens += usage.get("completion_tokens", 0)
        if self.spend is not None:
            held = self._held.pop(key, 0.0)
            self.spend.settle(held, self.spend.charge(Bill(held, usage)))

    def _unanswered(self, key: str, outcome: Outcome) -> None:
        self.stats.faults[outcome.why] = self.stats.faults.get(outcome.why, 0) + 1
        if self.spend is not None:
            self.spend.settle(self._held.pop(key, 0.0), 0.0)
        self._attempts[key] += 1
        if outcome.final or self._attempts[key] >= self.max_attempts:
            why = outcome.why if outcome.final else f"gave up after {self._attempts[key]} batches, last: {outcome.why}"
            self._fail(key, RequestFailed(why))
        else:
            self.stats.retries += 1

    def _fail(self, key: str, exc: BaseException) -> None:
        for future in self._waiting.pop(key, ()):
            self._blocked -= 1
            future.set_exception(exc)
        self._bodies.pop(key, None)

    def summary(self) -> dict:
        """The rounds and batches of this invocation, and every batch the output's requests went through (ids of
        the Batch API's batches, names of batch files)."""
        return {"rounds": self.rounds, "batches": list(self.jobs.batches), "statuses": dict(self.jobs.statuses),
                "output_batches": [e.label for e in self.jobs.ledger.entries() if e.state == "done"]}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
