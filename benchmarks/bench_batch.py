"""Batch mode against the test server's Batch API, beside the online engine on the same texts (the baseline):

    .venv/bin/python benchmarks/bench_batch.py [--n 3500] [--implausible 0.15] [--price-in 0.15] [--price-out 0.6]

Both run the engine (llm.engine.texts: 3 validation stages, a generation, redraws of implausible personas) over the
same synthetic records, their redraws made by a pure function (no persona sampling in the measurement). The server
(a separate process) answers a share `--implausible` of validation prompts "implausible", so slots redraw. Batch
mode's rounds are compared with their goal, validation stages + generation + the deepest redraw chain, which is
the requests of the longest slot; client CPU (getrusage of this process over the engine's run) per request sent;
and the cost at the prices, batch mode at its 0.5 discount, from the tokens the server reported.
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm.engine.rounds import Rounds  # noqa: E402
from llm.engine.stats import RunStats  # noqa: E402
from llm.engine.texts import Settings, generate_texts  # noqa: E402
from llm.testing.batches import BatchFaults  # noqa: E402
from llm.testing.faults import Faults, fetch, spawned  # noqa: E402
from llm.transport.batch.batchapi import BatchAPI  # noqa: E402
from llm.transport.cache import Cache  # noqa: E402
from llm.transport.client import Client  # noqa: E402
from llm.transport.options import ClientOptions  # noqa: E402
from llm.transport.spend import Prices, Spend  # noqa: E402

EMOTIONS = ["joy", "anger", "sadness", "pleasure", "surprise", "fear", "neutral"]
OPTIONS = ClientOptions(concurrency=64, timeout=30.0)


def records(n: int) -> list[dict]:
    return [redraw({"id": i, "emotion": EMOTIONS[i % 7]}, 0) for i in range(n)]


def redraw(record: dict, attempt: int) -> dict:
    i = record["id"] * 7919 + attempt * 104729
    return {"id": record["id"], "attempt": attempt, "emotion": record["emotion"],
            "stage1": {"age": f"{20 + i % 50}", "job": f"job {i % 13}"}, "stage2": {"region": f"region {i % 47}"},
            "stage3": {"location": f"place {i % 11}"}}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def online(url: str, recs: list[dict], spend: Spend, cache: Cache) -> tuple[list[dict], dict]:
    async with Client(url, "test-model", options=OPTIONS, cache=cache, spend=spend) as client:
        results = [r async for r in generate_texts(recs, client, settings=Settings(), redraw=redraw,
                                                   stats=RunStats())]
    return results, {"requests": client.stats.requests}


async def batch(url: str, recs: list[dict], spend: Spend, cache: Cache) -> tuple[list[dict], dict]:
    async with Client(url, "test-model", options=OPTIONS, cache=cache, spend=spend) as client:
        rounds = Rounds.over(client, await BatchAPI.checked(client, None), spend=spend, poll=0.02)
        try:
            results = [r async for r in generate_texts(recs, rounds, settings=Settings(), redraw=redraw,
                                                       stats=RunStats(), workers=len(recs))]
        finally:
            await rounds.close()
    return results, {"requests": rounds.stats.requests, "rounds": rounds.rounds}


def measure(name: str, engine, args, discount: float) -> dict:
    with spawned(Faults(implausible=args.implausible, seed=1), batch=BatchFaults(delay=0.05)) as url, \
            tempfile.TemporaryDirectory() as tmp:
        cache = Cache(Path(tmp) / "cache.sqlite")
        spend = Spend(Prices(args.price_in, args.price_out, discount))
        recs = records(args.n)
        start_cpu, start = cpu(), time.monotonic()
        results, counts = asyncio.run(engine(url, recs, spend, cache))
        wall, used = time.monotonic() - start, cpu() - start_cpu
        cache.close()
        served = fetch(url)["served"]
    longest = max(sum(len(r["validation"]) for r in res["rejected_draws"]) + res["usage"]["requests"]
                  for res in results)
    row = {"engine": name, "texts": len(results), "requests": counts["requests"], "answered": served,
           "redraws": sum(r["persona_draws"] - 1 for r in results),
           "deepest_redraw_chain": max(r["persona_draws"] - 1 for r in results),
           "longest_slot_requests": longest, "wall_s": round(wall, 1),
           "client_cpu_ms_per_request": round(1000 * used / max(1, counts["requests"]), 3),
           "cost": round(spend.spent, 6), "texts_md5": hash_of(results)}
    if "rounds" in counts:
        row["rounds"] = counts["rounds"]
    return row


def hash_of(results: list[dict]) -> str:
    from common.hashing import content_hash

    return content_hash(sorted(({k: r[k] for k in ("id", "text", "validation", "persona_draws")} for r in results),
                               key=lambda r: r["id"]))[:12]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3500)
    p.add_argument("--implausible", type=float, default=0.15)
    p.add_argument("--price-in", type=float, default=0.15)
    p.add_argument("--price-out", type=float, default=0.6)
    args = p.parse_args()
    print(f"{args.n} texts; {args.implausible:.0%} of validation prompts answered implausible; prices "
          f"{args.price_in}/{args.price_out} per million tokens", flush=True)
    rows = [measure("batch", batch, args, 0.5), measure("online", online, args, 1.0)]
    for row in rows:
        print(orjson.dumps(row).decode(), flush=True)
    b, o = rows
    met = "met" if b["rounds"] <= b["longest_slot_requests"] else "NOT met"
    print(f"rounds {b['rounds']} (goal: at most validation stages + generation + deepest redraw chain = the "
          f"longest slot's requests, {b['longest_slot_requests']}): {met}")
    print(f"client CPU per request: batch {b['client_cpu_ms_per_request']} ms (goal <= 0.2 ms: "
          f"{'met' if b['client_cpu_ms_per_request'] <= 0.2 else 'NOT met'}), online {o['client_cpu_ms_per_request']} "
          f"ms, ratio batch/online {b['client_cpu_ms_per_request'] / o['client_cpu_ms_per_request']:.2f}")
    print(f"cost: batch {b['cost']} vs online {o['cost']} (ratio {b['cost'] / o['cost']:.3f}); same texts: "
          f"{b['texts_md5'] == o['texts_md5']}", flush=True)


if __name__ == "__main__":
    main()
