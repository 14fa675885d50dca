"""The wiring under `llm.api`: a run's engine settings from its options (`settings_for`), and the loop that
drives a mode's results into the append-only journal through a connected client (`drive`)."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from common.errors import UsageError, WriteRefused
from common.jsonl import Appender
from model.emotions import load_emotions

from .engine.refused import stopped, write_results
from .engine.stats import OutputTotals, RunStats, publish
from .engine.texts import Settings
from .prompting import Prompting, prompting
from .transport.cache import CacheDamaged
from .transport.pool import Pool
from .transport.session import connect

AUDIT = 0.05  # default --audit


def settings_for(profile, args, words: Prompting | None = None) -> Settings:
    """The engine's settings of the options; `words` (`llm.prompting`) says in which prompt set and language."""
    words = words or prompting(args, profile, load_emotions(args.emotions))
    return Settings(
        labels=words.labels,
        text_format=words.text_format,
        context=words.context,
        prompts=words.prompts,
        definitions=words.definitions,
        leak_words=words.leak_words,
        temperature=args.temperature,
        method=args.method,
        validate=args.method == "personagen" and not args.no_validate,
        trust_below=args.trust_below,
        audit=AUDIT if args.audit is None else args.audit,
        trusted_drop=profile.plausibility.baseline if args.trust_below is not None else 0.0,
        min_score=(args.threshold or 3) if args.method == "priorwork" else None,
        forbid_label=args.no_label_leak,
        max_draws=args.max_draws,
    )


@asynccontextmanager
async def connected(args, out: Path, prompts):
    """`connect` with the request cache of --cache (default OUT.cache.sqlite) under the prompt set's tag, a damaged
    cache worded with its way out. Several endpoints, or one with a weight, are one `Pool`: each endpoint its own
    client with --rpm/--tpm/--concurrency times its weight (as with --ray), the traffic split by weight (each
    keeps its own cache scope, so a request is found in the cache when the same endpoint answered it)."""
    cache = args.cache or f"{out}.cache.sqlite"
    endpoints = args.endpoints or []
    try:
        async with AsyncExitStack() as stack:
            if len(endpoints) <= 1 and all(e.weight == 1 for e in endpoints):
                yield await stack.enter_async_context(connect(args, cache, prompts.cache_tag))
                return
            clients = [await stack.enter_async_context(connect(_scaled(args, e), cache, prompts.cache_tag))
                       for e in endpoints]
            yield Pool(clients, [e.weight for e in endpoints])
    except CacheDamaged as exc:
        raise UsageError(f"{exc}: give another --cache NEW, or delete {cache} (its answers are then asked "
                         "again)") from None


def _scaled(args, endpoint) -> argparse.Namespace:
    """The options of one endpoint of a pool: its URL, and --rpm/--tpm/--concurrency times its weight."""
    return argparse.Namespace(**{**vars(args), "base_url": endpoint.url, "rpm": endpoint.scaled(args.rpm),
                                 "tpm": endpoint.scaled(args.tpm), "concurrency": endpoint.scaled(args.concurrency)})


def endpoint_stats(client) -> dict:
    """Per endpoint counters of a pool (its URL -> its client's stats), else nothing."""
    if not isinstance(client, Pool):
        return {}
    return {"endpoints": {c.base_url: asdict(c.stats) for c in client.clients}}


async def drive(args, out: Path, results: Path, produce, total: int, done: dict[int, dict], unit: str, prompts,
                signals: bool = False, more=None) -> dict:
    """Drive `produce(client, stats)` (an async iterator of results, cache flushed before each: see
    llm.engine.runner) into the append-only `results` file holding the finished results `done`, with a progress
    bar; write the summary (this invocation's counters, the whole output's under "output") beside `out` and return
    it. `signals`: SIGTERM cancels the run (the command line's); `more(summary)`: entries added to it."""
    if signals:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    stats, totals = RunStats(resumed=len(done)), OutputTotals(of=total)
    for result in done.values():
        totals.add(result)
    client = None
    try:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(connected(args, out, prompts))
            writer = stack.enter_context(Appender(results))
            bar = stack.enter_context(tqdm(total=total, initial=len(done), unit=unit,
                                           disable=args.quiet, file=sys.stderr, dynamic_ncols=True))

            def keep(result: dict) -> None:
                writer.write(result)
                totals.add(result)
                bar.update()
                s = client.stats
                bar.set_postfix(tokens=s.prompt_tokens + s.completion_tokens, retries=s.retries, refresh=False)

            await write_results(produce(client, stats), client, keep)
    except WriteRefused as exc:
        raise stopped(exc, client) from None
    summary = {**stats.summary(client.stats), **endpoint_stats(client), "prompt_set": prompts.provenance(),
               "output": totals.summary()}
    summary.update(more(summary) if more else {})
    publish(summary, out, args.quiet)
    return summary
