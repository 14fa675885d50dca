"""The loop under `llm.api.run`: a run's connected client (`connected`), and the driving of a mode's results into
the append-only journal through it, with a progress bar and the run's summary (`drive`)."""
from __future__ import annotations

import asyncio
import signal
import sys
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from common.errors import Stopped, UsageError, WriteRefused
from common.jsonl import Appender

from ..engine.promptset import PromptSet
from ..engine.rounds import Rounds
from ..engine.refused import stopped as refusal, write_results
from ..engine.resume import Finished
from ..engine.stats import RunStats, publish
from ..transport.cache import CacheDamaged
from ..transport.factory import connect
from ..transport.pool import Pool
from .batching import batched, spending
from .config import RunConfig


@asynccontextmanager
async def connected(config: RunConfig, out: Path, prompts: PromptSet, spend_maker=None):
    """The run's checked client (llm.transport.factory.connect; in batch mode llm.api.batching.batched) with the
    request cache of --cache (default OUT.cache.sqlite) under the prompt set's tag, and the budget `spend_maker`
    makes (llm.api.batching.spending); a damaged cache worded with its way out."""
    cache = config.cache or f"{out}.cache.sqlite"
    try:
        if config.batching:
            made = batched(config, cache, prompts.cache_tag, spend_maker)
        else:
            made = connect(config.endpoints, config.model, config.client, cache, prompts.cache_tag, spend_maker)
        async with made as client:
            yield client
    except CacheDamaged as exc:
        raise UsageError(f"{exc}: give another --cache NEW, or delete {cache} (its answers are then asked "
                         "again)") from None


def endpoint_stats(client) -> dict:
    """Per endpoint counters of a pool (its URL -> its client's stats), else nothing."""
    if not isinstance(client, Pool):
        return {}
    return {"endpoints": {c.base_url: asdict(c.stats) for c in client.clients}}


async def drive(config: RunConfig, out: Path, results: Path, produce, done: Finished, prompts: PromptSet,
                signals: bool = False, more=None) -> dict:
    """Drive `produce(client, stats)` (an async iterator of results, cache flushed before each: see
    llm.engine.slots) into the append-only `results` file holding the finished results `done`, with a progress
    bar; write the summary (this invocation's counters, the whole output's under "output") beside `out` and return
    it. `signals`: SIGTERM cancels the run (the command line's); `more(summary)`: entries added to it."""
    if signals:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    stats, totals = RunStats(resumed=len(done)), replace(done.totals, of=config.total)
    spends: list = []
    stopped, client = None, None
    try:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(connected(config, out, prompts, spending(config, out, spends)))
            writer = stack.enter_context(Appender(results))
            bar = stack.enter_context(tqdm(total=config.total, initial=len(done), unit=config.mode,
                                           disable=config.quiet, file=sys.stderr, dynamic_ncols=True))

            def summary() -> dict:
                return {**stats.summary(client.stats), **endpoint_stats(client), **batch_stats(client),
                        "prompt_set": prompts.provenance(), "output": totals.summary()}

            def keep(result: dict) -> None:
                writer.write(result)
                totals.add(result)
                bar.update()
                s = client.stats
                bar.set_postfix(tokens=s.prompt_tokens + s.completion_tokens, retries=s.retries, refresh=False)

            try:
                await write_results(produce(client, stats), client, keep)
            except (asyncio.CancelledError, KeyboardInterrupt) as exc:  # what was done is kept
                bar.close()
                why = _reason(exc)
                publish({**summary(), **(spent(spends[0]) if spends else {}),
                         **({"stopped": why} if why else {"interrupted": True})}, out, config.quiet)
                if not why:
                    print(f"interrupted with {totals.summary()['results']} of {config.total} {config.mode}s written "
                          f"(see {out}.summary.json); rerun the same command to resume", file=sys.stderr)
                raise
            except Stopped as exc:  # a budget reached, batch files left to run: the summary says so; raised below
                stopped = exc
            client.flush()
            done_summary = summary()
    except WriteRefused as exc:  # a full disk: nothing more was sent, what is kept is said in one line
        raise refusal(exc, client) from None
    done_summary.update(spent(spends[0]) if spends else {})
    done_summary.update(more(done_summary) if more else {})
    if stopped is not None:
        done_summary["stopped"] = str(stopped)
    publish(done_summary, out, config.quiet)
    if stopped is not None:
        raise stopped
    return done_summary


def _reason(exc: BaseException) -> str | None:
    """Why the run was cancelled, if whoever cancelled it said (a dead embedded server, which reports its own
    error); None for the user's Ctrl-C or SIGTERM."""
    return exc.args[0] if isinstance(exc, asyncio.CancelledError) and exc.args else None


def batch_stats(client) -> dict:
    """A batch run's rounds and batches (llm.engine.rounds), else nothing."""
    return {"batch": client.summary()} if isinstance(client, Rounds) else {}


def spent(spend) -> dict:
    """What this invocation spent ("cost") and what the whole output did ("output_spent"), and the budget."""
    return {"cost": round(spend.this_run, 6), "output_spent": round(spend.spent, 6),
            **({"max_cost": spend.limit} if spend.limit is not None else {})}
