"""The same run, sharded by id range across processes and machines on Ray (`python -m llm.generate --ray`).

- A shard (`run_shard`) is an ordinary run over ids [start, stop): it samples its own records, appends its
  results to its own JSONL file and keeps its own request cache next to it, so a retried shard resumes where
  the killed one stopped (finished slots from the file, in-flight requests from the cache). `run_shard` needs no
  Ray; on Ray it runs as a task with `max_retries`.
- The global budget (llm.scale.budget): one `Budget` actor per endpoint shared by all shards' clients.
- Several endpoints: each shard's client is a `Pool` that routes requests in proportion to the weights, and an
  endpoint of weight w gets w times `--rpm`, `--tpm` and `--concurrency`.
- At the end the driver merges the shard files in id order into one JSONL or parquet file (llm.scale.shards).
"""
from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from common.errors import UsageError
from common.files import write_json
from common.jsonl import Appender
from llm.engine.resume import finished, resume
from llm.engine.stats import RunStats
from llm.engine.texts import Settings, generate_texts
from llm.transport.cache import Cache
from llm.transport.endpoint import Endpoint
from llm.transport.factory import build_clients, cache_scope
from llm.transport.limiter import Limiter, LimitError
from llm.transport.options import ClientOptions
from llm.transport.pool import Pool
from llm.transport.spend import BudgetReached, Prices, SpendStore

from .budget import Budget, RemoteLimiter
from .shards import Shard, progress
from .shared_spend import RemoteSpend

FATAL = (UsageError, LimitError, BudgetReached)  # a shard failing with one of these cancels the run


class Halted(Exception):
    """`run_ray` was told to stop (its caller was cancelled): the shards were cancelled."""


@dataclass(frozen=True)
class Job:
    """Everything a shard needs; sent to every Ray task."""

    directory: str  # where shard files, caches and summaries go (shared storage on a multi-node cluster)
    endpoints: tuple[Endpoint, ...]
    model: str
    profile: str = "jp"
    domain: str | None = None
    emotions: tuple[str, ...] | None = None
    seed: int = 0
    settings: Settings = Settings()
    api_key: str | None = field(default=None, repr=False)
    client: ClientOptions = ClientOptions()  # the limits of an endpoint of weight 1
    period: float = 60.0
    margin: float | None = None
    prices: Prices | None = None  # with prices, the run's spend is counted (and held under max_cost) by an actor
    max_cost: float | None = None

    @property
    def scope(self) -> str:
        """The cache scope of the endpoints (llm.transport.factory.cache_scope), with the prompt set's tag."""
        return cache_scope(self.endpoints, self.model, self.settings.prompts.cache_tag)

    def limits(self, e: Endpoint) -> dict:
        mine = self.client.for_endpoint(e)
        return {"rpm": mine.rpm, "tpm": mine.tpm, "concurrency": mine.concurrency, "period": self.period,
                "margin": self.margin, "burst": mine.burst}

    def local_limiters(self) -> list[Limiter]:
        return [Limiter(**self.limits(e)) for e in self.endpoints]


@lru_cache(maxsize=4)
def _profile(ref: str, domain: str | None, method: str):
    from model.baselines import persona_profile
    from model.profile import load_profile

    return persona_profile(load_profile(ref, domain), method)  # cached: the jitted sampler is per Profile object


def run_shard(job: Job, shard: Shard, limiters: Callable[[], list] | None = None, spend=None) -> dict:
    """Generate (or finish) one shard; returns its summary. `limiters()` makes one limiter per endpoint inside the
    shard's event loop (default: local `Limiter`s, i.e. no sharing with other shards); `spend`: the run's Spend
    actor (llm.scale.shared_spend), if any."""
    from model.compilation import enable_compilation_cache
    from model.emotions import resolve_emotions

    enable_compilation_cache()
    profile = _profile(job.profile, job.domain, job.settings.method)
    ids = range(shard.start, shard.stop)
    emotions = list(job.emotions or resolve_emotions())
    done = finished(shard.path(job.directory), ids)
    todo, redraw = resume(profile, ids, job.seed, emotions, done, shard.path(job.directory))
    return asyncio.run(_run_shard(job, shard, todo, redraw, len(done), limiters or job.local_limiters, spend))


