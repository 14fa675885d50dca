"""A fault-injecting OpenAI-compatible chat server for tests and benchmarks.

Answers are a function of the request body (so reruns see the same answers); faults are drawn
from a seeded RNG. It enforces its own sliding-window RPM/TPM, with `burst` over short periods too (over -> 429 with
Retry-After and x-ratelimit-* headers), and records every arrival, so callers can check limits from the server side.

    python -m llm.testing.faults --port 0 --rpm 3000 --p500 0.05   # prints {"url": ...} on stdout

It speaks the OpenAI Batch API too (llm.testing.batches, faults `--batch-*`; `--no-batch-api` leaves it out).
"""
from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import random
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from common.hashing import canonical, hexdigest, unit_interval
from llm.transport.bucket import Bucket
from llm.transport.http import MockTransport, Reply, Request, Unreachable

from .batches import BatchAPI, BatchFaults, argv as batch_argv
from .record import Record
from .varied import varied

_OPENERS = [
    "Just got the news on my way home", "My coworker surprised me at lunch", "The train stopped again",
    "Finally finished the report", "Saw an old friend at the station", "The rain will not stop today",
]
_JA_OPENERS = ["帰り道でその知らせを聞いた。", "昼休みに同僚が声をかけてくれた。", "また電車が止まった。",
               "やっと報告書が終わった。", "駅で昔の友達に会った。", "今日は雨がやまない。"]
_JA_CLOSERS = ["顔がにやけて仕方ない！", "正直ちょっと気分が沈んだ。", "これからどうしよう？", "まあそんな日もある。",
               "まだ胸がどきどきしてる！"]
_TURN = re.compile(r"^\d+\. (Speaker [A-D]): (\S+)$", re.MULTILINE)
_CLOSERS = ["and I cannot stop smiling!", "which honestly ruined my mood.", "and now I am not sure what to do.",
            "so that was something.", "and my heart is still racing."]


@dataclass
class Faults:
    """What the server does besides answering. Probabilities are per request, checked in this order."""

    p429: float = 0.0
    retry_after: float | None = None  # Retry-After seconds on injected 429s (None: no header)
    p500: float = 0.0
    p503: float = 0.0
    p_slow: float = 0.0
    slow_s: float = 5.0
    p_drop: float = 0.0
    p_malformed: float = 0.0  # 200 with a body that is not JSON
    p_garbled: float = 0.0  # 200 whose message is not the JSON asked for
    latency: tuple[float, float] = (0.0, 0.0)
    implausible: float = 0.0  # share of validation prompts answered "implausible" (by hash)
    implausible_marker: str | None = None  # ... and every prompt containing this text
    low_score_marker: str | None = None  # score requests whose prompt contains this get the lowest score
    wrong_turns: float = 0.0  # share of dialogue answers (by hash of the request) with one turn's emotion wrong
    language: str = "en"  # "ja": texts are answered in Japanese
    text_answers: tuple[str, ...] = ()  # the n-th text request of a prompt gets the n-th of these (then the last)
    duplicate_rate: float | None = None  # given: varied English texts, this share of them (by hash) a repeat
    rpm: int | None = None
    tpm: int | None = None
    window: float = 60.0
    burst: float | None = None  # rpm, tpm also as buckets of `burst` s worth refilled at rpm (tpm) a window
    api_key: str | None = None
    models: tuple[str, ...] = ("test-model",)
    owned_by: str = "openai"  # "me" imitates llama-cpp-python: json_schema response formats are refused
    seed: int = 0


def _fraction(*parts) -> float:
    return unit_interval(canonical(parts).decode())


