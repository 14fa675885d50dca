"""`python -m llm.generate --n 3500 --out data.jsonl`: personas from the model, validated by an LLM in three
stages, each turned into a short text expressing its emotion. Rerun the same command to resume."""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import orjson
from tqdm import tqdm

from model.cli import Parser, positive_int, run
from model.errors import UsageError
from model.records import atomic_binary

from .cache import Cache
from .client import Client
from .dialects import DIALECTS
from .jsonl import Appender, recover
from .limiter import Limiter
from .pipeline import Settings, generate_texts
from .stats import RunStats

_MATCHING = ("profile", "domain", "seed", "emotion")  # what a resumed result must share with its slot


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def parse(argv: list[str] | None):
    from model.emotions import DEFAULT, PRESETS

    p = Parser(prog="python -m llm.generate", description=__doc__)
    p.add_argument("--n", type=positive_int, required=True, help="number of texts")
    p.add_argument("--out", required=True, help="results JSONL (appended to, and resumed from, if it exists)")
    p.add_argument("--profile", default="jp", help="profile name (jp, us) or path to a profile JSON")
    p.add_argument("--domain", help="scenario domain name (sns, workplace) or path to a domain JSON")
    p.add_argument("--emotions", default=DEFAULT, help=f"preset ({', '.join(PRESETS)}) or comma-separated labels")
    p.add_argument("--seed", type=int, default=0, help="root seed of the persona model")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 "
                   "(default: start the embedded SmolLM2 llama.cpp server)")
    p.add_argument("--model", help="model name at --base-url")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--dialect", default="auto", choices=("auto", *DIALECTS), help="how to ask for JSON output")
    p.add_argument("--rpm", type=positive_int, help="requests per minute (default: unlimited)")
    p.add_argument("--tpm", type=positive_int, help="tokens per minute (default: unlimited)")
    p.add_argument("--concurrency", type=positive_int, help="requests in flight (default 16; 2 embedded)")
    p.add_argument("--timeout", type=_non_negative, default=60.0, help="seconds per request")
    p.add_argument("--max-attempts", type=positive_int, default=6, help="tries per request (429, 5xx, timeouts)")
    p.add_argument("--max-draws", type=positive_int, default=20, help="personas tried per text")
    p.add_argument("--temperature", type=_non_negative, default=1.2, help="generation temperature (paper: 1.2)")
    p.add_argument("--no-validate", action="store_true", help="skip the three LLM validation stages")
    p.add_argument("--no-label-leak", action="store_true", help="regenerate texts that name their emotion")
    p.add_argument("--cache", help="request cache (default: OUT.cache.sqlite)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary on stderr")
    args = p.parse_args(argv)
    if (args.base_url is None) != (args.model is None):
        p.error("--base-url and --model go together (without both, the embedded SmolLM2 server is used)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: {'it is a directory' if out.is_dir() else 'no such directory'}")

    from model.emotions import resolve_emotions
    from model.profile import load_profile
    from model.records import sample_records
    from model.sample import enable_compilation_cache

    enable_compilation_cache()
    emotions = resolve_emotions(args.emotions)
    profile = load_profile(args.profile, args.domain)
    records = sample_records(profile, range(args.n), args.seed, emotions)
    done = recover(out)
    for record in records:
        if record["id"] in done and (bad := [k for k in _MATCHING if done[record["id"]].get(k) != record[k]]):
            raise UsageError(f"{out} holds text {record['id']} from another run (different {', '.join(bad)}); "
                             "give another --out")

    def redraw(record: dict, attempt: int) -> dict:
        return sample_records(profile, [record["id"]], args.seed, emotions, attempt=attempt)[0]

    redraw(records[0], 1)  # compile the one-record sampler now rather than stall the event loop mid-run
    domain = profile.domain
    settings = Settings(
        labels=profile.labels,
        text_format=domain.format if domain else "short message",
        context=domain.description if domain else None,
        temperature=args.temperature,
        validate=not args.no_validate,
        forbid_label=args.no_label_leak,
        max_draws=args.max_draws,
    )
    todo = [r for r in records if r["id"] not in done]
    try:
        return asyncio.run(_generate(args, out, todo, settings, redraw, len(records) - len(todo)))
    except asyncio.CancelledError:  # SIGTERM
        raise KeyboardInterrupt from None


async def _generate(args, out: Path, todo: list[dict], settings: Settings, redraw, resumed: int) -> int:
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    stats = RunStats(resumed=resumed)
    async with AsyncExitStack() as stack:
        base_url, model, scope = args.base_url, args.model, None
        if base_url is None:
            from .embedded import GGUF, MODEL, embedded_server

            base_url, model, scope = await stack.enter_async_context(embedded_server()), MODEL, f"embedded:{GGUF}"
        concurrency = args.concurrency or (16 if args.base_url else 2)
        client = await stack.enter_async_context(Client(
            base_url, model,
            api_key=os.environ.get(args.api_key_env) if args.base_url else None,
            dialect=args.dialect,
            limiter=Limiter(rpm=args.rpm, tpm=args.tpm, concurrency=concurrency),
            cache=Cache(args.cache or f"{out}.cache.sqlite"),
            scope=scope,
            timeout=args.timeout,
            max_attempts=args.max_attempts,
        ))
        stack.callback(client.cache.close)
        writer = stack.enter_context(Appender(out))
        bar = stack.enter_context(tqdm(total=args.n, initial=args.n - len(todo), unit="text",
                                       disable=args.quiet, file=sys.stderr, dynamic_ncols=True))
        async for result in generate_texts(todo, client, settings=settings, redraw=redraw, stats=stats):
            writer.write(result)
            bar.update()
            s = client.stats
            bar.set_postfix(tokens=s.prompt_tokens + s.completion_tokens, retries=s.retries, refresh=False)
    summary = stats.summary(client.stats)
    with atomic_binary(f"{out}.summary.json") as f:
        f.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if not args.quiet:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
    if stats.failures:
        print(f"error: {len(stats.failures)} of {args.n} texts failed (see {out}.summary.json); "
              "rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
