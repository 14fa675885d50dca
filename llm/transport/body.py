"""Reading an HTTP response body within a size cap, counted after decompression.

aiohttp before 3.13.3 inflates each network chunk whole (64 KiB of a gzip bomb can become 64 MiB), so `Client`
turns aiohttp's decompression off, asks only for the encodings handled here (`ACCEPT_ENCODING`) and inflates the
body itself, a MiB at a time and never past the cap: memory stays within the cap plus a MiB whatever
the server sends and whatever aiohttp is installed.
"""
from __future__ import annotations

import zlib

MAX_RESPONSE_BYTES = 8 * 2**20  # a chat completion is a few KiB; a big model list (GET /models) well under 1 MiB
ACCEPT_ENCODING = "gzip, deflate"
_CHUNK = 2**16  # read from the network at a time
_STEP = 2**20  # inflated at a time


class TooLarge(ValueError):
    """The body is longer than the cap (after decompression)."""


class Undecodable(ValueError):
    """The body's Content-Encoding is not one we asked for, or its compressed data is broken."""


def _inflater(encoding: str | None, first: bytes):
    """A zlib decompressor for the body's encoding (None for an identity body)."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == "deflate":  # zlib-wrapped as the RFC says, or raw deflate as some servers send it
        return zlib.decompressobj(zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS)
    raise Undecodable(f"Content-Encoding {encoding!r}")


async def read_capped(resp, cap: int = MAX_RESPONSE_BYTES) -> bytes:
    """The decoded body of `resp` (an aiohttp response of a session with `auto_decompress=False`). Reading stops
    with TooLarge as soon as more than `cap` bytes came out; Undecodable when the body cannot be decoded."""
    encoding = resp.headers.get("Content-Encoding")
    if encoding is None and (resp.content_length or 0) > cap:
        raise TooLarge(cap)
    body, inflater, started = bytearray(), None, False
    try:
        async for chunk in resp.content.iter_chunked(_CHUNK):
            if not started and chunk:
                inflater, started = _inflater(encoding, chunk), True
            while chunk:
                if inflater is None:
                    out, chunk = chunk, b""
                else:  # at most one byte past the cap comes out; the rest waits in unconsumed_tail
                    out = inflater.decompress(chunk, min(_STEP, cap + 1 - len(body)))
                    chunk = inflater.unconsumed_tail
                body += out
                if len(body) > cap:
                    raise TooLarge(cap)
        if inflater is not None:
            body += inflater.flush()
            if len(body) > cap:
                raise TooLarge(cap)
    except zlib.error as exc:
        raise Undecodable(str(exc)) from None
    return bytes(body)
