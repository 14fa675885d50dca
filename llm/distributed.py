"""The same run, sharded by id range across processes and machines on Ray (`python -m llm.generate --ray`).

- A shard (`run_shard`) is an ordinary run over ids [start, stop): it samples its own records, appends its
  results to its own JSONL file and keeps its own request cache next to it, so a retried shard resumes where
  the killed one stopped (finished slots from the file, in-flight requests from the cache). `run_shard` needs no
  Ray; on Ray it runs as a task with `max_retries`.
- The global budget: one `Budget` actor per endpoint holds that endpoint's `Limiter` (the same class a single
  process uses, with the same sliding-window proof) and leases admissions to every shard's clients through
  `RemoteLimiter`, so the *sum* over shards stays under the endpoint's RPM/TPM/concurrency, with one clock.
  Leases of a killed attempt are dropped when its retry starts (and any it was still queued for are given back
  on admission), and any lease expires after `timeout + 30 s`.
- Several endpoints: each shard's client is a `Pool` that routes requests in proportion to the weights, and an
  endpoint of weight w gets w times `--rpm`, `--tpm` and `--concurrency`.
- At the end the driver merges the shard files in id order into one JSONL or parquet file.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import orjson

from model.errors import UsageError
from model.records import atomic_binary

from .cache import Cache
from .client import Client
from .jsonl import Appender
from .limiter import Limiter
from .pipeline import Settings, generate_texts
from .pool import Pool
from .shards import Endpoint, Shard, combine, merge, progress, shard_dir, split
from .stats import RunStats

# Ray's switch for "single machine, loopback addresses only" (named for macOS/Windows, honoured everywhere)
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

SHARD_SIZE = 50_000  # default: at least ceil(n / SHARD_SIZE) shards, so a shard's merge fits in memory


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
    dialect: str = "auto"
    rpm: int | None = None  # limits of an endpoint of weight 1
    tpm: int | None = None
    concurrency: int = 16
    period: float = 60.0
    margin: float | None = None
    timeout: float = 60.0
    max_attempts: int = 6
    backoff: tuple[float, float] = (0.5, 30.0)

    @property
    def scope(self) -> str:
        """The cache scope: the endpoint itself, or the pool of interchangeable endpoints."""
        urls = sorted(e.url.rstrip("/") for e in self.endpoints)
        return urls[0] if len(urls) == 1 else f"pool:{self.model}:{','.join(urls)}"

    def limits(self, e: Endpoint) -> dict:
        return {"rpm": e.scaled(self.rpm), "tpm": e.scaled(self.tpm), "concurrency": e.scaled(self.concurrency),
                "period": self.period, "margin": self.margin}

    def local_limiters(self) -> list[Limiter]:
        return [Limiter(**self.limits(e)) for e in self.endpoints]


@lru_cache(maxsize=4)
def _profile(ref: str, domain: str | None, method: str):
    from model.baselines import persona_profile
    from model.profile import load_profile

    return persona_profile(load_profile(ref, domain), method)  # cached: the jitted sampler is per Profile object


def run_shard(job: Job, shard: Shard, limiters: Callable[[], list] | None = None) -> dict:
    """Generate (or finish) one shard; returns its summary. `limiters()` makes one limiter per endpoint inside the
    shard's event loop (default: local `Limiter`s, i.e. no sharing with other shards)."""
    from model.emotions import resolve_emotions
    from model.sample import enable_compilation_cache

    from .generate import resume

    enable_compilation_cache()
    profile = _profile(job.profile, job.domain, job.settings.method)
    ids = range(shard.start, shard.stop)
    emotions = list(job.emotions or resolve_emotions())
    todo, _, redraw = resume(profile, ids, job.seed, emotions, shard.path(job.directory))
    return asyncio.run(_run_shard(job, shard, todo, redraw, len(ids) - len(todo), limiters or job.local_limiters))


async def _run_shard(job: Job, shard: Shard, todo: list[dict], redraw, resumed: int, limiters) -> dict:
    stats = RunStats(resumed=resumed)
    cache = Cache(shard.path(job.directory, ".cache.sqlite"))
    clients = [
        Client(e.url, job.model, api_key=job.api_key, dialect=job.dialect, limiter=limiter, cache=cache,
               scope=job.scope, timeout=job.timeout, max_attempts=job.max_attempts, backoff=job.backoff)
        for e, limiter in zip(job.endpoints, limiters())
    ]
    pool = Pool(clients, [e.weight for e in job.endpoints])
    try:
        if todo:
            async with pool:
                with Appender(shard.path(job.directory)) as writer:
                    async for result in generate_texts(todo, pool, settings=job.settings, redraw=redraw,
                                                       stats=stats, workers=2 * pool.concurrency):
                        writer.write(result)
    finally:
        cache.close()
    summary = {**stats.summary(pool.stats),
               "endpoints": {e.url: asdict(c.stats) for e, c in zip(job.endpoints, clients)}}
    with atomic_binary(shard.path(job.directory, ".summary.json")) as f:
        f.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return summary


