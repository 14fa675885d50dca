"""The seam under `Client`: one HTTP exchange, bytes in and bytes out (compare httpx's transports).

A `Transport` sends a `Request` and returns its `Reply`, the body decoded and read within a cap. `AiohttpTransport`,
the default, speaks HTTP over aiohttp's pooled connections; `MockTransport(handler)` answers in process, without a
socket, by calling `handler(request)`: tests run the engine against the fault server that way
(`llm.testing.faults.FaultServer.transport`), and so can a notebook with a handler of its own.

A transport raises `Unreachable` when no answer came (refused, dropped, a bad URL: `InvalidURL`),
`asyncio.TimeoutError` past the timeout, and `body.TooLarge` or `body.Undecodable` for a body it cannot read.
"""
from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from .body import TooLarge, read_capped


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class Reply:
    """An answer: its status, its headers (looked up without regard to case) and its decoded body."""
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self):
        if not isinstance(self.headers, (CIMultiDict, CIMultiDictProxy)):
            object.__setattr__(self, "headers", CIMultiDictProxy(CIMultiDict(self.headers)))


class Unreachable(Exception):
    """No answer came; `kind` names why (aiohttp's exception class for the HTTP transport)."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(detail or kind)
        self.kind = kind


class InvalidURL(Unreachable):
    """The URL cannot be requested at all."""


class Transport(Protocol):
    """What a Client sends through: `send` one request, its body read within `cap` bytes and the whole exchange
    within `timeout` seconds; `aclose` releases what the transport holds."""

    async def send(self, request: Request, *, cap: int, timeout: float) -> Reply: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """HTTP over one aiohttp session of at most `connections` connections, created at the first request (inside
    the running event loop). Bodies are decompressed by `read_capped`, within the cap."""

    def __init__(self, connections: int = 100):
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def send(self, request: Request, *, cap: int, timeout: float) -> Reply:
        if self._session is None:
            n = self.connections
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n, limit_per_host=n),
                                                  auto_decompress=False)
        if (limit := self._timeouts.get(timeout)) is None:
            limit = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._session.request(request.method, request.url, data=request.body,
                                             headers=request.headers, timeout=limit) as resp:
                return Reply(resp.status, resp.headers, await read_capped(resp, cap))
        except aiohttp.InvalidURL as exc:
            raise InvalidURL(type(exc).__name__, str(exc)) from None
        except aiohttp.ClientError as exc:
            raise Unreachable(type(exc).__name__, str(exc)) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


Handler = Callable[[Request], "Reply | Awaitable[Reply]"]


class MockTransport:
    """Answers in process: `handler(request)` (a function or a coroutine function) returns the Reply, or raises
    `Unreachable` to play a dropped connection. The timeout and the cap hold as over HTTP."""

    def __init__(self, handler: Handler):
        self.handler = handler

    async def send(self, request: Request, *, cap: int, timeout: float) -> Reply:
        reply = self.handler(request)
        if inspect.isawaitable(reply):
            reply = await asyncio.wait_for(reply, timeout)
        if len(reply.body) > cap:
            raise TooLarge(cap)
        return reply

    async def aclose(self) -> None:
        pass
