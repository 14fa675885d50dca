"""Our engine vs the same engine with the limiter before issue 26 and vs a naive asyncio.gather + semaphore +
fixed-sleep client, against the local fault server.

    .venv/bin/python benchmarks/bench_engine.py [--case faults|429|short|all] [--rpm 3000] [--window 10]
        [--windows 3.5 (short: 2)] [--concurrency 64] [--p429 0.2] [--retry-after 1]

The server (a separate process, so client CPU is measured alone) answers in 50-500 ms and enforces `--rpm` over a
sliding window. Case `faults`: it fails 10% of requests transiently (500, 503, dropped connections, malformed
bodies). Case `429`: it answers a share `--p429` of requests at random with a 429 carrying `Retry-After:
--retry-after` seconds (scaled like the window: a 60th of it per second). Case `short`: no faults, but the server
also enforces the RPM over short periods, as providers do ("60,000 RPM may be enforced as 1,000 requests/second"): a
60th of it a scaled second with one scaled second of burst (the limiter's default), 429 beyond (`limited`). Time is
scaled: a `--window`-second window holds rpm * window / 60 requests (pass --window 60 for real minutes). All clients
run the same 4-request items (3 validations + 1 text).

Engines: `ours`; `window-log`, the same engine with the limiter as it was before issue 26 (a sliding-window log,
read from git at BEFORE_26 by benchmarks/baseline.py: the named baseline of the limiter's own cost and of its
bursts); `naive` (cases faults and 429). Client CPU is getrusage(RUSAGE_SELF) of this process (all its threads; the
server child excluded) over the engine's run, divided by the requests the server saw, and by those it answered 200.
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm import Cache, Client, ClientOptions, Limiter, RunStats, Settings, generate_texts  # noqa: E402
from llm.engine.answers import parse_label, parse_text  # noqa: E402
from llm.engine.messages import TEXT_SCHEMA, VALIDATION_SCHEMA, generation_messages, validation_messages  # noqa: E402
from llm.engine.promptset import shipped  # noqa: E402
from llm.testing.faults import Faults, fetch, spawned  # noqa: E402

from baseline import BEFORE_26, from_git  # noqa: E402

EN = shipped("en")

EMOTIONS = ["joy", "anger", "sadness", "pleasure", "surprise", "fear", "neutral"]


def records(n: int) -> list[dict]:
    return [{"id": i, "emotion": EMOTIONS[i % 7], "stage1": {"age": f"{20 + i % 50}", "job": f"job {i % 13}"},
             "stage2": {"region": f"region {i % 47}"}, "stage3": {"location": f"place {i % 11}"}} for i in range(n)]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def ours(url: str, recs: list[dict], args, limit: int, admission=Limiter) -> list[int]:
    with tempfile.TemporaryDirectory() as tmp:
        limiter = admission(rpm=limit, concurrency=args.concurrency, period=args.window)
        client = Client(url, "test-model", limiter=limiter, cache=Cache(Path(tmp) / "cache.sqlite"),
                        options=ClientOptions(timeout=5.0))
        async with client:
            ids = [r["id"] async for r in generate_texts(recs, client, settings=Settings(), stats=RunStats())]
        client.cache.close()
    return ids


async def naive(url: str, recs: list[dict], args, limit: int) -> list[int]:
    """What one writes first: fire everything, cap concurrency, sleep a fixed second on any failure."""
    semaphore = asyncio.Semaphore(args.concurrency)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=5)) as session:

        async def call(messages, schema, parse):
            body = {"model": "test-model", "messages": messages, "temperature": 0.0, "max_tokens": 128,
                    "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}}
            for _ in range(10):
                async with semaphore:
                    try:
                        async with session.post(f"{url}/chat/completions", json=body) as resp:
                            status, raw = resp.status, await resp.read()
                        if status == 200:
                            answer = parse(orjson.loads(raw)["choices"][0]["message"]["content"])
                            if answer is not None:
                                return answer
                    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError):
                        pass
                await asyncio.sleep(1.0)
            return None

        async def item(rec):
            for stage in (1, 2, 3):
                if await call(validation_messages(EN, rec, stage, {}), VALIDATION_SCHEMA, parse_label) is None:
                    return None
            text = await call(generation_messages(EN, rec, {}), TEXT_SCHEMA, parse_text)
            return None if text is None else rec["id"]

        return [i for i in await asyncio.gather(*(item(r) for r in recs)) if i is not None]


def faults(case: str, args, limit: int) -> Faults:
    common = {"latency": (0.05, 0.5), "rpm": limit, "window": args.window, "seed": 1}
    if case == "429":
        return Faults(p429=args.p429, retry_after=args.retry_after * args.window / 60, **common)
    if case == "short":
        return Faults(burst=args.window / 60, **common)
    return Faults(p500=0.03, p503=0.03, p_drop=0.02, p_malformed=0.02, **common)


def measure(name: str, engine, args, limit: int, n: int, case: str) -> dict:
    with spawned(faults(case, args, limit)) as url:
        start_cpu, start = cpu(), time.monotonic()
        ids = asyncio.run(engine(url, records(n), args, limit))
        wall, used = time.monotonic() - start, cpu() - start_cpu
        server = fetch(url)
    counts = Counter(ids)
    windows, served = server["per_window"], server["served_per_window"]
    return {
        "case": case,
        "engine": name,
        "items": n,
        "lost": n - len(counts),
        "duplicated": sum(c - 1 for c in counts.values()),
        "requests_sent": server["arrivals"],
        "limit_violations": server["over_limit"],
        "max_in_window": server["max_requests_in_window"],
        "limit_per_window": limit,
        "sent_pct_of_rpm": round(100 * sum(windows) / (limit * len(windows)), 1) if windows else None,
        "answered_pct_of_rpm": round(100 * sum(served) / (limit * len(served)), 1) if served else None,
        "complete_windows": len(windows),
        "statuses": server["statuses"],
        "limited": server["limited"],  # 429s of the server's limits (case short: its short-period ones)
        "wall_s": round(wall, 1),
        "client_cpu_ms_per_request": round(1000 * used / max(1, server["arrivals"]), 3),
        # the same CPU over requests answered 200: a cheap 429 lowers the per-request figure without doing work
        "client_cpu_ms_per_answered": round(1000 * used / max(1, server["served"]), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=["faults", "429", "short", "all"], default="all")
    p.add_argument("--rpm", type=int, default=3000)
    p.add_argument("--window", type=float, default=10.0, help="seconds standing in for a minute")
    p.add_argument("--windows", type=float, help="run length in windows of work for our engine (default 3.5; "
                   "case short: 2, both runs in under a minute)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--p429", type=float, default=0.2, help="case 429: share of requests answered 429 at random")
    p.add_argument("--retry-after", type=float, default=1.0, help="case 429: its Retry-After, in scaled seconds")
    args = p.parse_args()
    limit = round(args.rpm * args.window / 60)
    old = partial(ours, admission=from_git(BEFORE_26, "llm/transport/limiter.py").Limiter)
    for case in ("faults", "429", "short") if args.case == "all" else (args.case,):
        n = int((args.windows or (2.0 if case == "short" else 3.5)) * limit / 4)  # 4 requests per item
        what = {"faults": "10% transient faults",
                "429": f"{args.p429:.0%} random 429s with Retry-After {args.retry_after * args.window / 60:g} s",
                "short": f"also {limit / args.window:g} requests a second, a burst of {limit / 60:.3g}"}[case]
        print(f"case {case}: rpm {args.rpm} -> {limit} requests per {args.window:g} s window; {n} items; "
              f"concurrency {args.concurrency}; latency 50-500 ms; {what}", flush=True)
        engines = [("ours", ours), ("window-log", old)] + ([("naive", naive)] if case != "short" else [])
        rows = [measure(name, engine, args, limit, n, case) for name, engine in engines]
        for row in rows:
            print(orjson.dumps(row).decode(), flush=True)
        a = rows[0]
        for b in rows[1:]:
            print(f"ratios ours/{b['engine']}: sent rate {a['sent_pct_of_rpm']}/{b['sent_pct_of_rpm']}, "
                  f"wall {a['wall_s'] / b['wall_s']:.2f}, cpu/request "
                  f"{a['client_cpu_ms_per_request'] / max(b['client_cpu_ms_per_request'], 1e-9):.2f} "
                  f"({a['client_cpu_ms_per_request']} vs {b['client_cpu_ms_per_request']} ms), "
                  f"violations {a['limit_violations']} vs {b['limit_violations']}, "
                  f"429s of the limits {a['limited']} vs {b['limited']}", flush=True)


if __name__ == "__main__":
    main()
