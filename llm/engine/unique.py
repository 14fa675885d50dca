"""Dedup while generating (`llm.generate --dedup`): a text that duplicates an accepted one is redrawn with the
slot's next persona draw, within the slot's `max_draws`, so the output keeps its exact size and per-emotion counts.

Which text is kept is decided in the order of the records (id order), whatever order their texts come back in:
slot i is settled only after every earlier slot, against the texts accepted before it; the first of its draws whose
text duplicates none of them is its result. The lowest id of a group of duplicates is thus the one kept. Every
request of a slot is a pure function of (id, attempt, try) (llm.engine.texts), so the results, and the output's
bytes, are the same at any concurrency. Texts are generated ahead of the settling (up to `workers` slots in flight,
at least LOOKAHEAD) and a result is handed on only once settled, so the journal holds settled results only; a
resumed run indexes the journal's texts first (`prime`) and settles the rest against them.

A settled result records its rule (`"dedup": "near:0.7/emotion"`), and every draw redrawn as a duplicate under its
`rejected_draws` (`"duplicate_of": the kept text's id`, with the draw's persona and validation verdicts). The run's
summary counts the redrawn texts and the slots that ran out of draws after a duplicate, per emotion (RunStats)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

from common.duplicates import DedupSpec, ExactIndex, NearIndex, index_for
from common.schema import stage_groups

from .slots import RoundsClient, SlotFailed, run_slots
from .stats import RunStats

SCOPES = ("emotion", "all")
LOOKAHEAD = 256  # slots generated ahead of the settled ones, at least (whatever the concurrency)


@dataclass
class Unique:
    """The dedup rule of a run and the index of its accepted texts."""

    spec: DedupSpec
    scope: str = "emotion"
    index: ExactIndex | NearIndex = field(init=False)

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"dedup scope {self.scope!r}: not one of {', '.join(SCOPES)}")
        self.index = index_for(self.spec)

    @property
    def rule(self) -> str:
        """What a result records: the spec and the scope, e.g. "near:0.7/emotion"."""
        return f"{self.spec}/{self.scope}"

    def _scope(self, result: dict) -> str:
        return result["emotion"] if self.scope == "emotion" else ""

    def prime(self, accepted: Iterable[dict]) -> None:
        """Index the accepted texts of a resumed journal (its results, in the journal's order: the journal is in id
        order but for the slots settled since its last sort, which come after, in id order too)."""
        for result in accepted:
            self.index.offer(result["id"], result["text"], self._scope(result))

    def results(self, records: Iterable[dict], run: Callable[[dict], Awaitable[dict]], redraw, client,
                max_draws: int, stats: RunStats, workers: int | None = None) -> AsyncIterator[dict]:
        """`run(record)` for every record through the slot runner, each result settled (see the module docstring)
        before it is yielded; `redraw(record, attempt)` gives a slot's next draw."""
        stats.dedup = self.rule
        turns = _Turns()
        order: dict[int, int] = {}

        def numbered() -> Iterable[dict]:
            for position, record in enumerate(records):
                order[record["id"]] = position
                yield record

        idle = client.idle if isinstance(client, RoundsClient) else nullcontext  # batch mode: not a request

        async def work(record: dict) -> dict:
            position = order.pop(record["id"])
            try:
                result, failed = await run(record), None
            except SlotFailed as exc:
                result, failed = None, exc
            with idle():
                await turns.reach(position)
            try:
                if failed is not None:
                    raise failed
                return await self._settle(result, record, run, redraw, max_draws, stats)
            finally:
                turns.advance()

        workers = max(workers or 4 * client.concurrency, LOOKAHEAD)
        return run_slots(numbered(), work, client, stats=stats, workers=workers)

    async def _settle(self, result: dict, record: dict, run, redraw, max_draws: int, stats: RunStats) -> dict:
        """The slot's first draw (from `result` on) whose text duplicates no accepted one, now accepted."""
        while (kept := self.index.offer(result["id"], result["text"], self._scope(result))) is not None:
            emotion = result["emotion"]
            stats.duplicates[emotion] += 1
            attempt = result.get("attempt", 0) + 1
            if attempt >= max_draws or redraw is None:
                stats.duplicate_failures[emotion] += 1
                raise SlotFailed(f"slot {result['id']}: out of draws: draw {attempt} duplicated text {kept} "
                                 f"(--dedup {self.spec}, scope {self.scope})")
            try:
                fresh = await run(redraw(record, attempt))
            except SlotFailed:
                stats.duplicate_failures[emotion] += 1
                raise
            result = redrawn(result, fresh, kept)
        return {**result, "dedup": self.rule}


def redrawn(old: dict, new: dict, kept: int) -> dict:
    """The result `new` of a slot whose earlier result `old` duplicated text `kept`: the tokens of both, and `old`'s
    draw among the rejected ones."""
    entry = {"attempt": old.get("attempt", 0), **stage_groups(old), "validation": old["validation"],
             "why": f"duplicate of text {kept}", "duplicate_of": kept}
    usage = {k: old["usage"].get(k, 0) + new["usage"].get(k, 0) for k in dict.fromkeys([*old["usage"], *new["usage"]])}
    return {**new, "usage": usage, "rejected_draws": [*old["rejected_draws"], entry, *new["rejected_draws"]]}


class _Turns:
    """Slots settle one at a time, in their order: `reach(k)` waits until the k-th may, `advance()` lets the next."""

    def __init__(self):
        self.next = 0
        self._waiting: dict[int, asyncio.Event] = {}

    async def reach(self, position: int) -> None:
        if position != self.next:
            await self._waiting.setdefault(position, asyncio.Event()).wait()

    def advance(self) -> None:
        self.next += 1
        if (event := self._waiting.pop(self.next, None)) is not None:
            event.set()
