"""Hostile or broken servers: huge bodies and gzip bombs, lying `usage`, texts with control characters, servers
that echo the API key, and timeouts that would disable themselves. Each server is a small aiohttp app in a thread
of the test, on 127.0.0.1, answering a bounded number of requests and stopped when its block ends."""
import asyncio
import base64
import inspect
import sqlite3
import struct
import threading
import tracemalloc
import zlib
from collections import Counter
from contextlib import contextmanager
from types import SimpleNamespace

import orjson
import pytest
from aiohttp import web

from common.cli import run
from eval.judge import main as judge_main
from llm import RunStats, Settings, generate_texts
from llm.engine.answers import MAX_TEXT_CHARS, character_problem, text_problem
from llm.engine.ask import ask
from llm.generate import main
from llm.transport.body import MAX_RESPONSE_BYTES
from llm.transport.cache import Cache
from llm.transport.client import UNUSABLE_WAIT, RequestFailed
from llm.transport.options import ClientOptions
from tests.support.clients import client
from llm.transport.limiter import Limiter
from llm.transport.redact import redact
from common.errors import UsageError

KEY = "sk-test-S3cr3tK3y0123456789abcdef"
HELLO = [{"role": "user", "content": "hello"}]
MiB = 2**20
SPACES = b" " * MiB


def completion(content: str, usage=None) -> dict:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
    return body if usage is None else {**body, "usage": usage}


def text_answer(text: str = "Finally home after a long day!", usage=None) -> web.Response:
    return web.json_response(completion(orjson.dumps({"text": text}).decode(), usage))


def fine(request: web.Request) -> web.Response:
    return text_answer()


async def model_list(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "test-model", "object": "model", "owned_by": "x"}]})


@contextmanager
def hostile(chat, *, models=model_list, limit: int = 40):
    """A server whose POST /v1/chat/completions is `chat(request)` and GET /v1/models `models(request)` (each a
    function or a coroutine function), for the
    block; yields (base URL, Counter of requests by path). After `limit` requests it answers 410 to anything."""
    seen: Counter = Counter()

    def bounded(handler):
        async def handle(request: web.Request) -> web.StreamResponse:
            seen[request.path] += 1
            if sum(seen.values()) > limit:
                return web.Response(status=410, text="the test's request budget is spent")
            answer = handler(request)
            return await answer if inspect.isawaitable(answer) else answer
        return handle

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", bounded(chat))
        app.router.add_get("/v1/models", bounded(models))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def streamed(request: web.Request, parts, encoding: str | None = None) -> web.StreamResponse:
    """A 200 whose body is the byte strings of `parts`, written one by one until the client hangs up."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                       **({"Content-Encoding": encoding} if encoding else {})})
    await resp.prepare(request)
    try:
        for part in parts:
            await resp.write(part)
        await resp.write_eof()
    except ConnectionError:  # the client stopped reading: what it should do
        pass
    return resp


def gzip_bomb(prefix: bytes, mib: int, suffix: bytes):
    """The gzip stream of prefix + `mib` MiB of spaces + suffix, made on the fly from one ~1 KiB block: after a full
    flush deflate forgets what came before, so the same MiB compresses to the same bytes wherever it stands."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    yield c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(SPACES) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(SPACES, crc)
        yield block
    tail = c.compress(suffix) + c.flush()
    size = len(prefix) + mib * MiB + len(suffix)
    yield tail[:-8] + struct.pack("<II", zlib.crc32(suffix, crc), size & 0xFFFFFFFF)


async def peak_bytes(coroutine) -> tuple[BaseException | None, int]:
    """(what `coroutine` raised, the peak of Python memory traced while it ran, threads included)."""
    tracemalloc.start()
    try:
        await coroutine
        raised = None
    except Exception as exc:
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


# ---- 1. response size cap --------------------------------------------------------------------------------------

def test_the_bomb_helper_makes_valid_gzip():
    data = b"".join(gzip_bomb(b"[", 3, b"]"))
    assert len(data) < 4000 and zlib.decompress(data, 16 + zlib.MAX_WBITS) == b"[" + SPACES * 3 + b"]"


BIG_JSON = ("50 MB JSON", lambda request: streamed(
    request, [b'{"choices":[{"message":{"content":"', *[b"a" * MiB] * 50, b'"}}]}']))
# valid JSON once inflated (512 MiB of whitespace inside it): only the cap can refuse it
BOMB = ("gzip bomb", lambda request: streamed(
    request, gzip_bomb(b'{"choices": ', 512, b'[{"message": {"content": "x"}}]}'), "gzip"))


