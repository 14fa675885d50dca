"""The LLM connection of a command line (`llm.generate`, `eval.judge`): the options they share, the checked
`Client` those options describe (on the embedded SmolLM2 server when there is no --base-url), and the wording of
library errors in the options' own words."""
from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

from common.cli import positive_int, seconds
from common.errors import UsageError

from .body import MAX_RESPONSE_BYTES
from .cache import Cache
from .client import Client
from .dialects import DIALECTS
from .limiter import Limiter, LimitError


def add_client_options(p) -> None:
    """Everything about the connection but --base-url and --model (which each command words its own way)."""
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--dialect", default="auto", choices=("auto", *DIALECTS), help="how to ask for JSON output")
    p.add_argument("--rpm", type=positive_int, help="requests per minute (default: unlimited)")
    p.add_argument("--tpm", type=positive_int, help="tokens per minute (default: unlimited)")
    p.add_argument("--concurrency", type=positive_int,
                   help="requests in flight (default 16; the embedded server batches them)")
    p.add_argument("--timeout", type=seconds, default=60.0, help="seconds per request (finite, > 0)")
    p.add_argument("--max-attempts", type=positive_int, default=6, help="tries per request (429, 5xx, timeouts)")
    p.add_argument("--max-response-bytes", type=positive_int, default=MAX_RESPONSE_BYTES,
                   help="longest response body accepted, after decompression (default 8 MiB)")


@contextmanager
def flag_words() -> Iterator[None]:
    """A `LimitError` raised inside the block becomes a UsageError naming the limit by its flag (--rpm, --tpm,
    --concurrency): "one request may use 308 tokens but --tpm is 100"."""
    try:
        yield
    except LimitError as exc:
        raise UsageError(exc.worded(f"--{exc.limit}")) from None


async def _embedded(stack: AsyncExitStack) -> tuple[str, str, str]:
    """(base URL, model, cache scope) of the embedded server (llm.transport.embedded), started on `stack`."""
    from .embedded import MODEL, NotInstalled, embedded_server, gguf_path

    try:
        model = gguf_path()
    except NotInstalled as exc:
        raise UsageError(f"no --base-url and {exc}") from None
    url = await stack.enter_async_context(embedded_server(model))
    return url, MODEL, f"embedded:{model.name}"  # the file served: its answers are not another file's


@asynccontextmanager
async def embedded_early(args) -> AsyncIterator[None]:
    """With no --base-url (and no --ray), the embedded server started at once (llm.transport.embedded.started_early),
    its start-up overlapping what the block does before `connect`, which takes it; nothing otherwise, nor where the
    model is not installed (`connect` says so)."""
    from .embedded import NotInstalled, gguf_path, started_early

    try:
        model = None if args.base_url is not None or getattr(args, "ray", None) is not None else gguf_path()
    except NotInstalled:
        model = None
    if model is None:
        yield
        return
    async with started_early(model):
        yield


@asynccontextmanager
async def connect(args, cache: str | Path, tag: str | None = None) -> AsyncIterator[Client]:
    """A checked Client for parsed options (`base_url`, `model` and add_client_options'), answers cached in the
    SQLite file `cache` (under a scope extended by `tag`, e.g. a prompt set's); with no base_url, on the embedded
    server, stopped on exit. Limit errors inside the block are worded with their flags (`flag_words`)."""
    async with AsyncExitStack() as stack:
        stack.enter_context(flag_words())
        url, model, scope = args.base_url, args.model, None
        if args.base_url is None:
            url, model, scope = await _embedded(stack)
        if tag:
            scope = f"{scope or url.rstrip('/')}|{tag}"
        concurrency = args.concurrency or 16
        cache_file = Cache(cache)
        stack.callback(cache_file.close)
        yield await stack.enter_async_context(Client(
            url, model,
            api_key=os.environ.get(args.api_key_env) if args.base_url else None,
            dialect=args.dialect,
            limiter=Limiter(rpm=args.rpm, tpm=args.tpm, concurrency=concurrency),
            cache=cache_file,
            scope=scope,
            timeout=args.timeout,
            max_attempts=args.max_attempts,
            max_response_bytes=args.max_response_bytes,
        ))
