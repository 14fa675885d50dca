"""One aiohttp session speaking OpenAI's chat-completions API, behind the limiter and the cache."""
from __future__ import annotations

import asyncio
import email.utils
import re
import time
from types import SimpleNamespace

import aiohttp
import orjson
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from common.errors import UsageError
from common.hashing import canonical, hexdigest

from .cache import Cache
from .dialects import Dialect, detect, find_dialect
from .limiter import Limiter
from .protocols import ClientStats, Completion, RateLimiter


class RequestFailed(Exception):
    """A request that cannot succeed: a 4xx other than 401/403/404/429, or retries exhausted."""


class _Transient(Exception):
    """Worth retrying: 429, 5xx, timeout, dropped connection, unreadable response."""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: str | None) -> float | None:
    """'20ms', '1.5s', '6m0s', '2' (seconds) -> seconds; None when absent or unreadable."""
    if not value:
        return None
    parts = _DURATION.findall(value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    return sum(float(n) * _UNIT[u or None] for n, u in parts)


def retry_after(headers) -> float | None:
    """Seconds the server asks us to wait: retry-after-ms, or Retry-After in seconds or as an HTTP date."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None


def _error_message(raw: bytes) -> str:
    try:
        error = orjson.loads(raw)["error"]
        return str(error.get("message", error) if isinstance(error, dict) else error)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace").strip()


_JSON = {"Content-Type": "application/json"}


class Client:
    """`async with Client(...) as c: await c.chat(messages, schema=...)`.

    Entering checks the endpoint (reachable, key accepted, model served) and settles the dialect;
    a problem there raises UsageError. Every HTTP attempt passes the limiter; completed responses
    go to the cache, keyed by the full request body plus `scope` (the endpoint's identity):
    `common.hashing.content_hash({"scope": scope, "body": body})`, so existing cache files stay valid.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        dialect: str = "auto",
        limiter: RateLimiter | None = None,
        cache: Cache | None = None,
        scope: str | None = None,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff: tuple[float, float] = (0.5, 30.0),
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.limiter = limiter if limiter is not None else Limiter()
        self.cache = cache if cache is not None else Cache()
        self.stats = ClientStats()
        self.dialect: Dialect | None = None if dialect == "auto" else find_dialect(dialect)
        self._api_key = api_key
        self._scope = scope or self.base_url
        # content_hash({"scope": ..., "body": ...}) is sha256 of b'{"body":<sorted body>,"scope":<scope>}': the
        # sorted body is serialised once, hashed for the key and sent as the payload (key order is immaterial).
        self._key_tail = b',"scope":' + orjson.dumps(self._scope) + b"}"
        self._chat_url = f"{self.base_url}/chat/completions"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_attempts = max_attempts
        self._wait = wait_exponential_jitter(multiplier=backoff[0], max=backoff[1], jitter=backoff[0])
        self._session: aiohttp.ClientSession | None = None
        self._chars_to_tokens = 0.35  # raised to 1.25x the largest ratio seen in `usage`

    async def __aenter__(self) -> Client:
        n = self.limiter.concurrency
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=n, limit_per_host=n), headers=headers, timeout=self._timeout
        )
        try:
            await self._check()
        except BaseException:
            await self._session.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._session.close()

    @property
    def concurrency(self) -> int:
        return self.limiter.concurrency

    def flush(self) -> None:
        """Commit the responses the cache holds in memory (see `Cache.flush`)."""
        self.cache.flush()

    async def _check(self) -> None:
        url = f"{self.base_url}/models"
        try:
            async with self._session.get(url) as resp:
                status, raw = resp.status, await resp.read()
        except aiohttp.InvalidURL:
            raise UsageError(f"not a valid base URL: {self.base_url!r}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise UsageError(f"cannot reach {self.base_url}: {exc or type(exc).__name__}") from None
        if status in (401, 403):
            raise UsageError(f"{self.base_url} refused the API key (HTTP {status}): {_error_message(raw)}")
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
            raise UsageError(f"unknown model {self.model!r}; {self.base_url} serves: {', '.join(sorted(ids))}")
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
        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            body["seed"] = seed
        if schema is not None:
            body["response_format"] = self.dialect.response_format(schema_name, schema)
        payload = canonical(body)
        key = hexdigest(b'{"body":' + payload + self._key_tail)  # == content_hash({"scope": ..., "body": body})
        data = self.cache.get(key)
        cached = data is not None
        if cached:
            self.stats.cache_hits += 1
        else:
            data = await self._send(body, payload)
            self.cache.put(key, data)
        return Completion(data["choices"][0]["message"]["content"], data.get("usage") or {}, cached)

    async def _send(self, body: dict, payload: bytes) -> dict:
        """`_post` until it succeeds, at most `max_attempts` times. The first attempt goes out bare: most requests
        succeed, and building tenacity's retry state per request was a fifth of the client's CPU. After a transient
        failure tenacity takes over, its exponential backoff with jitter continuing from the first failure."""
        try:
            return await self._post(body, payload)
        except _Transient as exc:
            last = exc
        if self._max_attempts > 1:
            self._count_retry(None)
            await asyncio.sleep(self._backoff_after(1))
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(_Transient),
                wait=lambda state: self._backoff_after(state.attempt_number + 1),
                stop=stop_after_attempt(self._max_attempts - 1),
                before_sleep=self._count_retry,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        return await self._post(body, payload)
            except _Transient as exc:
                last = exc
        raise RequestFailed(f"gave up after {self._max_attempts} attempts, last: {last}") from None

    def _backoff_after(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt (tenacity's exponential backoff with jitter)."""
        return self._wait(SimpleNamespace(attempt_number=failures))

    def _count_retry(self, _state) -> None:
        self.stats.retries += 1

    def _fault(self, kind: str) -> _Transient:
        self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1
        return _Transient(kind)

    def _estimate(self, body: dict) -> int:
        chars = sum(len(m["content"]) for m in body["messages"])
        return int(chars * self._chars_to_tokens) + 8 * len(body["messages"]) + body["max_tokens"]

    async def _post(self, body: dict, payload: bytes) -> dict:
        async with self.limiter.admit(self._estimate(body)) as permit:
            self.stats.requests += 1
            try:
                async with self._session.post(self._chat_url, data=payload, headers=_JSON) as resp:
                    status, headers, raw = resp.status, resp.headers, await resp.read()
            except asyncio.TimeoutError:
                raise self._fault("timeout") from None
            except aiohttp.ClientError as exc:
                raise self._fault(type(exc).__name__) from None
            self._observe(headers)
            if status == 429:
                self.limiter.throttled(permit, retry_after(headers))
                raise self._fault("HTTP 429")
            if status >= 500:
                raise self._fault(f"HTTP {status}")
            if status in (401, 403):
                raise UsageError(f"{self.base_url} refused the API key (HTTP {status}): {_error_message(raw)}")
            if status == 404:
                raise UsageError(f"HTTP 404 for model {self.model!r} at {self.base_url}: {_error_message(raw)}")
            if status >= 400:
                raise RequestFailed(f"HTTP {status}: {_error_message(raw)}")
            try:
                data = orjson.loads(raw)
                if not isinstance(data["choices"][0]["message"]["content"], str):
                    raise TypeError
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
                raise self._fault("malformed response") from None
            self._account(body, data.get("usage"), permit)
            self.limiter.succeeded()
            return data

    def _account(self, body: dict, usage, permit) -> None:
        if not isinstance(usage, dict):
            return
        prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        self.stats.prompt_tokens += prompt
        self.stats.completion_tokens += completion
        self.limiter.settle(permit, int(usage.get("total_tokens", prompt + completion)))
        chars = sum(len(m["content"]) for m in body["messages"])
        if chars:
            self._chars_to_tokens = max(self._chars_to_tokens, 1.25 * prompt / chars)

    def _observe(self, headers) -> None:
        """Pause when the server says a quota is spent until its reset."""
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
            if remaining is not None and reset is not None and remaining.strip() in ("0", "-0"):
                self.limiter.pause(reset)