@pytest.mark.parametrize("name, chat", [BIG_JSON, BOMB], ids=["50MB-json", "gzip-bomb"])
async def test_an_oversized_body_is_a_failed_attempt_read_no_further(tmp_path, name, chat):
    cache = Cache(tmp_path / "cache.sqlite")
    with hostile(chat) as (url, seen):
        async with client(url, cache=cache, max_attempts=2) as c:
            raised, peak = await peak_bytes(c.chat(HELLO))
    assert isinstance(raised, RequestFailed), raised
    assert str(raised) == f"gave up after 2 attempts, last: response over {MAX_RESPONSE_BYTES} bytes"
    assert seen["/v1/chat/completions"] == 2 and c.stats.retries == 1
    assert c.stats.faults == {f"response over {MAX_RESPONSE_BYTES} bytes": 2}
    assert peak < 4 * MAX_RESPONSE_BYTES, f"{name}: {peak / MiB:.0f} MiB traced"  # of a 50 MiB / 512 MiB body
    cache.flush()
    assert len(cache) == 0
    cache.close()


async def test_the_cap_is_configurable_and_counts_the_inflated_body():
    content = orjson.dumps({"text": "x" * 3000}).decode()
    packed = zlib.compress(orjson.dumps(completion(content)))
    assert len(packed) < 1000

    async def chat(request):
        return web.Response(body=packed, headers={"Content-Type": "application/json", "Content-Encoding": "deflate"})

    with hostile(chat) as (url, _):
        async with client(url, max_response_bytes=1000, max_attempts=1) as small:
            with pytest.raises(RequestFailed, match="last: response over 1000 bytes"):
                await small.chat(HELLO)
        async with client(url, max_response_bytes=4000) as big:
            assert (await big.chat(HELLO)).content == content
    with pytest.raises(UsageError, match="max_response_bytes = 0: must be at least 1"):
        client(url, max_response_bytes=0)


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "raw-deflate", "identity"])
async def test_compressed_answers_are_read(encoding):
    body = orjson.dumps(completion('{"text": "hi"}', {"prompt_tokens": 3, "completion_tokens": 2}))
    wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15, "raw-deflate": -15}.get(encoding)
    packed = body if wbits is None else (lambda c: c.compress(body) + c.flush())(
        zlib.compressobj(6, zlib.DEFLATED, wbits))
    header = "deflate" if encoding == "raw-deflate" else encoding

    async def chat(request):
        assert request.headers["Accept-Encoding"] == "gzip, deflate"  # nothing we could not inflate ourselves
        return web.Response(body=packed, headers={"Content-Type": "application/json", "Content-Encoding": header})

    with hostile(chat) as (url, _):
        async with client(url) as c:
            answer = await c.chat(HELLO)
    assert answer.content == '{"text": "hi"}' and answer.usage == {"prompt_tokens": 3, "completion_tokens": 2}


async def test_an_encoding_we_did_not_ask_for_is_a_malformed_body():
    async def chat(request):
        return web.Response(body=b"\x8b\x00", headers={"Content-Type": "application/json", "Content-Encoding": "br"})

    with hostile(chat) as (url, seen):
        async with client(url, max_attempts=2) as c:
            with pytest.raises(RequestFailed, match="last: malformed response"):
                await c.chat(HELLO)
    assert seen["/v1/chat/completions"] == 2


async def test_an_oversized_model_list_is_one_clear_error():
    async def models(request):
        return await streamed(request, [b'{"data": [', *[b" " * MiB] * 20, b"]}"])

    with hostile(fine, models=models) as (url, _):
        with pytest.raises(UsageError, match=f"/models sent more than {MAX_RESPONSE_BYTES} bytes"):
            async with client(url):
                pass


# ---- 2. usage validated ----------------------------------------------------------------------------------------

class Recording(Limiter):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.settled: list[int] = []

    def settle(self, permit, tokens: int) -> None:
        self.settled.append(tokens)
        super().settle(permit, tokens)


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": -28_000_000, "completion_tokens": 5, "total_tokens": -27_999_995},
    {"prompt_tokens": "lots", "completion_tokens": 5},
    {"prompt_tokens": 1.5}, {"prompt_tokens": True}, {"total_tokens": None, "completion_tokens": -1},
    "lots", [1, 2],
    # beyond what the request could use (its body's bytes, a chat template's tokens, its max_tokens of 16)
    {"prompt_tokens": 19_000, "completion_tokens": 5}, {"prompt_tokens": 3, "completion_tokens": 10**9},
    {"total_tokens": 10**12},
], ids=["negative", "lots", "float", "bool", "negative-completion", "a-string", "a-list", "absurd-prompt",
        "absurd-completion", "absurd-total"])
