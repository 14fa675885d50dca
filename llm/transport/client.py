"""OpenAI's chat-completions API over a transport (llm.transport.http), behind the limiter and the cache."""
from __future__ import annotations

import asyncio
from contextlib import contextmanager
from types import SimpleNamespace

import orjson
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from common.errors import UsageError
from common.hashing import canonical, hexdigest

from .body import ACCEPT_ENCODING, TooLarge, Undecodable
from .cache import Cache
from .dialects import Dialect, detect, find_dialect
from .http import AiohttpTransport, InvalidURL, Reply, Request, Transport, Unreachable
from .options import ClientOptions
from .protocols import ClientStats, Completion, RateLimiter, Spending
from .credentials import url_credentials
from .redact import error_message, redact, scrub
from .usage import believed
from .waits import honoured, parse_duration, retry_after


class RequestFailed(Exception):
    """A request that cannot succeed: a 4xx other than 401/403/404/429, or retries exhausted."""


class _Transient(Exception):
    """Worth retrying: 429, 5xx, timeout, dropped connection, unreadable response; `wait`: the least seconds before
    the retry (a 429's Retry-After)."""

    def __init__(self, kind: str, wait: float = 0.0):
        super().__init__(kind)
        self.wait = wait


def completion(data: dict, cached: bool, payload: bytes, max_tokens: int) -> Completion:
    """The Completion of a response body (`choices[0].message.content`) to the request `payload`, its usage where it
    could be true (llm.transport.usage)."""
    return Completion(data["choices"][0]["message"]["content"], believed(data.get("usage"), len(payload), max_tokens)
                      or {}, cached)


UNUSABLE_WAIT = "server asked for an unusable wait"  # the fault kind of a wait over max_wait, infinite or unreadable


# The most the prompt estimate learns from `usage` (a byte-level tokenizer needs at most 4 tokens for a character,
# plus the 1.25 margin): a server reporting absurd usage cannot raise every estimate past --tpm and stop the run.
_MAX_TOKENS_PER_CHAR = 5.0