def run_local(job: Job, shards: list[Shard]) -> list[dict]:
    """The shards one after another in this process (what a Ray run does, minus Ray): for tests and debugging."""
    Path(job.directory).mkdir(parents=True, exist_ok=True)
    return [run_shard(job, shard) for shard in shards]


# ---------------------------------------------------------------- the global budget


@dataclass
class _Lease:
    permit: object
    stack: AsyncExitStack
    owner: str
    t: float


class Budget:
    """One endpoint's `Limiter`, shared by all shards (run it as an async Ray actor: `ray.remote(Budget)`).

    `acquire` enters `Limiter.admit` and holds it open under a lease id until `release`, so admission order,
    windows, the concurrency cap and the adaptive 429 factor are exactly the single-process limiter's."""

    def __init__(self, lease_s: float = 90.0, **limits):
        self.limiter = Limiter(**limits)
        self.lease_s = lease_s
        self._leases: dict[int, _Lease] = {}
        self._next = 0
        self._dead: set[str] = set()  # owners (shard attempts) known to be gone
        self._owners: dict[str, set[str]] = {}  # shard -> its attempts seen
        self._sweeper: asyncio.Task | None = None

    async def acquire(self, tokens: int, owner: str = "") -> int:
        """A lease id (0: the owner is dead, nothing held)."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self._owners.setdefault(owner.partition("/")[0], set()).add(owner)
        stack = AsyncExitStack()
        permit = await stack.enter_async_context(self.limiter.admit(tokens))
        if owner in self._dead:  # a call of a killed attempt that waited in the queue: let the slot go at once
            await stack.aclose()
            return 0
        self._next += 1
        self._leases[self._next] = _Lease(permit, stack, owner, time.monotonic())
        return self._next

    async def release(self, lease_id: int, tokens: int | None = None, throttled: bool = False,
                      retry_after: float | None = None) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            return
        if tokens is not None:
            self.limiter.settle(lease.permit, tokens)
        if throttled:
            self.limiter.throttled(lease.permit, retry_after)
        await lease.stack.aclose()

    def succeeded(self) -> None:
        self.limiter.succeeded()

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def start(self, shard: str, owner: str) -> int:
        """Attempt `owner` of `shard` begins: earlier attempts are dead. Drop the leases they still hold (their
        admissions stay in the window) and any they are still queued for; returns how many were dropped."""
        stale = [k for k, lease in self._leases.items()
                 if lease.owner.partition("/")[0] == shard and lease.owner != owner]
        self._dead.update(self._leases[k].owner for k in stale)
        self._dead.update(o for o in self._owners.get(shard, ()) if o != owner)
        self._owners[shard] = {owner}
        for k in stale:
            await self._leases.pop(k).stack.aclose()
        return len(stale)

    async def _sweep(self) -> None:
        """Expire leases older than `lease_s` (a worker that died with no retry to call `start`)."""
        while True:
            await asyncio.sleep(min(1.0, self.lease_s / 4))
            now = time.monotonic()
            for k in [k for k, lease in self._leases.items() if now - lease.t > self.lease_s]:
                await self._leases.pop(k).stack.aclose()

    def state(self) -> dict:
        return {"leases": len(self._leases), "factor": self.limiter.factor}


@dataclass(eq=False)
class _RemotePermit:
    lease: int
    tokens: int | None = None
    throttled: bool = False
    retry_after: float | None = None


class RemoteLimiter:
    """What a `Client` sees of a `Budget` actor: the `Limiter` interface, one actor call to admit and one to
    release (carrying the settled tokens and any 429)."""

    def __init__(self, budget, owner: str, *, concurrency: int, tpm: int | None):
        self._budget, self._owner = budget, owner
        self.concurrency, self.tpm = concurrency, tpm

    @asynccontextmanager
    async def admit(self, tokens: int):
        if self.tpm is not None and tokens > self.tpm:
            raise UsageError(f"one request may use {tokens} tokens but --tpm is {self.tpm}")
        permit = _RemotePermit(await self._budget.acquire.remote(tokens, self._owner))
        try:
            yield permit
        finally:
            self._budget.release.remote(permit.lease, permit.tokens, permit.throttled, permit.retry_after)

    def settle(self, permit: _RemotePermit, tokens: int) -> None:
        permit.tokens = tokens

    def throttled(self, permit: _RemotePermit, retry_after: float | None) -> None:
        permit.throttled, permit.retry_after = True, retry_after

    def succeeded(self) -> None:
        self._budget.succeeded.remote()

    def pause(self, seconds: float) -> None:
        self._budget.pause.remote(seconds)


def shard_task(job: Job, shard: Shard, budgets: list) -> dict:
    """The Ray task body: free what an earlier, killed attempt of this shard held at the budgets, then run it."""
    import ray

    owner = f"{shard.name}/{uuid.uuid4().hex}"  # this attempt
    ray.get([b.start.remote(shard.name, owner) for b in budgets])
    return run_shard(job, shard, lambda: [
        RemoteLimiter(b, owner, concurrency=e.scaled(job.concurrency), tpm=e.scaled(job.tpm))
        for b, e in zip(budgets, job.endpoints)
    ])


def run_ray(job: Job, shards: list[Shard], *, retries: int = 3, on_progress: Callable[[int], None] | None = None
            ) -> tuple[list[dict], dict[str, str]]:
    """Run the shards as Ray tasks on the connected cluster, sharing one `Budget` actor per endpoint.
    Returns the shards' summaries and {shard name: error} for shards that failed after their retries;
    a `UsageError` in any shard cancels the rest and is raised."""
    import ray

    Path(job.directory).mkdir(parents=True, exist_ok=True)
    actor = ray.remote(Budget).options(num_cpus=0, max_concurrency=10_000, max_restarts=3)
    budgets = [actor.remote(lease_s=job.timeout + 30.0, **job.limits(e)) for e in job.endpoints]
    task = ray.remote(shard_task).options(num_cpus=1, max_retries=retries)
    refs = {task.remote(job, shard, budgets): shard for shard in shards}
    summaries, errors, offsets, pending = [], {}, {}, list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            for ref in ready:
                try:
                    summaries.append(ray.get(ref))
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, UsageError):
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


# ---------------------------------------------------------------- the command line (`llm.generate --ray`)


def job_for(args, out: Path, emotions: list[str], settings: Settings) -> Job:
    """The Job of `python -m llm.generate` arguments (see `llm.generate.parse` and `settings_for`)."""
    return Job(
        directory=str(shard_dir(out)), endpoints=tuple(args.endpoints), model=args.model, profile=args.profile,
        domain=args.domain, emotions=tuple(emotions), seed=args.seed, settings=settings,
        api_key=os.environ.get(args.api_key_env), dialect=args.dialect, rpm=args.rpm, tpm=args.tpm,
        concurrency=args.concurrency or 16, timeout=args.timeout, max_attempts=args.max_attempts,
    )


def main_ray(args, out: Path, emotions: list[str], settings: Settings) -> int:
    """`python -m llm.generate ... --ray [ADDRESS]`: shards on Ray, merged into `out` (JSONL or parquet)."""
    if not args.ray:  # a new local instance: keep every Ray service on loopback (read when Ray is imported)
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'personagen[ray]'") from None
    if not args.endpoints:
        raise UsageError("--ray needs --base-url and --model: the embedded server serves one machine; start an "
                         "OpenAI-compatible server (vLLM, llama.cpp) per node and pass each with --base-url")
    if args.cache:
        raise UsageError(f"with --ray the request caches are per shard, under {shard_dir(out)}; leave out --cache")
    directory = shard_dir(out)
    if out.exists() and not directory.is_dir():
        raise UsageError(f"{out} exists and is not the output of a --ray run; give another --out")
    job = job_for(args, out, emotions, settings)
    asyncio.run(_check(job))  # unreachable endpoint, refused key, unknown model: one line, before any worker
    started = not ray.is_initialized()
    if started:
        ray.init(address=args.ray or "local", include_dashboard=False, log_to_driver=not args.quiet,
                 logging_level=logging.WARNING)
    t0 = time.monotonic()
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        shards = split(args.n, args.shards or max(cpus, math.ceil(args.n / SHARD_SIZE)))
        from tqdm import tqdm

        with tqdm(total=args.n, unit="text", disable=args.quiet, file=sys.stderr, dynamic_ncols=True) as bar:
            summaries, errors = run_ray(job, shards, on_progress=bar.update)
    finally:
        if started:
            ray.shutdown()
    written = merge(shards, directory, out, args.format)
    summary = {**combine(summaries), "shards": len(shards), "shard_errors": errors, "written": written,
               "wall_s": round(time.monotonic() - t0, 3)}
    with atomic_binary(f"{out}.summary.json") as f:
        f.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if not args.quiet:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
    if written < args.n:
        print(f"error: {args.n - written} of {args.n} texts missing ({summary['failed']} failed slots, "
              f"{len(errors)} failed shards; see {out}.summary.json); rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0


async def _check(job: Job) -> None:
    for e in job.endpoints:
        async with Client(e.url, job.model, api_key=job.api_key, dialect=job.dialect):
            pass