class FaultServer:
    """`async with FaultServer(Faults(...)) as s:` then point a client at `s.url`."""

    def __init__(self, faults: Faults | None = None, port: int = 0, batch: BatchFaults | None = None):
        self.faults = faults or Faults()
        self.batch_api = BatchAPI(self, batch or BatchFaults())
        self.record = Record()
        self._port = port
        self._rng = random.Random(self.faults.seed)
        self._requests: deque[tuple[float, int]] = deque()  # accepted (arrival, tokens) in the window
        self._token_sum = 0
        f = self.faults  # the short-period limits of `Faults.burst`:
        self._buckets = [None if n is None or f.burst is None else Bucket(n * f.burst / f.window, n / f.window)
                         for n in (f.rpm, f.tpm)]
        self._asked: Counter = Counter()  # text requests per prompt (for `text_answers`)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FaultServer:
        app = web.Application(client_max_size=2**30)  # batch input files are large
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_stats", self._stats)
        app.router.add_get("/_completed", self._completed)
        app.router.add_get("/_bodies", self._listed)
        app.router.add_get("/_arrivals", self._listed)
        self.batch_api.mount(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    def authorized(self, headers) -> bool:
        """Whether a request's headers carry the key the server wants (any, when it wants none)."""
        return self.faults.api_key is None or headers.get("Authorization") == f"Bearer {self.faults.api_key}"

    def transport(self) -> MockTransport:
        """A transport that reaches this server in process, with no socket (entering the server is not needed):
        `Client(url, model, transport=server.transport())` for any `url`. It answers GET /models and POST
        /chat/completions as over HTTP, faults and limits included (a dropped connection raises `Unreachable`);
        every other request gets a 404. The Batch API needs the server entered."""
        return MockTransport(self._in_process)

    async def _in_process(self, request: Request) -> Reply:
        path = urlsplit(request.url).path
        if request.method == "GET" and path.endswith("/models"):
            return self._models_reply(request.headers)
        if request.method == "POST" and path.endswith("/chat/completions"):
            reply = await self._exchange(request.headers, request.body or b"")
            if reply is None:
                raise Unreachable("connection dropped")
            return reply
        return _reply(404, {"error": {"message": f"no route {request.method} {path}"}})

    async def _models(self, request: web.Request) -> web.Response:
        return _web(self._models_reply(request.headers))

    def _models_reply(self, headers) -> Reply:
        if not self.authorized(headers):
            return _error(401, "Incorrect API key provided")
        data = [{"id": m, "object": "model", "owned_by": self.faults.owned_by} for m in self.faults.models]
        return _reply(200, {"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.record.summary(self.faults.window, self.faults.rpm))

    async def _completed(self, request: web.Request) -> web.Response:
        return web.json_response(sorted(self.record.completed))

    async def _listed(self, request: web.Request) -> web.Response:  # /_bodies, /_arrivals: that list of the record
        return web.json_response(getattr(self.record, request.path.removeprefix("/_")))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        reply = await self._exchange(request.headers, await request.read())
        if reply is None:
            request.transport.close()
            return web.Response(status=500)
        return _web(reply)

    async def _exchange(self, headers, raw: bytes) -> Reply | None:
        """The answer to a chat request (None: the connection is to be dropped), recorded."""
        now = time.monotonic()
        self.record.arrivals.append(now)
        reply = await self._answer(headers, raw, now)
        self.record.statuses[500 if reply is None else reply.status] += 1
        return reply

    async def _answer(self, headers, raw: bytes, now: float) -> Reply | None:
        f = self.faults
        if not self.authorized(headers):
            return _error(401, "Incorrect API key provided")
        try:
            body = orjson.loads(raw)
            if not isinstance(body["messages"], list):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _error(400, "could not parse the request body")
        self.record.bodies.append(body)
        if body.get("model") not in f.models:
            return _error(404, f"The model `{body.get('model')}` does not exist")
        fmt = body.get("response_format") or {}
        if f.owned_by == "me" and fmt.get("type") == "json_schema":
            return _error(400, "response_format type json_schema is not supported; use json_object")
        kind, answer = self._completion(body)
        total = answer["usage"]["total_tokens"]
        wait = self._admit(now, total)
        if wait is not None:  # over an enforced limit
            self.record.limited += 1
            return _error(429, "Rate limit reached", self._limit_headers(now) | {"Retry-After": f"{wait:.3f}"})
        limits = self._limit_headers(now)
        roll = self._rng.random()
        for p, fault in ((f.p429, "429"), (f.p500, "500"), (f.p503, "503"), (f.p_slow, "slow"),
                         (f.p_drop, "drop"), (f.p_malformed, "malformed"), (f.p_garbled, "garbled")):
            if roll < p:
                break
            roll -= p
        else:
            fault = None
        if fault == "429":
            extra = {} if f.retry_after is None else {"Retry-After": f"{f.retry_after:g}"}
            return _error(429, "Rate limit reached (injected)", extra)
        if fault in ("500", "503"):
            return _error(int(fault), "server error (injected)")
        if fault == "drop":
            return None
        low, high = f.latency
        await asyncio.sleep(f.slow_s if fault == "slow" else self._rng.uniform(low, high))
        if fault == "malformed":
            return Reply(200, _JSON, b'{"choices": [{"message": ')
        if fault == "garbled":
            answer["choices"][0]["message"]["content"] = "Sure! Here is my answer: natural"
        self.record.served.append((now, total, kind))
        self.record.completed[hexdigest(raw)] += 1
        return _reply(200, answer, limits)

    def completion(self, body: dict) -> tuple[int, dict]:
        """(200, the chat.completion) of a request body when nothing fails (a batch line's answer too; 404 and an
        error for a model not served), counted as served."""
        if body.get("model") not in self.faults.models:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist"}}
        kind, answer = self._completion(body)
        self.record.served.append((time.monotonic(), answer["usage"]["total_tokens"], kind))
        self.record.completed[hexdigest(canonical(body))] += 1
        return 200, answer

    def _completion(self, body: dict) -> tuple[str, dict]:
        kind, content = self._content(body)
        messages = body["messages"]
        prompt_tokens = math.ceil(sum(len(m["content"]) for m in messages) / 4) + 3 * len(messages)
        completion_tokens = math.ceil(len(content) / 4)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        return kind, {"id": "chatcmpl-test", "object": "chat.completion", "model": body["model"], "usage": usage,
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                   "finish_reason": "stop"}]}

    def _content(self, body: dict) -> tuple[str, str]:
        """("score", "validation" or "text", the answer). A schema of integer fields (a 1-5 rating) gets, per field,
        a value of its enum picked by hash of the prompt."""
        fmt = body.get("response_format") or {}
        schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema") or {}
        fields = schema.get("properties", {})
        prompt = "\n".join(m["content"] for m in body["messages"])
        if fields and all(v.get("type") == "integer" for v in fields.values()):
            low = (self.faults.low_score_marker or "\0") in prompt
            scores = {k: min(v["enum"]) if low else v["enum"][int(_fraction(prompt, k) * len(v["enum"]))]
                      for k, v in fields.items()}
            return "score", orjson.dumps(scores).decode()
        if "turns" in fields:
            return "dialogue", self._dialogue(body, prompt)
        if "label" in fields:
            f = self.faults
            bad = _fraction(prompt) < f.implausible or (f.implausible_marker or "\0") in prompt
            label = "implausible" if bad else ("natural" if _fraction(prompt, 1) < 0.7 else "rare but plausible")
            return "validation", orjson.dumps({"label": label, "reason": "checked by the test server"}).decode()
        text = self._text(body, prompt)
        return "text", orjson.dumps({"text": text}).decode() if "text" in fields else text

    def _text(self, body: dict, prompt: str) -> str:
        """A text answer: the next of `text_answers` for this prompt, else two sentences picked by hash."""
        if answers := self.faults.text_answers:
            n = self._asked[prompt]
            self._asked[prompt] += 1
            return answers[min(n, len(answers) - 1)]
        if self.faults.duplicate_rate is not None:
            return varied(body, self.faults.duplicate_rate)
        h = _fraction(body)
        if self.faults.language == "ja":
            return f"{_JA_OPENERS[int(h * len(_JA_OPENERS))]}{_JA_CLOSERS[int(h * 997) % len(_JA_CLOSERS)]}"
        return f"{_OPENERS[int(h * len(_OPENERS))]} {_CLOSERS[int(h * 997) % len(_CLOSERS)]}"

    def _dialogue(self, body: dict, prompt: str) -> str:
        """The turns the prompt lists ("3. Speaker B: joy"), each with an utterance (in Japanese with `language`
        ja) and the emotion as the prompt wrote it; by hash, some answers get the last turn's emotion wrong
        (`wrong_turns`)."""
        asked = _TURN.findall(prompt)
        openers = _JA_OPENERS if self.faults.language == "ja" else _OPENERS
        turns = [{"speaker": speaker, "utterance": f"{openers[i % len(openers)]} ({emotion})", "emotion": emotion}
                 for i, (speaker, emotion) in enumerate(asked)]
        if turns and _fraction(body, "wrong") < self.faults.wrong_turns:
            turns[-1]["emotion"] = "neutral" if turns[-1]["emotion"] != "neutral" else "joy"
        return orjson.dumps({"turns": turns}).decode()

    def _admit(self, now: float, tokens: int) -> float | None:
        """Count an answer against the enforced limits; when it would exceed one, the seconds until it would fit
        instead (nothing counted)."""
        f = self.faults
        while self._requests and self._requests[0][0] <= now - f.window:
            self._token_sum -= self._requests.popleft()[1]
        reset = self._requests[0][0] + f.window - now if self._requests else 0.0
        kinds = tuple(zip((f.rpm, f.tpm), (len(self._requests), self._token_sum), (1, tokens), self._buckets))
        wait = max((reset if limit is not None and used + cost > limit else 0.0 for limit, used, cost, _ in kinds),
                   default=0.0)
        for _, _, cost, bucket in kinds:
            if bucket is not None:
                bucket.drain(now, 1.0)
                wait = max(wait, bucket.wait(cost, 1.0))
        if wait > 0:
            return wait
        for _, _, cost, bucket in kinds:
            if bucket is not None:
                bucket.pour(cost)
        self._requests.append((now, tokens))
        self._token_sum += tokens
        return None

    def _limit_headers(self, now: float) -> dict:
        f, headers = self.faults, {}
        reset = max(0.0, self._requests[0][0] + f.window - now) if self._requests else 0.0
        for kind, limit, used in (("requests", f.rpm, len(self._requests)), ("tokens", f.tpm, self._token_sum)):
            if limit is None:
                continue
            headers |= {
                f"x-ratelimit-limit-{kind}": str(limit),
                f"x-ratelimit-remaining-{kind}": str(max(0, limit - used)),
                f"x-ratelimit-reset-{kind}": f"{reset:.3f}s",
            }
        return headers


_JSON = {"Content-Type": "application/json"}


def _reply(status: int, data, headers: dict | None = None) -> Reply:
    return Reply(status, _JSON | (headers or {}), orjson.dumps(data))


def _error(status: int, message: str, headers: dict | None = None) -> Reply:
    return _reply(status, {"error": {"message": message, "code": status}}, headers)


def _web(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, headers=reply.headers, body=reply.body)


@contextmanager
def spawned(faults: Faults | None = None, port: int = 0, batch: BatchFaults | None = None) -> Iterator[str]:
    """Run the server in a child process (so its CPU time is not the caller's); yield its base URL."""
    argv = [sys.executable, "-m", "llm.testserver", "--port", str(port), *batch_argv(batch or BatchFaults())]
    for f in dataclasses.fields(Faults):
        value = getattr(faults or Faults(), f.name)
        if value is not None:
            argv += ["--" + f.name.replace("_", "-"), *map(str, value if isinstance(value, tuple) else [value])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                     os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    try:
        yield orjson.loads(proc.stdout.readline())["url"]
    finally:
        proc.terminate()
        proc.wait(10)


def fetch(url: str, what: str = "_stats"):
    """GET a spawned server's /_stats (see Record.summary), /_completed (hashes of answered bodies), /_bodies
    (every request body), /_arrivals (every request's arrival time, time.monotonic()) or /_batches (every batch, see
    llm.testing.batches)."""
    with urllib.request.urlopen(f"{url.removesuffix('/v1')}/{what}") as resp:
        return orjson.loads(resp.read())