class Client:
    """`async with Client(...) as c: await c.chat(messages, schema=...)`.

    Requests go through `transport` (llm.transport.http): HTTP over aiohttp by default, or a `MockTransport`
    that answers in process. Entering checks the endpoint (reachable, key accepted, model served) and settles the dialect;
    a problem there raises UsageError. Every HTTP attempt passes the limiter; completed responses
    go to the cache, keyed by the full request body plus `scope` (the endpoint's identity):
    `common.hashing.content_hash({"scope": scope, "body": body})`, so existing cache files stay valid. `options`
    (llm.transport.options) holds the timeout, retries, backoff, response cap and dialect; the limiter defaults to a
    local one at the options' limits.

    Credentials in the base URL (`https://user:password@host/v1`) become every request's Basic auth and leave the
    URL (so no message, summary or cache scope holds them); with an API key too they are a UsageError.

    Hostile servers: a body is read at most `max_response_bytes` (after decompression) and a longer one is a failed
    attempt, retried like a malformed body and never cached; `usage` counts only when it could be true
    (llm.transport.usage: else `stats.bad_usage` counts it and the limiter keeps its estimate); a wait the server
    asks for (Retry-After, x-ratelimit-reset-*) is honoured only up to `options.max_wait` seconds
    (llm.transport.waits: a longer, infinite or unreadable one is a fault, `UNUSABLE_WAIT`, and the request is
    retried under the normal backoff); server text in our error messages is redacted, and the API key (or the URL's
    password) is taken out of every decoded body, in any JSON escaping, before it is returned or cached.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        options: ClientOptions = ClientOptions(),
        limiter: RateLimiter | None = None,
        cache: Cache | None = None,
        scope: str | None = None,
        spend: Spending | None = None,
        transport: Transport | None = None,
    ):
        base_url, self._basic, password = url_credentials(base_url, api_key)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.options = options
        self.limiter = limiter if limiter is not None else options.limiter()
        self.cache = cache if cache is not None else Cache()
        self.stats = ClientStats()
        self.spend = spend  # a --max-cost budget (llm.transport.spend), or None
        self.dialect: Dialect | None = None if options.dialect == "auto" else find_dialect(options.dialect)
        self._secret = api_key or password  # kept out of everything we print or store
        self._max_bytes = options.max_response_bytes
        self._scope = scope or self.base_url
        # content_hash({"scope": ..., "body": ...}) is sha256 of b'{"body":<sorted body>,"scope":<scope>}': the
        # sorted body is serialised once, hashed for the key and sent as the payload (key order is immaterial).
        self._key_tail = b',"scope":' + orjson.dumps(self._scope) + b"}"
        self._chat_url = f"{self.base_url}/chat/completions"
        first, longest = options.backoff
        self._wait = wait_exponential_jitter(multiplier=first, max=longest, jitter=first)
        self._transport = transport if transport is not None else AiohttpTransport(self.limiter.concurrency)
        self._headers = {"Accept-Encoding": ACCEPT_ENCODING}
        if api_key or self._basic:
            self._headers["Authorization"] = f"Bearer {api_key}" if api_key else self._basic
        self._json_headers = self._headers | {"Content-Type": "application/json"}
        self._chars_to_tokens = 0.35  # raised to 1.25x the largest ratio seen in `usage`
        self._halt: Exception | None = None  # see `halt`
        self._waiting: set[asyncio.Task] = set()  # tasks waiting for the limiter or a backoff: cancelled by `halt`

    async def __aenter__(self) -> Client:
        try:
            await self._check()
        except BaseException:
            await self._transport.aclose()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._transport.aclose()

    @property
    def concurrency(self) -> int:
        return self.limiter.concurrency

    async def call(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
                   cap: int | None = None, timeout: float | None = None) -> Reply:
        """One exchange with `base_url + path` through the client's transport, with its credentials, outside the
        limiter and the cache and without retries (the Batch API's calls: llm.transport.batch.batchapi); `cap`
        and `timeout` default to the options'. Raises what the transport raises."""
        headers = self._headers if content_type is None else self._headers | {"Content-Type": content_type}
        return await self._transport.send(Request(method, self.base_url + path, headers, body),
                                          cap=cap or self._max_bytes, timeout=timeout or self.options.timeout)

    def flush(self) -> None:
        """Commit the responses the cache holds in memory (see `Cache.flush`), and what they cost."""
        self.cache.flush()
        if self.spend is not None:
            self.spend.flush()

    def halt(self, reason: Exception) -> None:
        """Send nothing more: every later attempt raises `reason`, and requests waiting for the limiter or for a
        retry's backoff are cancelled; a request in flight ends, its answer cached (in memory when the disk refuses
        it: `unstored`). A cache whose commit the system refused halts the client by itself."""
        self._halt = self._halt or reason
        for task in list(self._waiting):
            task.cancel()

    @property
    def halted(self) -> bool:
        return self._halt is not None or self.cache.failed is not None

    @property
    def unstored(self) -> int:
        """Answers received that the cache could not store (see `Cache.unstored`)."""
        return self.cache.unstored

    def _go_ahead(self) -> None:
        """Raise the reason the client is halted, if it is."""
        if reason := self._halt or self.cache.failed:
            self.halt(reason)
            raise reason

    @contextmanager
    def _idle(self):
        """The current task is waiting (cancelled if the client is halted meanwhile)."""
        task = asyncio.current_task()
        self._waiting.add(task)
        try:
            yield
        finally:
            self._waiting.discard(task)

    async def _pause(self, seconds: float) -> None:
        with self._idle():
            await asyncio.sleep(seconds)

    async def _check(self) -> None:
        url = f"{self.base_url}/models"
        try:
            status, raw = (reply := await self.call("GET", "/models")).status, reply.body
        except InvalidURL:
            raise UsageError(f"not a valid base URL: {self.base_url!r}") from None
        except (Unreachable, asyncio.TimeoutError) as exc:
            why = redact(str(exc), self._secret) or type(exc).__name__
            raise UsageError(f"cannot reach {self.base_url}: {why}") from None
        except TooLarge:
            raise UsageError(f"{url} sent more than {self._max_bytes} bytes") from None
        except Undecodable as exc:
            raise UsageError(f"{url} sent an undecodable body ({exc})") from None
        if status in (401, 403):
            raise UsageError(f"{self.base_url} refused the API key (HTTP {status}): {self._error(raw)}")
        if status != 200:  # no model list here: trust the configuration
            self.dialect = self.dialect or detect(set())
            return
        try:
            models = orjson.loads(raw)["data"]
            ids = {m["id"] for m in models}
            owners = {str(m.get("owned_by", "")) for m in models}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise UsageError(f"{url} did not return an OpenAI model list") from None
        if self.model not in ids and not any(i.startswith(self.model + ":") for i in ids):
            served = redact(", ".join(sorted(map(str, ids))), self._secret)
            raise UsageError(f"unknown model {self.model!r}; {self.base_url} serves: {served}")
        self.dialect = self.dialect or detect(owners)

    async def chat(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        schema_name: str = "answer",
        temperature: float = 0.0,
        max_tokens: int = 256,
        seed: int | None = None,
    ) -> Completion:
        """One chat completion, from the cache when this exact request finished before.

        `seed` (sent to the server) tells apart requests that must not share an answer, such as a
        regeneration after a rejected text.
        """
        body, payload, key = self.request(messages, schema=schema, schema_name=schema_name, temperature=temperature,
                                          max_tokens=max_tokens, seed=seed)
        data = self.cache.get(key)
        cached = data is not None
        if cached:
            self.stats.cache_hits += 1
        elif self.spend is None:
            data = await self._send(body, payload)
            self.cache.put(key, data)
        else:  # the request's worst case is held against the budget while it is out (llm.transport.spend)
            async with self.spend.paying(self.prompt_estimate(body), max_tokens) as bill:
                data = await self._send(body, payload)
                bill.usage = believed(data.get("usage"), len(payload), max_tokens) or {}  # none or bad: its worst case
            self.cache.put(key, data)
        return completion(data, cached, payload, max_tokens)

    def request(self, messages: list[dict], *, schema: dict | None = None, schema_name: str = "answer",
                temperature: float = 0.0, max_tokens: int = 256, seed: int | None = None) -> tuple[dict, bytes, str]:
        """The request `chat` sends for these arguments: its body, the body's canonical bytes, and its cache key."""
        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            body["seed"] = seed
        if schema is not None:
            body["response_format"] = self.dialect.response_format(schema_name, schema)
        payload = canonical(body)
        return body, payload, hexdigest(b'{"body":' + payload + self._key_tail)  # == content_hash({scope, body})

    async def _send(self, body: dict, payload: bytes) -> dict:
        """`_post` until it succeeds, at most `max_attempts` times. The first attempt goes out bare: most requests
        succeed, and building tenacity's retry state per request was a fifth of the client's CPU. After a transient
        failure tenacity takes over, its exponential backoff with jitter continuing from the first failure (a retry
        after a 429 waits at least its Retry-After)."""
        try:
            return await self._post(body, payload)
        except _Transient as exc:
            last = exc
        if self.options.max_attempts > 1:
            self._count_retry(None)
            await self._pause(max(self._backoff_after(1), last.wait))
            retrying = AsyncRetrying(
                sleep=self._pause,
                retry=retry_if_exception_type(_Transient),
                wait=lambda state: max(self._backoff_after(state.attempt_number + 1), state.outcome.exception().wait),
                stop=stop_after_attempt(self.options.max_attempts - 1),
                before_sleep=self._count_retry,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        return await self._post(body, payload)
            except _Transient as exc:
                last = exc
        raise RequestFailed(f"gave up after {self.options.max_attempts} attempts, last: {last}") from None

    def _backoff_after(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt (tenacity's exponential backoff with jitter)."""
        return self._wait(SimpleNamespace(attempt_number=failures))

    def _count_retry(self, _state) -> None:
        self.stats.retries += 1

    def _fault(self, kind: str, wait: float | None = None) -> _Transient:
        self._count(kind)
        return _Transient(kind, max(0.0, wait or 0.0))

    def _count(self, kind: str) -> None:
        self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1

    def prompt_estimate(self, body: dict) -> int:
        """Prompt tokens of `body`, estimated high (a ratio learnt from `usage`, with a margin)."""
        chars = sum(len(m["content"]) for m in body["messages"])
        return int(chars * self._chars_to_tokens) + 8 * len(body["messages"])

    def _estimate(self, body: dict) -> int:
        return self.prompt_estimate(body) + body["max_tokens"]

    async def _post(self, body: dict, payload: bytes) -> dict:
        self._go_ahead()
        admission = self.limiter.admit(self._estimate(body))
        with self._idle():
            permit = await admission.__aenter__()
        try:
            self._go_ahead()
            return await self._exchange(body, payload, permit)
        finally:
            await admission.__aexit__(None, None, None)

    async def _exchange(self, body: dict, payload: bytes, permit) -> dict:
        """One admitted attempt: send, read, classify, account."""
        self.stats.requests += 1
        try:
            reply = await self._transport.send(Request("POST", self._chat_url, self._json_headers, payload),
                                               cap=self._max_bytes, timeout=self.options.timeout)
            status, headers, raw = reply.status, reply.headers, reply.body
        except asyncio.TimeoutError:
            raise self._fault("timeout") from None
        except Unreachable as exc:
            raise self._fault(exc.kind) from None
        except TooLarge:
            raise self._fault(f"response over {self._max_bytes} bytes") from None
        except Undecodable:
            raise self._fault("malformed response") from None
        self._observe(headers)
        if status == 429:
            wait = self._honoured(retry_after(headers))
            self.limiter.throttled(permit, wait)
            raise self._fault("HTTP 429", wait)
        if status >= 500:
            raise self._fault(f"HTTP {status}")
        if status in (401, 403):
            raise UsageError(f"{self.base_url} refused the API key (HTTP {status}): {self._error(raw)}")
        if status == 404:
            raise UsageError(f"HTTP 404 for model {self.model!r} at {self.base_url}: {self._error(raw)}")
        if status >= 400:
            raise RequestFailed(f"HTTP {status}: {self._error(raw)}")
        try:
            data = scrub(orjson.loads(raw), self._secret)  # no result or cache entry holds our key
            if not isinstance(data["choices"][0]["message"]["content"], str):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            raise self._fault("malformed response") from None
        self._account(body, believed(data.get("usage"), len(payload), body["max_tokens"]), permit)
        self.limiter.succeeded()
        return data

    def _error(self, raw: bytes) -> str:
        return error_message(raw, self._secret)

    def _account(self, body: dict, usage: dict[str, int] | None, permit) -> None:
        """Count a response's usage (`believed`) and settle its permit with it. Bad usage (a negative count would
        let the limiter admit more than the tpm, an absurd one stall it) is counted in `stats.bad_usage` and
        ignored: the permit keeps its estimate, as it does when the server reports no counts."""
        if usage is None:
            self.stats.bad_usage += 1
            return
        if not usage:
            return
        prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        self.stats.prompt_tokens += prompt
        self.stats.completion_tokens += completion
        self.limiter.settle(permit, max(usage.get("total_tokens", 0), prompt + completion))
        chars = sum(len(m["content"]) for m in body["messages"])
        if chars:
            ratio = min(_MAX_TOKENS_PER_CHAR, 1.25 * prompt / chars)
            self._chars_to_tokens = max(self._chars_to_tokens, ratio)

    def _observe(self, headers) -> None:
        """Pause when the server says a quota is spent until its reset."""
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is not None and remaining.strip() in ("0", "-0"):
                reset = self._honoured(parse_duration(headers.get(f"x-ratelimit-reset-{kind}")))
                if reset is not None:
                    self.limiter.pause(reset)

    def _honoured(self, seconds: float | None) -> float | None:
        """A wait the server asked for (None: it asked for none), if it is one to wait out (`waits.honoured`); an
        unusable one is counted as a fault (UNUSABLE_WAIT) and not waited out."""
        if seconds is None or honoured(seconds, self.options.max_wait):
            return seconds
        self._count(UNUSABLE_WAIT)
        return None