async def _run_shard(job: Job, shard: Shard, todo: Iterator[dict], redraw, resumed: int, limiters, spend) -> dict:
    stats = RunStats(resumed=resumed)
    cache = Cache(shard.path(job.directory, ".cache.sqlite"))
    pool = build_clients(job.endpoints, job.model, job.client, cache=cache, tag=job.settings.prompts.cache_tag,
                         api_key=job.api_key, limiters=limiters,
                         spend=None if spend is None else RemoteSpend(spend, SpendStore(cache, shard.name)))
    clients = pool.clients if isinstance(pool, Pool) else [pool]
    try:
        if resumed < len(shard):
            async with pool:
                with Appender(shard.path(job.directory)) as writer:
                    async for result in generate_texts(todo, pool, settings=job.settings, redraw=redraw,
                                                       stats=stats):
                        writer.write(result)
    finally:
        cache.close()
    summary = {**stats.summary(pool.stats),
               "endpoints": {e.plain_url: asdict(c.stats) for e, c in zip(job.endpoints, clients)}}
    write_json(shard.path(job.directory, ".summary.json"), summary)
    return summary


def shard_task(job: Job, shard: Shard, budgets: list, spend=None) -> dict:
    """The Ray task body: free what an earlier, killed attempt of this shard held at the budgets, then run it."""
    import ray

    owner = f"{shard.name}/{uuid.uuid4().hex}"  # this attempt
    ray.get([b.start.remote(shard.name, owner) for b in budgets])
    limiters = [RemoteLimiter(b, owner, concurrency=e.scaled(job.client.concurrency), tpm=e.scaled(job.client.tpm))
                for b, e in zip(budgets, job.endpoints)]
    try:
        return run_shard(job, shard, lambda: limiters, spend)
    finally:
        for limiter in limiters:  # what is left of the leases goes back to the other shards
            limiter.leave()


def run_ray(job: Job, shards: list[Shard], *, retries: int = 3, on_progress: Callable[[int], None] | None = None,
            spend=None, stop: threading.Event | None = None) -> tuple[list[dict], dict[str, str]]:
    """Run the shards as Ray tasks on the connected cluster, sharing one `Budget` actor per endpoint and the Spend
    actor `spend` (llm.scale.shared_spend), if any. Returns the shards' summaries and {shard name: error} for shards
    that failed after their retries; a `UsageError`, `LimitError` or `BudgetReached` in any shard cancels the rest
    and is raised, and so is `Halted` once `stop` is set (within half a second)."""
    import ray

    Path(job.directory).mkdir(parents=True, exist_ok=True)
    actor = ray.remote(Budget).options(num_cpus=0, max_concurrency=10_000, max_restarts=3)
    budgets = [actor.remote(lease_s=job.client.timeout + 30.0, ledger=(str(Path(job.directory) / "budget.sqlite"), e.plain_url),
                            **job.limits(e)) for e in job.endpoints]
    task = ray.remote(shard_task).options(num_cpus=1, max_retries=retries)
    refs = {task.remote(job, shard, budgets, spend): shard for shard in shards}
    summaries, errors, offsets, pending = [], {}, {}, list(refs)
    try:
        while pending:
            if stop is not None and stop.is_set():
                raise Halted("the run was stopped")
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            for ref in ready:
                try:
                    summaries.append(ray.get(ref))
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, FATAL):
                        raise exc.cause from None
                    errors[refs[ref].name] = f"{type(exc.cause).__name__}: {exc.cause}"
                except ray.exceptions.RayError as exc:  # e.g. the worker died more often than `retries`
                    errors[refs[ref].name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            if on_progress is not None:
                on_progress(progress(shards, job.directory, offsets))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        for b in budgets:
            ray.kill(b)
    return summaries, errors
