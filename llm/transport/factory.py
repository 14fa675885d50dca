"""The one factory of clients: every `Client` of a run, a judge or a Ray shard is built by `build_client`, under
the one cache-scope rule of `cache_scope`; `connect` gives a command its checked client for a list of endpoints
(the embedded SmolLM2 server when there is none, a `Pool` for several or a weighted one); `flag_words` words
library limit errors with the command's flags.

The cache scope of a request is the identity of whatever answers it: the embedded server's model file; one
endpoint's URL; or, for a pool, the model and the sorted URLs of its endpoints (interchangeable servers of one
model: a resumed run finds an answer whichever member gave it). A prompt set's tag extends it (None for the shipped
English set, so caches from before prompt sets stay valid)."""
from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

from common.errors import UsageError

from .cache import Cache
from .client import Client
from .endpoint import Endpoint
from .limiter import LimitError
from .options import ClientOptions
from .pool import Pool
from .protocols import ChatClient, RateLimiter, Spending


def cache_scope(endpoints: Sequence[Endpoint], model: str, tag: str | None = None) -> str:
    """The cache scope of requests answered by `endpoints` serving `model` (see the module docstring)."""
    urls = sorted(e.plain_url for e in endpoints)
    scope = urls[0] if len(urls) == 1 else f"pool:{model}:{','.join(urls)}"
    return f"{scope}|{tag}" if tag else scope


def build_client(endpoint: Endpoint, model: str, options: ClientOptions, *, cache: Cache | None = None,
                 scope: str | None = None, api_key: str | None = None, limiter: RateLimiter | None = None,
                 spend: Spending | None = None, ledger: str | None = None) -> Client:
    """The Client of one endpoint: `options` scaled by its weight, a local limiter at those limits unless
    `limiter` is given (a shard's share of a global budget), its levels kept in `cache` under `ledger` (default:
    the endpoint's URL) so a rerun keeps them; the run's `spend` budget if any; no cache: an in-memory one, under
    the endpoint's scope."""
    mine = options.for_endpoint(endpoint)
    if limiter is None:
        limiter = mine.limiter(None if cache is None else cache.ledger(ledger or endpoint.plain_url))
    return Client(endpoint.url, model, api_key=api_key, options=mine, cache=cache, scope=scope, limiter=limiter,
                  spend=spend)


def build_clients(endpoints: Sequence[Endpoint], model: str, options: ClientOptions, *, cache: Cache,
                  tag: str | None = None, api_key: str | None = None,
                  limiters: Callable[[], list[RateLimiter]] | None = None, spend: Spending | None = None
                  ) -> ChatClient:
    """A `Client` for one endpoint of weight 1, else a `Pool` routing by weight; one cache scope and one budget
    for all."""
    scope = cache_scope(endpoints, model, tag)
    given = limiters() if limiters is not None else [None] * len(endpoints)
    clients = [build_client(e, model, options, cache=cache, scope=scope, api_key=api_key, limiter=limiter,
                            spend=spend) for e, limiter in zip(endpoints, given)]
    if len(endpoints) == 1 and endpoints[0].weight == 1:
        return clients[0]
    return Pool(clients, [e.weight for e in endpoints])


@contextmanager
def flag_words() -> Iterator[None]:
    """A `LimitError` raised inside the block becomes a UsageError naming the limit by its flag (--rpm, --tpm,
    --concurrency): "one request may use 308 tokens but --tpm is 100"."""
    try:
        yield
    except LimitError as exc:
        raise UsageError(exc.worded(f"--{exc.limit}")) from None


async def _embedded(stack: AsyncExitStack) -> tuple[Endpoint, str, str]:
    """(endpoint, model, cache scope) of the embedded server (llm.transport.embedded), started on `stack`."""
    from .embedded import MODEL, NotInstalled, embedded_server, gguf_path

    try:
        model = gguf_path()
    except NotInstalled as exc:
        raise UsageError(f"no --base-url and {exc}") from None
    url = await stack.enter_async_context(embedded_server(model))
    return Endpoint(url), MODEL, f"embedded:{model.name}"  # the file served: its answers are not another file's


@asynccontextmanager
async def embedded_early(wanted: bool) -> AsyncIterator[None]:
    """If `wanted` (a run that will `connect` to no endpoint), the embedded server started at once
    (llm.transport.embedded.started_early), its start-up overlapping what the block does before `connect` takes
    it; nothing otherwise, nor where the model is not installed (`connect` says so)."""
    from .embedded import NotInstalled, gguf_path, started_early

    try:
        model = gguf_path() if wanted else None
    except NotInstalled:
        model = None
    if model is None:
        yield
        return
    async with started_early(model):
        yield


@asynccontextmanager
async def connect(endpoints: Sequence[Endpoint], model: str | None, options: ClientOptions, cache: str | Path,
                  tag: str | None = None, spending: Callable[[Cache], Spending] | None = None
                  ) -> AsyncIterator[ChatClient]:
    """A checked client of `endpoints` serving `model` (none: the embedded server, started here and stopped on
    exit), its answers cached in the SQLite file `cache` under the scope of `cache_scope` extended by `tag`. The
    API key comes from the environment variable `options.api_key_env`. Limit errors inside the block are worded
    with their flags (`flag_words`). `spending(cache)` makes the run's budget (llm.transport.spend), if any."""
    async with AsyncExitStack() as stack:
        stack.enter_context(flag_words())
        cache_file = Cache(cache)
        stack.callback(cache_file.close)
        spend = spending(cache_file) if spending is not None else None
        if endpoints:
            client = build_clients(endpoints, model, options, cache=cache_file, tag=tag,
                                   api_key=os.environ.get(options.api_key_env), spend=spend)
        else:
            endpoint, model, scope = await _embedded(stack)
            client = build_client(endpoint, model, options, cache=cache_file,
                                  scope=f"{scope}|{tag}" if tag else scope, spend=spend, ledger=scope)
        yield await stack.enter_async_context(client)