async def test_bad_usage_is_counted_and_ignored_the_estimate_kept(usage):
    async def chat(request):
        return web.json_response(completion("fine", usage))

    limiter = Recording(tpm=100_000)
    with hostile(chat) as (url, _):
        async with client(url, limiter=limiter) as c:
            counted = Counter()
            assert await ask(c, HELLO, None, str, counted, temperature=0.0, max_tokens=16, seed=None) == "fine"
            again = await c.chat(HELLO, max_tokens=16)  # from the cache: its usage is checked too
    assert again.cached and again.usage == {}
    assert c.stats.bad_usage == 1 and (c.stats.prompt_tokens, c.stats.completion_tokens) == (0, 0)
    assert limiter.settled == []  # the request keeps the tokens it reserved
    assert counted == Counter(requests=1)  # the engine counts no tokens for it


async def test_good_usage_settles_the_permit():
    async def chat(request):
        return web.json_response(completion("fine", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 0}))

    limiter = Recording()
    with hostile(chat) as (url, _):
        async with client(url, limiter=limiter) as c:
            await c.chat(HELLO)
    assert limiter.settled == [15]  # a total below its parts is not believed
    assert (c.stats.bad_usage, c.stats.prompt_tokens, c.stats.completion_tokens) == (0, 10, 5)


async def test_absurd_usage_cannot_push_every_estimate_past_the_tpm():
    async def chat(request):
        return web.json_response(completion("fine", {"prompt_tokens": 10**12, "completion_tokens": 1}))

    with hostile(chat) as (url, seen):
        async with client(url, limiter=Limiter(tpm=10**14)) as c:
            await c.chat(HELLO)
            assert c._estimate({"messages": HELLO, "max_tokens": 16}) < 100  # 5 characters, 16 tokens to write
    assert seen["/v1/chat/completions"] == 1


async def test_negative_usage_does_not_lift_the_tpm():
    arrivals: list[float] = []

    async def chat(request):
        arrivals.append(asyncio.get_running_loop().time())
        return web.json_response(completion("fine", {"prompt_tokens": -28_000_000, "completion_tokens": 0}))

    # one request reserves about 265 tokens (5 characters, 256 to write): three fit in a bucket of 802 (the burst of
    # 0.41 s less the margin), a fourth only when 260 have drained at (1000 - 802) per 0.55 s, 0.72 s later
    limiter = Limiter(tpm=1000, period=0.5, margin=0.05, burst=0.41)
    with hostile(chat) as (url, _):
        async with client(url, limiter=limiter) as c:
            for batch in (range(3), range(3, 6)):  # the second after the first's usage came back
                await asyncio.gather(*(c.chat([{"role": "user", "content": f"hi {i}"}]) for i in batch))
    assert len(arrivals) == 6 and c.stats.bad_usage == 6
    most = max(sum(1 for t in arrivals if start <= t < start + 0.45) for start in arrivals)
    assert most == 3  # with the negative usage believed, all six went at once


# ---- 3. texts with control characters or far over the length ---------------------------------------------------

HOSTILE_TEXTS = {
    "NUL": "Finally home\x00!", "BEL": "Finally home\x07!", "ANSI": "\x1b[31mFinally home!\x1b[0m",
    "CR": "Finally\rhome!", "TAB": "Finally\thome!", "DEL": "Finally home\x7f", "C1": "Finally home\x9b31m",
    "LSEP": "Finally\u2028home!", "BOM": "\ufeffFinally home!",
    **{f"U+{c:04X}": f"Finally {chr(c)}home!" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]},
    "10k": "Finally home " * 800,
}


@pytest.mark.parametrize("name, text", HOSTILE_TEXTS.items(), ids=HOSTILE_TEXTS.keys())
def test_control_characters_and_runaway_length_are_rejected(name, text):
    expected = ("bidi control character" if name.startswith("U+")
                else f"longer than {MAX_TEXT_CHARS} characters" if name == "10k" else "control character")
    assert text_problem(text) == expected


@pytest.mark.parametrize("text", ["Finally home!\nWhat a day.", "最悪！😡", "👩\u200d💻 shipped it!",
                                  "مرحبا\u200cخوش", "x" * MAX_TEXT_CHARS])
