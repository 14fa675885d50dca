"""Batch mode of a run (`--batch`, `--batch-dir DIR`): its client (`batched`), a `Rounds` over the endpoint's Batch
API or over batch files in DIR, with its ledger and the run's budget in the request cache file; and the budget of
any run (`spending`, --max-cost and the prices)."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from common.errors import UsageError

from ..engine.rounds import Rounds
from ..transport.batch.batchapi import BatchAPI
from ..transport.batch.offline import OfflineDir
from ..transport.cache import Cache
from ..transport.dialects import detect
from ..transport.endpoint import Endpoint
from ..transport.factory import build_client, cache_scope
from ..transport.spend import Prices, Spend, SpendStore
from .config import RunConfig


def spending(config: RunConfig, out: Path, made: list) -> Callable[[Cache], Spend] | None:
    """The maker of the run's budget from its cache (what the output spent before is kept there), appending it to
    `made`; None for a run without prices."""
    if config.price_in is None and config.price_out is None:
        return None
    prices = Prices(config.price_in or 0.0, config.price_out or 0.0,
                    config.batch_discount if config.batching else 1.0)

    def make(cache: Cache) -> Spend:
        store = SpendStore(cache, str(out.resolve()))
        spend = Spend(prices, config.max_cost, store.load(), store.save)
        made.append(spend)
        return spend

    return make


def _say(config: RunConfig) -> Callable[[str], None]:
    return (lambda text: None) if config.quiet else (lambda text: print(text, file=sys.stderr, flush=True))


@asynccontextmanager
async def batched(config: RunConfig, cache: str, tag: str | None, spend_maker: Callable[[Cache], Spend] | None):
    """The `Rounds` client of a batch run: the endpoint checked (its model, its Batch API) for --batch; nothing
    contacted for --batch-dir, whose answers are cached under --base-url's scope when given (so an online run
    there finds them), else under the model's."""
    async with AsyncExitStack() as stack:
        cache_file = Cache(cache)
        stack.callback(cache_file.close)
        spend = spend_maker(cache_file) if spend_maker is not None else None
        options = config.client
        key = os.environ.get(options.api_key_env)
        if config.batch_dir is not None:
            if Path(config.batch_dir).exists() and not Path(config.batch_dir).is_dir():
                raise UsageError(f"--batch-dir {config.batch_dir} exists and is not a directory")
            scope = cache_scope(config.endpoints, config.model) if config.endpoints else f"batch-dir:{config.model}"
            client = build_client(Endpoint(config.endpoints[0].url if config.endpoints else "batch-dir"), config.model,
                                  options, cache=cache_file, scope=f"{scope}|{tag}" if tag else scope, spend=spend)
            client.dialect = client.dialect or detect(set())
            backend = OfflineDir(config.batch_dir, wait=not config.no_wait, say=_say(config))
        else:
            endpoint = config.endpoints[0]
            scope = cache_scope(config.endpoints, config.model, tag)
            client = await stack.enter_async_context(build_client(endpoint, config.model, options, cache=cache_file,
                                                                  scope=scope, api_key=key, spend=spend))
            backend = await BatchAPI.checked(client, key)
        rounds = Rounds.over(client, backend, spend=spend, max_attempts=options.max_attempts, poll=config.batch_poll,
                             max_requests=config.batch_max_requests, max_bytes=config.batch_max_bytes)
        stack.push_async_callback(rounds.close)
        yield rounds
