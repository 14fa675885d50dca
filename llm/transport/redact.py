"""Keeping secrets out of what we print and store. Server text (error bodies, model ids, exception text) passes
`redact` before it enters one of our messages; `Client` passes every decoded response through `scrub` before it is
returned or cached. Both look at decoded text, and through JSON escapes: a key the server wrote as `\\u0073k-...`
(or nested one level deeper, in a JSON answer inside the JSON response) is found as well."""
from __future__ import annotations

import re

import orjson

REDACTED = "[redacted]"
# Shorter keys are placeholders (`EMPTY`, `ollama`, `x`): searching for them would garble ordinary text.
MIN_SECRET = 8
# Bearer tokens (RFC 6750's b64token characters) and OpenAI/Anthropic-style `sk-...` keys.
_BEARER = re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_SK = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\/")


def secret(api_key: str | None) -> str | None:
    """The key as `redact` looks for it: None when there is none or it is a placeholder (see MIN_SECRET)."""
    return api_key if api_key and len(api_key) >= MIN_SECRET else None


def _unescaped(text: str) -> str:
    """`text` with the JSON escapes of printable ASCII characters decoded (`\\u0073` -> `s`, `\\/` -> `/`) until
    none is left, so an escape at any depth of nesting is decoded."""
    def one(match: re.Match) -> str:
        if match[1] is None:
            return "/"
        char = chr(int(match[1], 16))
        return char if " " <= char <= "~" else match[0]

    previous = None
    while text != previous:
        previous, text = text, _ESCAPE.sub(one, text)
    return text


def _without(text: str, key: str) -> str:
    """`text` with `key` replaced by [redacted]; where the key is written through JSON escapes, the text with its
    escapes decoded and the key replaced."""
    if key in text:
        text = text.replace(key, REDACTED)
    if "\\" in text and key in (plain := _unescaped(text)):
        text = plain.replace(key, REDACTED)
    return text


def redact(text: str, key: str | None = None) -> str:
    """`text` with `key` (when `secret` keeps it, in any JSON escaping), bearer tokens and `sk-...` keys replaced by
    [redacted] ("Bearer [redacted]" for a bearer token)."""
    if (key := secret(key)) is not None:
        text = _without(text, key)
    return _SK.sub(REDACTED, _BEARER.sub(rf"\g<1>{REDACTED}", text))


def scrub(obj, key: str | None):
    """Decoded JSON `obj` with `key` (when `secret` keeps it) taken out of every string in it, object keys included,
    in any JSON escaping."""
    if (key := secret(key)) is None:
        return obj
    return _scrubbed(obj, key)


def _scrubbed(obj, key: str):
    if isinstance(obj, str):
        return _without(obj, key)
    if isinstance(obj, list):
        return [_scrubbed(v, key) for v in obj]
    if isinstance(obj, dict):
        return {_without(k, key): _scrubbed(v, key) for k, v in obj.items()}
    return obj


def error_message(raw: bytes, key: str | None) -> str:
    """The server's words for an error response, redacted (see llm.transport.redact)."""
    try:
        error = orjson.loads(raw)["error"]
        text = str(error.get("message", error) if isinstance(error, dict) else error)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = raw[:200].decode("utf-8", "replace").strip()
    return redact(text[:1000], key)