def test_ordinary_texts_pass(text):
    assert text_problem(text) is None


def test_the_newline_is_allowed_only_where_the_format_allows_it():
    assert character_problem("two\nlines") is None
    assert character_problem("two\nlines", newline=False) == "control character"


async def test_a_hostile_text_is_regenerated():
    hostile_texts = list(HOSTILE_TEXTS.values())

    answers: Counter = Counter()

    async def chat_once_bad(request):  # each prompt's first answer is hostile, the next one fine
        body = await request.json()
        key = body["messages"][-1]["content"]
        answers[key] += 1
        return text_answer(hostile_texts[len(answers) % len(hostile_texts)]) if answers[key] == 1 else text_answer()

    records = [{"id": i, "emotion": "joy", "stage1": {"age": "30-39"}, "stage2": {"region": "Osaka"},
                "stage3": {"location": f"place {i}"}} for i in range(len(hostile_texts))]
    stats = RunStats()
    with hostile(chat_once_bad, limit=200) as (url, _):
        async with client(url) as c:
            results = [r async for r in generate_texts(records, c, settings=Settings(validate=False), stats=stats)]
    assert len(results) == len(records) and not stats.failures
    assert all(r["text"] == "Finally home after a long day!" and r["text_attempts"] == 2 for r in results)
    assert stats.texts["accepted"] == len(records) and sum(stats.texts.values()) == 2 * len(records)


# ---- 4. server error text redacted -----------------------------------------------------------------------------

def test_redact_removes_the_key_and_token_shapes():
    text = redact(f"got {KEY}; Authorization: Bearer abc.DEF-123; other sk-proj-AAAABBBBCCCCDDDD; skinny", KEY)
    assert KEY not in text and "abc.DEF-123" not in text and "AAAABBBB" not in text
    assert text == "got [redacted]; Authorization: Bearer [redacted]; other [redacted]; skinny"
    assert redact("EMPTY stays", "EMPTY") == "EMPTY stays"  # a placeholder key is no secret to hunt for


def echo(status: int):
    async def handler(request):
        said = request.headers.get("Authorization", "")
        return web.json_response({"error": {"message": f"invalid request with {said} (key {said[7:]})"}},
                                 status=status)
    return handler


def generate(url: str, out, *extra: str) -> list[str]:
    return ["--n", "2", "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--no-validate", "--max-attempts", "1", *extra]


def test_a_401_echoing_the_key_does_not_print_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with hostile(fine, models=echo(401)) as (url, seen):
        code = run(main, generate(url, tmp_path / "out.jsonl"))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "refused the API key (HTTP 401)" in err and "[redacted]" in err and KEY not in err
    assert seen == {"/v1/models": 1} and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status, code", [(400, 1), (401, 2)])
def test_errors_echoing_the_key_are_stored_and_printed_redacted(tmp_path, monkeypatch, capsys, status, code):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out = tmp_path / "out.jsonl"
    with hostile(echo(status)) as (url, _):
        assert run(main, generate(url, out)) == code
    err = capsys.readouterr().err
    assert f"HTTP {status}" in err and "[redacted]" in err and KEY not in err
    for path in tmp_path.iterdir():
        assert KEY.encode() not in path.read_bytes(), path.name
    if status == 400:
        failures = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())["failures"]
        said = "HTTP 400: invalid request with Bearer [redacted] (key [redacted])"
        assert len(failures) == 2 and all(said in f for f in failures.values())


async def test_the_key_echoed_in_an_answer_is_neither_returned_nor_cached(tmp_path):
    async def chat(request):
        return text_answer(f"my key is {request.headers['Authorization'][7:]}")

    cache = Cache(tmp_path / "cache.sqlite")
    with hostile(chat) as (url, _):
        async with client(url, api_key=KEY, cache=cache) as c:
            answer = await c.chat(HELLO)
    cache.close()
    assert KEY not in answer.content and "my key is [redacted]" in answer.content
    assert KEY.encode() not in (tmp_path / "cache.sqlite").read_bytes()


# ---- 2, 1 and 5 through the command line -----------------------------------------------------------------------

def test_usage_that_is_not_a_number_does_not_stop_the_run(tmp_path):
    async def chat(request):
        return text_answer(usage={"prompt_tokens": "lots", "completion_tokens": 5})

    out = tmp_path / "out.jsonl"
    with hostile(chat) as (url, seen):
        assert run(main, [*generate(url, out), "--quiet"]) == 0
    summary = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())
    assert summary["texts"] == 2 and summary["bad_usage"] == seen["/v1/chat/completions"] == 2
    assert summary["prompt_tokens"] == 0 and len(out.read_bytes().splitlines()) == 2


