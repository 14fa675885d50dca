"""The lines of a batch: input lines (`custom_id`, `method`, `url`, `body`) split into files under the limits
(`files`), and the outcome of every custom_id in the output and error files (`outcomes`).

The custom_id of a request is its cache key (llm.transport.client: the hash of its scope and body), so the same
request has the same custom_id in every round and every rerun, and an answer goes straight into the cache."""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from common.errors import UsageError

URL = "/v1/chat/completions"
_HEAD = b'{"custom_id":"'
_MIDDLE = f'","method":"POST","url":"{URL}","body":'.encode()


def line(custom_id: str, payload: bytes) -> bytes:
    """The input line of one request (`payload`: its body's JSON, as the online client sends it)."""
    return _HEAD + custom_id.encode() + _MIDDLE + payload + b"}\n"


def files(lines: list[tuple[str, bytes]], max_requests: int, max_bytes: int) -> list[tuple[list[str], bytes]]:
    """(custom_ids, file content) of the input files holding `lines` ((custom_id, payload) in order), each at most
    `max_requests` lines and `max_bytes` bytes; UsageError for a request that no file can hold."""
    out, ids, parts, size = [], [], [], 0
    for custom_id, payload in lines:
        data = line(custom_id, payload)
        if len(data) > max_bytes:
            raise UsageError(f"one request takes {len(data)} bytes in a batch file, over --batch-max-bytes "
                             f"{max_bytes}")
        if ids and (len(ids) == max_requests or size + len(data) > max_bytes):
            out.append((ids, b"".join(parts)))
            ids, parts, size = [], [], 0
        ids.append(custom_id)
        parts.append(data)
        size += len(data)
    if ids:
        out.append((ids, b"".join(parts)))
    return out


@dataclass(frozen=True)
class Outcome:
    """What became of one request of a batch: its chat.completion (`data`), or why not and whether a retry may
    mend it (`final`: an HTTP 4xx other than 429, as online)."""

    data: dict | None = None
    why: str = ""
    final: bool = False


def outcome(obj: dict) -> Outcome:
    """The outcome of one line of an output or error file."""
    response = obj.get("response")
    if not isinstance(response, dict):
        error = obj.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return Outcome(why=str(code or error or "no response"))
    status = response.get("status_code")
    body = response.get("body")
    if status != 200:
        final = isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)
        message = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(message, dict):
            message = message.get("message", message)
        return Outcome(why=f"HTTP {status}: {str(message)[:200]}", final=final)
    try:
        if not isinstance(body["choices"][0]["message"]["content"], str):
            raise TypeError
    except (KeyError, IndexError, TypeError):
        return Outcome(why="malformed response")
    return Outcome(body)


def outcomes(*contents: bytes) -> dict[str, Outcome]:
    """The outcome of every custom_id in the output and error files `contents` (an answer wins over an error line
    for the same custom_id); lines that are not objects with a custom_id are skipped."""
    found: dict[str, Outcome] = {}
    for content in contents:
        for raw in content.splitlines():
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
                continue
            result = outcome(obj)
            if result.data is not None or obj["custom_id"] not in found:
                found[obj["custom_id"]] = result
    return found


def complete(content: bytes) -> bool:
    """Whether a file's every line is whole JSON (not one still being written)."""
    try:
        for raw in content.splitlines():
            if raw.strip():
                orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return content.endswith(b"\n") or not content.strip()
