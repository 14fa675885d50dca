"""The transport seam: a Client over a MockTransport, and the fault server reached in process without sockets."""
import asyncio
import socket

import orjson
import pytest

from common.errors import UsageError
from llm.testing.faults import FaultServer, Faults
from llm.transport.body import TooLarge
from llm.transport.client import RequestFailed
from llm.transport.http import MockTransport, Reply, Request, Unreachable
from tests.support import clients

HELLO = [{"role": "user", "content": "hello"}]
MODELS = Reply(200, {}, orjson.dumps({"data": [{"id": "test-model", "owned_by": "vllm"}]}))


def answer(text: str) -> Reply:
    return Reply(200, {"content-type": "application/json"},
                 orjson.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}))


@pytest.fixture
def no_sockets(monkeypatch):
    """Any socket connection fails the test."""
    def refuse(*_):
        raise AssertionError("a socket was opened")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


async def test_a_handler_sees_the_request_and_its_reply_is_the_answer(no_sockets):
    seen: list[Request] = []

    def handler(request: Request) -> Reply:
        seen.append(request)
        return MODELS if request.url.endswith("/models") else answer("hi there")

    async with clients.client("http://nowhere.test/v1", api_key="sk-abc", transport=MockTransport(handler)) as c:
        got = await c.chat(HELLO, temperature=0.5)
    assert got.content == "hi there"
    models, chat = seen
    assert (models.method, models.url, models.body) == ("GET", "http://nowhere.test/v1/models", None)
    assert (chat.method, chat.url) == ("POST", "http://nowhere.test/v1/chat/completions")
    assert chat.headers["Authorization"] == "Bearer sk-abc" and chat.headers["Content-Type"] == "application/json"
    assert orjson.loads(chat.body) == {"model": "test-model", "messages": HELLO, "temperature": 0.5, "max_tokens": 256}


async def test_reply_headers_are_read_whatever_their_case():
    calls = []

    async def handler(request: Request) -> Reply:
        if request.url.endswith("/models"):
            return MODELS
        calls.append(request)
        if len(calls) == 1:
            return Reply(429, {"retry-after": "0.3"}, b'{"error": {"message": "slow down"}}')
        return answer("fine")

    async with clients.client("http://x.test/v1", max_attempts=2, transport=MockTransport(handler)) as c:
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert (await c.chat(HELLO)).content == "fine"
        assert loop.time() - start >= 0.3  # the lower-case Retry-After was honoured
    assert c.stats.faults == {"HTTP 429": 1}


async def test_timeouts_caps_and_drops_count_as_the_faults_they_are_over_http():
    script = iter(["slow", "huge", "drop", "ok"])

    async def handler(request: Request) -> Reply:
        if request.url.endswith("/models"):
            return MODELS
        step = next(script)
        if step == "slow":
            await asyncio.sleep(5)
        if step == "drop":
            raise Unreachable("ServerDisconnectedError")
        return answer("x" * 2000 if step == "huge" else "made it")

    async with clients.client("http://x.test/v1", timeout=0.2, max_attempts=4, max_response_bytes=1000,
                              transport=MockTransport(handler)) as c:
        assert (await c.chat(HELLO)).content == "made it"
    assert c.stats.faults == {"timeout": 1, "response over 1000 bytes": 1, "ServerDisconnectedError": 1}


async def test_the_cap_holds_for_any_handler():
    with pytest.raises(TooLarge):
        await MockTransport(lambda r: Reply(200, {}, b"x" * 11)).send(Request("GET", "u"), cap=10, timeout=1)


async def test_an_unreachable_endpoint_is_a_usage_error_at_entry():
    def handler(request: Request) -> Reply:
        raise Unreachable("ClientConnectorError", "Cannot connect to host x.test:80")

    with pytest.raises(UsageError, match="cannot reach http://x.test/v1: Cannot connect to host x.test:80"):
        async with clients.client("http://x.test/v1", transport=MockTransport(handler)):
            pass


async def test_the_fault_server_in_process_injects_its_faults_without_a_socket(no_sockets):
    server = FaultServer(Faults(p500=1.0))  # never entered: no port
    async with clients.in_process(server, max_attempts=3) as c:
        with pytest.raises(RequestFailed, match="gave up after 3 attempts, last: HTTP 500"):
            await c.chat(HELLO)
    assert server.record.statuses == {500: 3} and len(server.record.arrivals) == 3


async def test_the_fault_server_in_process_answers_as_over_http():
    over_http, in_process = FaultServer(), FaultServer()
    async with over_http:
        async with clients.client(over_http.url) as c:
            sent = await c.chat(HELLO, schema={"type": "object", "properties": {"text": {"type": "string"}}})
    async with clients.in_process(in_process) as c:
        assert await c.chat(HELLO, schema={"type": "object", "properties": {"text": {"type": "string"}}}) == sent
    assert over_http.record.completed == in_process.record.completed  # the same bytes went out


async def test_the_fault_server_in_process_refuses_a_wrong_key_and_an_unknown_model():
    server = FaultServer(Faults(api_key="sk-right"))
    with pytest.raises(UsageError, match="refused the API key"):
        async with clients.in_process(server, api_key="sk-wrong"):
            pass
    with pytest.raises(UsageError, match="unknown model 'other'"):
        async with clients.in_process(server, "other", api_key="sk-right"):
            pass