def test_the_response_cap_is_a_command_line_option(tmp_path):
    out = tmp_path / "out.jsonl"
    with hostile(lambda request: text_answer("Finally home after a long day! " + "x" * 400)) as (url, _):
        assert run(main, [*generate(url, out), "--quiet", "--max-response-bytes", "300"]) == 1
    failures = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())["failures"]
    assert len(failures) == 2 and all(f.endswith("last: response over 300 bytes") for f in failures.values())


@pytest.mark.parametrize("flag, value", [("--timeout", "0"), ("--timeout", "inf"), ("--timeout", "-1"),
                                         ("--timeout", "nan"), ("--timeout", "soon"), ("--max-response-bytes", "0"),
                                         ("--max-wait", "-1"), ("--max-wait", "inf"), ("--max-wait", "nan")])
@pytest.mark.parametrize("command", ["llm.generate", "eval.judge"])
def test_bounds_are_checked_at_parse_time(tmp_path, capsys, command, flag, value):
    with hostile(fine) as (url, seen):
        if command == "llm.generate":
            code = run(main, [*generate(url, tmp_path / "out.jsonl"), flag, value])
        else:
            data = tmp_path / "data.jsonl"
            data.write_bytes(orjson.dumps({"id": 0, "text": "Finally home!", "emotion": "joy"}) + b"\n")
            code = run(judge_main, [str(data), "--out", str(tmp_path / "judged"), "--base-url", url,
                                    "--model", "test-model", flag, value])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: argument {flag}: ") and err.count("\n") == 1
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not seen and left == (["data.jsonl"] if command == "eval.judge" else [])  # nothing sent or written


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan")])
def test_the_client_refuses_a_timeout_that_is_no_bound(timeout):
    with pytest.raises(UsageError, match="^ClientOptions: timeout = .*: expected a finite number of seconds > 0"):
        ClientOptions(timeout=timeout)



# ---- issue 26: waits the server asks for, the key in JSON escapes, absurd usage, credentials in the URL ----------

