"""The embedded model's OpenAI-compatible HTTP server: `GET /v1/models`, `POST /v1/chat/completions`.

    python -m llm.transport.embedded.server --gguf FILE [--port 0] [--threads N] [--alias NAME]

It loads the model, prints `listening on PORT` on stdout once it accepts requests, and serves until SIGTERM; on
Linux it also stops when its parent dies (SIGTERM through prctl). Every request in flight is batched
step by step (llm.transport.embedded.batcher). A request that cannot be served is a 400 with an OpenAI-style error
body, and the server goes on: a malformed body, a prompt plus `max_tokens` beyond the model's context, a schema
the grammar library cannot compile, `n` other than 1, or `stream`. Torch runs on `--threads` threads (default:
the usable cores), on the GPU when torch sees one.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import math
import os
import signal
import sys
import time
from pathlib import Path

import orjson
from aiohttp import web
from jinja2 import TemplateError

from common.cpus import usable_cores

from . import MODEL
from .batcher import Batcher, Job
from .grammar import BadSchema, Grammars, schema_of
from .sampling import Sampler

OWNER = "personagen"  # `owned_by`: the client takes it for the reference API (json_schema response formats)


class BadRequest(ValueError):
    """What makes a request a 400 (the message is the error body's)."""


def _error(status: int, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": status}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _number(body: dict, key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise BadRequest(f"{key} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


class Service:
    """What a request needs: the tokenizer with its chat template, the grammars and the batcher."""

    def __init__(self, model, tokenizer, alias: str):
        self.tokenizer, self.alias = tokenizer, alias
        self.grammars = Grammars(tokenizer)
        self.batcher = Batcher(model, tokenizer, self.grammars)
        self.context = model.shape.context

    def job(self, body) -> Job:
        """The batcher's job for a chat completion body; BadRequest or BadSchema when it cannot be served."""
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages):
            raise BadRequest("messages must be a non-empty list of {role, content} strings")
        if body.get("stream"):
            raise BadRequest("stream is not supported")
        if body.get("n", 1) != 1:
            raise BadRequest("n must be 1")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 256))
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise BadRequest(f"max_tokens must be a positive integer, got {max_tokens!r}")
        seed = body.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise BadRequest(f"seed must be an integer, got {seed!r}")
        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else stop
        if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 4:
            raise BadRequest("stop must be a string or a list of at most 4 non-empty strings")
        sampler = Sampler(_number(body, "temperature", 1.0, 0.0, 2.0), _number(body, "top_p", 1.0, 0.0, 1.0),
                          seed % 2**64)
        schema = schema_of(body.get("response_format"))
        try:
            prompt = self.tokenizer.chat(messages)
        except TemplateError as exc:
            raise BadRequest(f"the chat template cannot render these messages: {exc}") from None
        if len(prompt) + max_tokens > self.context:
            raise BadRequest(f"the prompt is {len(prompt)} tokens and max_tokens {max_tokens}: more than the "
                             f"model's context of {self.context} tokens")
        matcher = None if schema is None else self.grammars.matcher(schema)
        return Job(prompt, max_tokens, sampler, matcher, tuple(stop))

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.alias, "object": "model", "created": 0, "owned_by": OWNER}]})

    async def chat(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        if isinstance(body, dict) and body.get("model") not in (None, self.alias):
            return _error(404, f"unknown model {body.get('model')!r}; this server serves {self.alias!r}")
        try:
            job = self.job(body)
        except (BadRequest, BadSchema) as exc:
            return _error(400, str(exc))
        job = await self.batcher.complete(job)
        completion = len(job.tokens)
        return web.Response(content_type="application/json", body=orjson.dumps({
            "id": f"chatcmpl-{id(job):x}", "object": "chat.completion", "created": int(time.time()),
            "model": self.alias,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": job.text},
                         "finish_reason": job.finish}],
            "usage": {"prompt_tokens": len(job.prompt), "completion_tokens": completion,
                      "total_tokens": len(job.prompt) + completion}}))


def load(gguf: Path, cache_dir: Path, threads: int):
    """(model, tokenizer) of the GGUF file, on the GPU when torch sees one."""
    import torch

    from .llama import Llama
    from .tokens import ChatTokenizer
    from .weights import read, tokenizer_file

    torch.set_num_threads(threads)
    shape, tensors, q4_1 = read(gguf)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return Llama(shape, tensors, device, q4_1), ChatTokenizer(tokenizer_file(gguf, cache_dir))


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


async def serve(service: Service, port: int) -> None:
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_get("/v1/models", service.models)
    app.router.add_post("/v1/chat/completions", service.chat)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"listening on {site._server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    from model.compilation import CACHE_DIR

    p = argparse.ArgumentParser(prog="python -m llm.transport.embedded.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--gguf", type=Path, required=True, help="the llama-architecture GGUF file to serve")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one, printed)")
    p.add_argument("--threads", type=int, default=usable_cores(), help="torch threads (default: usable cores)")
    p.add_argument("--alias", default=MODEL, help=f"the model name it answers to (default {MODEL})")
    args = p.parse_args(argv)
    _die_with_parent()
    model, tok = load(args.gguf, CACHE_DIR / "models", args.threads)
    if model.block is None:
        print("warning: no row block gives this machine's matrix products row by row; serving one request at a "
              "time so that answers stay the same", file=sys.stderr, flush=True)
    asyncio.run(serve(Service(model, tok, args.alias), args.port))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # stopped: nothing left to keep, and tearing the interpreter down takes 0.7 s with torch loaded


if __name__ == "__main__":
    sys.exit(main())
