"""`python -m llm.generate ... --ray [ADDRESS]`: the command line of a Ray run (see llm.scale.runner)."""
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
from llm.transport.client import Client
from llm.transport.session import flag_words

from .runner import Job, run_ray
from .shards import Shard, combine, merge, shard_dir, split
from .watchdog import watch

# Ray's switch for "single machine, loopback addresses only" (named for macOS/Windows, honoured everywhere)
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

SHARD_SIZE = 50_000  # default: at least ceil(n / SHARD_SIZE) shards, so a shard's merge fits in memory


def job_for(args, out: Path, emotions: list[str], settings: Settings) -> Job:
    """The Job of `python -m llm.generate` arguments (see `llm.options.parse` and `llm.running.settings_for`)."""
    return Job(
        directory=str(shard_dir(out)), endpoints=tuple(args.endpoints), model=args.model, profile=args.profile,
        domain=args.domain, emotions=tuple(emotions), seed=args.seed, settings=settings,
        api_key=os.environ.get(args.api_key_env), dialect=args.dialect, rpm=args.rpm, tpm=args.tpm,
        burst=args.burst, concurrency=args.concurrency or 16, timeout=args.timeout, max_attempts=args.max_attempts,
        max_response_bytes=args.max_response_bytes,
    )


async def main_ray(args, out: Path, emotions: list[str], settings: Settings, signals: bool = False) -> int:
    """`python -m llm.generate ... --ray [ADDRESS]`: shards on Ray, merged into `out` (JSONL or parquet).

    The Ray session runs in a thread; cancelling this coroutine (and, with `signals`, SIGTERM, which Ray's driver
    would otherwise turn into an abort) stops it within a poll: the shards are cancelled, and a local instance
    this run started is shut down. If the process dies instead (kill -9), `llm.scale.watchdog` reaps that instance."""
    ray = _import_ray(args)
    directory = shard_dir(out)
    if not args.endpoints:
        raise UsageError("--ray needs --base-url and --model: the embedded server serves one machine; start an "
                         "OpenAI-compatible server (vLLM, llama.cpp) per node and pass each with --base-url")
    if args.cache:
        raise UsageError(f"with --ray the request caches are per shard, under {directory}; leave out --cache")
    if out.exists() and not directory.is_dir():
        raise UsageError(f"{out} exists and is not the output of a --ray run; give another --out")
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else ():
        refuse_other(finished(path, fields=()), settings.prompts, path)  # before any request, as in one process
    job = job_for(args, out, emotions, settings)
    await _check(job)  # unreachable endpoint, refused key, unknown model: one line, before any worker
    t0, stop, loop = time.monotonic(), threading.Event(), asyncio.get_running_loop()
    task = asyncio.current_task()

    def connected() -> None:  # in the thread, once Ray is up: SIGTERM cancels this run again
        if signals:
            loop.call_soon_threadsafe(loop.add_signal_handler, signal.SIGTERM, task.cancel)

    try:
        with flag_words():
            shards, summaries, errors = await asyncio.to_thread(_session, ray, args, job, stop, connected)
    except asyncio.CancelledError:
        stop.set()  # the thread ends its session; asyncio.run waits for it
        raise
    written = merge(shards, directory, out, args.format)
    summary = {**combine(summaries), "shards": len(shards), "shard_errors": errors, "written": written,
               "wall_s": round(time.monotonic() - t0, 3), "prompt_set": job.settings.prompts.provenance()}
    publish(summary, out, args.quiet)
    if written < args.n:
        print(f"error: {args.n - written} of {args.n} texts missing ({summary['failed']} failed slots, "
              f"{len(errors)} failed shards; see {out}.summary.json); rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0


def _import_ray(args):
    if not args.ray:  # a new local instance: keep every Ray service on loopback (read when Ray is imported)
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'personagen[ray]'") from None
    return ray


def _session(ray, args, job: Job, stop: threading.Event, connected) -> tuple[list[Shard], list[dict], dict]:
    """Connect to the cluster of `args.ray` (a new local instance for none, watched by `llm.scale.watchdog`) unless
    this process already is, call `connected()`, run the shards until done or `stop` is set, and shut down the
    instance it started."""
    started = not ray.is_initialized()
    dog = None
    if started:
        ray.init(address=args.ray or "local", include_dashboard=False, log_to_driver=not args.quiet,
                 logging_level=logging.WARNING)
        dog = watch() if not args.ray else None
    try:
        connected()
        return _run(ray, args, job, stop)
    finally:
        if started:
            ray.shutdown()
        if dog is not None:
            dog.stdin.close()  # it reaps what the shutdown left, if anything


def _run(ray, args, job: Job, stop: threading.Event) -> tuple[list[Shard], list[dict], dict[str, str]]:
    """The run's shards, their summaries and the failed shards' errors, with a progress bar."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    shards = split(args.n, args.shards or max(cpus, math.ceil(args.n / SHARD_SIZE)))
    with tqdm(total=args.n, unit="text", disable=args.quiet, file=sys.stderr, dynamic_ncols=True) as bar:
        summaries, errors = run_ray(job, shards, on_progress=bar.update, stop=stop)
    return shards, summaries, errors


async def _check(job: Job) -> None:
    for e in job.endpoints:
        async with Client(e.url, job.model, api_key=job.api_key, dialect=job.dialect):
            pass