class Pausing(Limiter):
    """A limiter that records every pause (Retry-After, exhausted quota) it is asked for."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.paused: list[float] = []

    def pause(self, seconds: float) -> None:
        self.paused.append(seconds)
        super().pause(seconds)


UNUSABLE_WAITS = {
    "huge": (429, {"Retry-After": "99999999"}), "inf": (429, {"Retry-After": "inf"}),
    "1e309": (429, {"Retry-After": "1e309"}), "nan": (429, {"Retry-After": "nan"}),
    "far-future-date": (429, {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}),
    "huge-ms": (429, {"retry-after-ms": "9" * 20}), "unreadable": (429, {"Retry-After": "soon"}),
    "reset-huge": (200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "99999999s"}),
    "reset-unreadable": (200, {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1e309"}),
}


@pytest.mark.parametrize("status, headers", UNUSABLE_WAITS.values(), ids=UNUSABLE_WAITS.keys())
async def test_a_wait_beyond_max_wait_is_a_fault_retried_under_the_backoff_never_waited_out(status, headers):
    answered = Counter()

    async def chat(request):  # three answers in ten carry the wait
        answered["n"] += 1
        if answered["n"] % 10 in (1, 4, 7):
            if status == 429:
                return web.json_response({"error": {"message": "slow down"}}, status=429, headers=headers)
            return web.json_response(completion("fine"), headers=headers)
        return web.json_response(completion("fine"))

    limiter = Pausing()
    with hostile(chat, limit=100) as (url, _):
        async with client(url, limiter=limiter, max_wait=5.0) as c:
            answers = await asyncio.wait_for(asyncio.gather(*(
                c.chat([{"role": "user", "content": f"hi {i}"}]) for i in range(20))), 120)
    assert [a.content for a in answers] == ["fine"] * 20
    assert all(0 <= s <= 5.0 for s in limiter.paused), limiter.paused  # none of the unusable waits
    assert c.stats.faults[UNUSABLE_WAIT] >= 6


def test_max_wait_is_a_flag(tmp_path):
    answered = Counter()

    async def chat(request):
        answered["n"] += 1
        if answered["n"] % 3 == 1:
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "60"})
        return text_answer()

    out = tmp_path / "out.jsonl"
    with hostile(chat) as (url, _):
        assert run(main, [*generate(url, out, "--max-attempts", "3"), "--quiet", "--max-wait", "2"]) == 0
    summary = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())
    assert summary["faults"][UNUSABLE_WAIT] >= 1 and summary["texts"] == 2


def escaped(text: str) -> str:
    """`text` written as JSON \\u escapes, every character."""
    return "".join(f"\\u{ord(c):04x}" for c in text)


def holds_key(value, key: str = KEY) -> bool:
    """Whether `value` or any string in it (decoded JSON, and JSON inside its strings, decoded too) holds the key."""
    if isinstance(value, (bytes, str)):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if key in text:
            return True
        try:
            inner = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        return not isinstance(inner, str) and holds_key(inner, key) or isinstance(inner, str) and key in inner
    if isinstance(value, dict):
        return any(holds_key(k, key) or holds_key(v, key) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_key(v, key) for v in value)
    return False


async def echo_escaped(request):
    """An answer that echoes the key in JSON escapes: in the text (escaped inside the JSON answer, which is itself a
    JSON string of the response), in another field, and in an object key."""
    key = escaped(request.headers["Authorization"][7:])
    content = orjson.dumps('{"text": "Finally home, my key is ' + key + '"}').decode()
    body = ('{"id": "' + key + '", "choices": [{"message": {"role": "assistant", "content": ' + content + "}}], "
            '"usage": {"prompt_tokens": 3, "completion_tokens": 2}, "' + key + '": 1}')
    return web.Response(body=body.encode(), content_type="application/json")


def test_the_helper_sees_an_escaped_key():
    body = asyncio.run(echo_escaped(SimpleNamespace(headers={"Authorization": f"Bearer {KEY}"}))).body
    assert KEY.encode() not in body and holds_key(orjson.loads(body))


def test_a_key_echoed_in_json_escapes_is_neither_stored_nor_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out = tmp_path / "out.jsonl"
    with hostile(echo_escaped) as (url, _):
        assert run(main, generate(url, out)) == 0
    err = capsys.readouterr().err
    assert not holds_key(err)
    results = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(results) == 2 and all("my key is [redacted]" in r["text"] for r in results)
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert KEY.encode() not in data, path.name
        if path.suffix in (".jsonl", ".json"):
            lines = data.splitlines() if path.suffix == ".jsonl" else [data]
            values = [orjson.loads(line) for line in lines]
            assert not holds_key(values), path.name
    with sqlite3.connect(tmp_path / "out.jsonl.cache.sqlite") as conn:
        cached = [orjson.loads(blob) for (blob,) in conn.execute("SELECT response FROM responses")]
    conn.close()
    assert len(cached) == 2 and not holds_key(cached)


def test_absurd_usage_does_not_stall_a_tpm_run(tmp_path):
    async def chat(request):
        return text_answer(usage={"prompt_tokens": 19_000, "completion_tokens": 5})

    out = tmp_path / "out.jsonl"
    with hostile(chat) as (url, seen):
        assert run(main, [*generate(url, out), "--quiet", "--tpm", "20000"]) == 0
    summary = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())
    assert summary["bad_usage"] == seen["/v1/chat/completions"] == 2 and summary["prompt_tokens"] == 0


def basic_only(request):
    """Answers a request with Basic auth user:s3cretpassw0rd only (401 otherwise)."""
    if request.headers.get("Authorization") != "Basic " + base64.b64encode(b"user:s3cretpassw0rd").decode():
        return web.json_response({"error": {"message": "who are you?"}}, status=401)
    return text_answer() if request.method == "POST" else model_list(request)


def with_credentials(url: str) -> str:
    return url.replace("http://", "http://user:s3cretpassw0rd@")


def test_credentials_in_the_url_are_basic_auth_and_never_stored(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "out.jsonl"
    with hostile(basic_only, models=basic_only) as (url, seen):
        assert run(main, generate(with_credentials(url), out)) == 0
    assert seen == {"/v1/models": 1, "/v1/chat/completions": 2}
    assert "s3cretpassw0rd" not in capsys.readouterr().err
    for path in tmp_path.iterdir():
        assert b"s3cretpassw0rd" not in path.read_bytes(), path.name


def test_credentials_in_the_url_and_an_api_key_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with hostile(basic_only, models=basic_only) as (url, seen):
        assert run(main, generate(with_credentials(url), tmp_path / "out.jsonl")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "give one or the other" in err
    assert "s3cretpassw0rd" not in err and KEY not in err
    assert not seen and list(tmp_path.iterdir()) == []
