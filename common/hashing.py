"""Content hashes: one canonical JSON form, one digest."""
from __future__ import annotations

import hashlib

import orjson


def digest(data: bytes | str) -> bytes:
    """The 32-byte sha256 digest of `data` (a str is UTF-8 encoded)."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).digest()


def hexdigest(data: bytes | str) -> str:
    """sha256 of `data` as 64 hex characters."""
    return digest(data).hex()


def canonical(obj) -> bytes:
    """The canonical JSON of `obj`: sorted keys, no whitespace."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def content_hash(obj) -> str:
    """sha256 hex digest of the canonical JSON of `obj` (a request, a profile, a prompt set)."""
    return hexdigest(canonical(obj))


def unit_interval(key: str) -> float:
    """A uniform number in [0, 1) fixed by `key`: the first 8 bytes of its sha256 over 2**64."""
    return int.from_bytes(digest(key)[:8], "big") / 2**64
