"""A budget in money for a run (`--max-cost`): no request is sent whose worst case would take what was spent plus
what is in flight over the budget.

A request's worst case is its prompt estimate (the client's, estimated high) plus its `max_tokens`, at the prices
(`Prices`: per million prompt and completion tokens, times the batch discount in batch mode). `Spend.paying` holds
it while the request is out and settles it with the tokens the server reports (the worst case when it reports
none). A request that does not fit waits while requests in flight may still free enough (they usually cost less
than their worst case); when nothing is in flight and it still does not fit, the run stops: `BudgetReached`, a
`common.errors.Stopped` naming what was spent and what remains, resumable (a rerun with a larger budget goes on).

What earlier invocations spent counts: `SpendStore` keeps the whole output's spend in a table of its request
cache file, written as the cache commits (once per event-loop iteration), so even a killed run's spend is known
to the next. Under
--ray one `Spend` runs as an actor shared by every shard (`RemoteSpend`), so the budget is global."""
from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from common.errors import Stopped

from .cache import Cache

EPSILON = 1e-12  # float sums of costs: a request that exactly fits must fit


class BudgetReached(Stopped):
    """The next request's worst case does not fit in what remains of the budget."""

    def __init__(self, spent: float, limit: float, needed: float):
        super().__init__(spent, limit, needed)  # all in args: the error pickles (it crosses Ray tasks)
        self.spent, self.limit, self.needed = spent, limit, needed

    def __str__(self) -> str:
        return (f"budget reached: spent {self.spent:.6f} of --max-cost {self.limit:g} "
                f"({max(0.0, self.limit - self.spent):.6f} remaining, the next request may cost {self.needed:.6f}); "
                "rerun with a larger --max-cost to go on")


@dataclass(frozen=True)
class Prices:
    """Prices of a million prompt and completion tokens, and the factor on both (the Batch API's discount)."""

    price_in: float
    price_out: float
    discount: float = 1.0

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.price_in + completion_tokens * self.price_out) * self.discount / 1e6


@dataclass
class Bill:
    """One request's hold on the budget: `usage` (its response's valid token counts, {} when it had none) settles
    it; None: never answered."""

    worst: float
    usage: dict | None = None


class SpendStore:
    """The spend of an output (`name`) in the table `spend` of its request cache file."""

    def __init__(self, cache: Cache, name: str):
        self.cache, self.name = cache, name

    def _db(self):
        db = self.cache.connection()
        db.execute("CREATE TABLE IF NOT EXISTS spend (output TEXT PRIMARY KEY, spent REAL NOT NULL)")
        return db

    def load(self) -> float:
        """What was saved (0 when the cache file does not exist yet: nothing is created here)."""
        if not os.path.exists(self.cache.path):
            return 0.0
        row = self._db().execute("SELECT spent FROM spend WHERE output = ?", (self.name,)).fetchone()
        return row[0] if row else 0.0

    def save(self, spent: float) -> None:
        self._db().execute("INSERT OR REPLACE INTO spend VALUES (?, ?)", (self.name, spent))


class Spend:
    """The budget `limit` (None: spend is counted, nothing is refused) at `prices`, `spent` before this run; `save`
    (e.g. `SpendStore.save`) keeps the total at each `flush`. A `Spending` (llm.transport.protocols)."""

    def __init__(self, prices: Prices, limit: float | None = None, spent: float = 0.0,
                 save: Callable[[float], None] | None = None):
        if limit is not None and not (math.isfinite(limit) and limit >= 0):
            raise ValueError(f"a budget is a finite number >= 0, got {limit!r}")
        self.prices, self.limit, self.spent, self.earlier = prices, limit, spent, spent
        self.in_flight = 0.0
        self.reached: BudgetReached | None = None  # once reached, nothing more is admitted
        self._save, self._saved = save, spent
        self._scheduled = False
        self._freed = asyncio.Event()

    @property
    def this_run(self) -> float:
        """What this invocation spent."""
        return self.spent - self.earlier

    def worst(self, prompt_tokens: int, max_tokens: int) -> float:
        return self.prices.cost(prompt_tokens, max_tokens)

    def fits(self, cost: float) -> bool:
        return self.limit is None or self.spent + self.in_flight + cost <= self.limit + EPSILON

    def take(self, cost: float) -> bool:
        """Hold `cost` if it fits now (no waiting: batch mode sizes a batch by it)."""
        if not self.fits(cost):
            return False
        self.in_flight += cost
        return True

    async def reserve(self, cost: float) -> None:
        """Hold `cost`, waiting while requests in flight may free enough; BudgetReached when none can, and from
        then on for every request (the run stops: a smaller request must not go out while it winds down)."""
        while self.reached is None and not self.fits(cost):
            if self.in_flight <= EPSILON:
                self.reached = BudgetReached(self.spent, self.limit, cost)
                self._freed.set()  # the others waiting learn it too
            else:
                self._freed.clear()
                await self._freed.wait()
        if self.reached is not None:
            raise BudgetReached(*self.reached.args)
        self.in_flight += cost

    def settle(self, held: float, cost: float) -> None:
        """A request that held `held` cost `cost` (saved within this loop iteration, as the cache commits its
        answer: a killed run's answers are not found in the cache without their cost)."""
        self.in_flight = max(0.0, self.in_flight - held)
        self.spent += cost
        self._freed.set()
        if self._save is not None and cost and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def refused(self, cost: float) -> BudgetReached:
        return BudgetReached(self.spent, self.limit, cost)

    @asynccontextmanager
    async def paying(self, prompt_tokens: int, max_tokens: int):
        bill = Bill(await self.hold(prompt_tokens, max_tokens))
        try:
            yield bill
        finally:
            self.release(bill.worst, bill.usage)

    def charge(self, bill: Bill) -> float:
        """What a settled request cost: its usage at the prices; its worst case without usage; nothing when it was
        never answered (a failed request)."""
        if bill.usage is None:
            return 0.0
        if not bill.usage:
            return bill.worst
        return self.prices.cost(bill.usage.get("prompt_tokens", 0), bill.usage.get("completion_tokens", 0))

    async def hold(self, prompt_tokens: int, max_tokens: int) -> float:
        """`paying`'s first half, for a remote caller (`RemoteSpend`): the worst case held."""
        worst = self.worst(prompt_tokens, max_tokens)
        await self.reserve(worst)
        return worst

    def release(self, held: float, usage: dict | None) -> float:
        """`paying`'s second half, for a remote caller: what the request cost."""
        cost = self.charge(Bill(held, usage))
        self.settle(held, cost)
        return cost

    def flush(self) -> None:
        self._scheduled = False
        if self._save is not None and self.spent != self._saved:
            self._save(self.spent)
            self._saved = self.spent

    def state(self) -> dict:
        return {"spent": self.spent, "earlier": self.earlier, "in_flight": self.in_flight, "limit": self.limit}
