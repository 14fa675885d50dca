"""The budget of a Ray run (`--max-cost` with --ray): one `Spend` (llm.transport.spend) as an actor that every
shard's clients hold their requests' worst cases against (`RemoteSpend`), so the budget is never crossed across
shards. Each shard also keeps what it spent in its own request cache (`SpendStore` under the shard's name), so a
rerun starts from the sum, or from the output's summary when it says more (`spent_before`): a shard cancelled
when another reached the budget may not have saved its last request, and the summary has the actor's total."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import orjson

from llm.transport.cache import Cache
from llm.transport.spend import Bill, SpendStore

from .shards import Shard


class RemoteSpend:
    """What a shard's `Client` sees of the run's Spend actor: a `Spending` (llm.transport.protocols), one actor call
    to hold a request's worst case and one to settle it; the shard's own spend saved in `store` as it goes."""

    def __init__(self, actor, store: SpendStore):
        self._actor, self._store = actor, store
        self.spent = store.load()

    @asynccontextmanager
    async def paying(self, prompt_tokens: int, max_tokens: int):
        bill = Bill(await self._actor.hold.remote(prompt_tokens, max_tokens))
        try:
            yield bill
        finally:
            self.spent += await self._actor.release.remote(bill.worst, bill.usage)
            self._store.save(self.spent)  # at once: a shard cancelled when the budget is reached loses nothing

    def flush(self) -> None:
        pass  # saved with each request


def spent_before(shards: list[Shard], directory: str | Path, summary: Path) -> float:
    """What earlier invocations of the run spent: the sum of its shards' saved spends, or the `summary`'s
    output_spent when it is more."""
    try:
        total = float(orjson.loads(summary.read_bytes()).get("output_spent", 0.0))
    except (OSError, orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        total = 0.0
    shards_total = 0.0
    for shard in shards:
        path = shard.path(directory, ".cache.sqlite")
        if path.exists():
            cache = Cache(path)
            try:
                shards_total += SpendStore(cache, shard.name).load()
            finally:
                cache.close()
    return max(total, shards_total)
