"""`python -m llm.generate ... --ray [ADDRESS]`: the command line of a Ray run (see llm.scale.tasks)."""
from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from tqdm import tqdm

from common.errors import UsageError
from llm.engine.resume import finished, refuse_other
from llm.engine.stats import publish
from llm.engine.texts import Settings
from llm.transport.factory import build_client, flag_words
from llm.transport.spend import BudgetReached, Prices, Spend

from .tasks import Job, run_ray
from .shards import Shard, combine, merge, shard_dir, split
from .shared_spend import spent_before
from .watchdog import watch

# Ray's switch for "single machine, loopback addresses only" (named for macOS/Windows, honoured everywhere)
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

SHARD_SIZE = 50_000  # default: at least ceil(n / SHARD_SIZE) shards, so a shard's merge fits in memory


def job_for(config, out: Path, emotions: list[str], settings: Settings) -> Job:
    """The Job of a run's config (a `llm.api.RunConfig`) and engine settings (`llm.api.settings`)."""
    return Job(
        directory=str(shard_dir(out)), endpoints=config.endpoints, model=config.model, profile=config.profile,
        domain=config.domain, emotions=tuple(emotions), seed=config.seed, settings=settings,
        api_key=os.environ.get(config.client.api_key_env), client=config.client,
        prices=None if config.price_in is None and config.price_out is None else Prices(
            config.price_in or 0.0, config.price_out or 0.0), max_cost=config.max_cost,
    )


async def main_ray(config, out: Path, emotions: list[str], settings: Settings, signals: bool = False) -> int:
    """`python -m llm.generate ... --ray [ADDRESS]`: shards on Ray, merged into `out` (JSONL or parquet).

    The Ray session runs in a thread; cancelling this coroutine (and, with `signals`, SIGTERM, which Ray's driver
    would otherwise turn into an abort) stops it within a poll: the shards are cancelled, and a local instance
    this run started is shut down. If the process dies instead (kill -9), `llm.scale.watchdog` reaps that instance."""
    ray = _import_ray(config)
    directory = shard_dir(out)
    if not config.endpoints:
        raise UsageError("--ray needs --base-url and --model: the embedded server serves one machine; start an "
                         "OpenAI-compatible server (vLLM, llama.cpp) per node and pass each with --base-url")
    if config.cache:
        raise UsageError(f"with --ray the request caches are per shard, under {directory}; leave out --cache")
    if out.exists() and not directory.is_dir():
        raise UsageError(f"{out} exists and is not the output of a --ray run; give another --out")
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else ():
        refuse_other(finished(path, fields=()), settings.prompts, path)  # before any request, as in one process
    job = job_for(config, out, emotions, settings)
    await _check(job)  # unreachable endpoint, refused key, unknown model: one line, before any worker
    t0, stop, loop = time.monotonic(), threading.Event(), asyncio.get_running_loop()
    task = asyncio.current_task()

    def connected() -> None:  # in the thread, once Ray is up: SIGTERM cancels this run again
        if signals:
            loop.call_soon_threadsafe(loop.add_signal_handler, signal.SIGTERM, task.cancel)

    try:
        with flag_words():
            shards, summaries, errors, spent = await asyncio.to_thread(_session, ray, config, job, out, stop,
                                                                       connected)
    except asyncio.CancelledError:
        stop.set()  # the thread ends its session; asyncio.run waits for it
        raise
    except BudgetReached as exc:  # the whole output's spend is in the shards' caches too: the rerun goes on
        publish({"stopped": str(exc), "output_spent": round(exc.spent, 6), "max_cost": exc.limit}, out, config.quiet)
        raise
    written = merge(shards, directory, out, config.output_format)
    summary = {**combine(summaries), "shards": len(shards), "shard_errors": errors, "written": written,
               "wall_s": round(time.monotonic() - t0, 3), "prompt_set": job.settings.prompts.provenance(), **spent}
    publish(summary, out, config.quiet)
    if written < config.n:
        print(f"error: {config.n - written} of {config.n} texts missing ({summary['failed']} failed slots, "
              f"{len(errors)} failed shards; see {out}.summary.json); rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0


def _import_ray(config):
    if not config.ray:  # a new local instance: keep every Ray service on loopback (read when Ray is imported)
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'personagen[ray]'") from None
    return ray


def _session(ray, config, job: Job, out: Path, stop: threading.Event, connected) -> tuple:
    """Connect to the cluster of `config.ray` (a new local instance for none, watched by `llm.scale.watchdog`)
    unless this process already is, call `connected()`, run the shards until done or `stop` is set, and shut down
    the instance it started."""
    started = not ray.is_initialized()
    dog = None
    if started:
        ray.init(address=config.ray or "local", include_dashboard=False, log_to_driver=not config.quiet,
                 logging_level=logging.WARNING)
        dog = watch() if not config.ray else None
    try:
        connected()
        return _run(ray, config, job, out, stop)
    finally:
        if started:
            ray.shutdown()
        if dog is not None:
            dog.stdin.close()  # it reaps what the shutdown left, if anything


def _run(ray, config, job: Job, out: Path, stop: threading.Event) -> tuple[list[Shard], list[dict], dict, dict]:
    """The run's shards, their summaries, the failed shards' errors and what the run spent, with a progress bar."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    shards = split(config.n, config.shards or max(cpus, math.ceil(config.n / SHARD_SIZE)))
    spend = None
    if job.prices is not None:  # one Spend for every shard: the budget is global
        spend = ray.remote(Spend).options(num_cpus=0, max_concurrency=10_000).remote(
            job.prices, job.max_cost, spent_before(shards, job.directory, Path(f"{out}.summary.json")))
    try:
        with tqdm(total=config.n, unit="text", disable=config.quiet, file=sys.stderr, dynamic_ncols=True) as bar:
            summaries, errors = run_ray(job, shards, on_progress=bar.update, spend=spend, stop=stop)
        state = ray.get(spend.state.remote()) if spend is not None else None
    finally:
        if spend is not None:
            ray.kill(spend)
    spent = {} if state is None else {"cost": round(state["spent"] - state["earlier"], 6),
                                      "output_spent": round(state["spent"], 6)}
    return shards, summaries, errors, spent


async def _check(job: Job) -> None:
    for e in job.endpoints:
        async with build_client(e, job.model, job.client, api_key=job.api_key):
            pass
