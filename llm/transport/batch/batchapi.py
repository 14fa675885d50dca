"""An endpoint's OpenAI Batch API as a `Backend` (llm.transport.batch.jobs): the input file uploaded to
`POST /files` (purpose "batch"), the batch created at `POST /batches` (completion window 24h), looked at with
`GET /batches/{id}`, its output and error files read from `GET /files/{id}/content`.

Every call is retried like an online request (429, 5xx, timeouts, dropped connections: `max_attempts` tries with
exponential backoff); an endpoint that answers `GET /batches` with 404 or 405 has no Batch API (`check`). Server
text in our messages is redacted, and the API key is removed from every downloaded file."""
from __future__ import annotations

import asyncio
import secrets

import orjson

from common.errors import UsageError

from ..body import TooLarge, Undecodable
from ..client import Client
from ..http import Unreachable
from ..redact import error_message
from ..redact import REDACTED, redact, secret
from .jobs import BatchFailed, Waiting
from .ledger import Entry, Ledger

TERMINAL = ("completed", "failed", "expired", "cancelled")
MAX_FILE_BYTES = 2**31  # an output file: a batch's answers (its input is at most --batch-max-bytes)
FIND_PAGES = 20  # pages of 100 batches looked through for the batch of an uploaded file
LONG_CALL_S = 600  # the least time an upload or a download may take (--timeout is for a chat request)


class _Retry(Exception):
    pass


class BatchAPI:
    """The Batch API of the endpoint of `client` (an entered `Client`, whose transport it shares; `api_key` is
    removed from what it reads). `await BatchAPI.checked(client, key)` is one that has a Batch API."""

    def __init__(self, client: Client, api_key: str | None):
        self.base_url, self.options, self._client = client.base_url, client.options, client
        self._key, self._secret = api_key, None if secret(api_key) is None else api_key.encode()
        self._timeout = max(self.options.timeout, LONG_CALL_S)

    @classmethod
    async def checked(cls, client: Client, api_key: str | None) -> BatchAPI:
        api = cls(client, api_key)
        await api.check()
        return api

    async def check(self) -> None:
        status, raw = await self._call("GET", "/batches?limit=1", retry=False)
        if status in (404, 405):
            raise UsageError(f"{self.base_url} has no Batch API (GET /batches answered HTTP {status}); leave out "
                             "--batch, or write batch files for its server with --batch-dir DIR")
        self._ok(status, raw, "GET /batches")

    async def _call(self, method: str, path: str, *, retry: bool = True, cap: int = 2**24, body: bytes | None = None,
                    content_type: str | None = None) -> tuple[int, bytes]:
        first, longest = self.options.backoff
        tries = self.options.max_attempts if retry else 1
        for attempt in range(tries):
            try:
                reply = await self._client.call(method, path, body=body, content_type=content_type, cap=cap,
                                                timeout=self._timeout)
                status, raw = reply.status, reply.body
                if status != 429 and status < 500:
                    return status, raw
                why = f"HTTP {status}: {error_message(raw, self._key)}"
            except (Unreachable, asyncio.TimeoutError, TooLarge, Undecodable) as exc:
                why = redact(str(exc), self._key) or type(exc).__name__
                if attempt + 1 == tries and not retry:
                    raise UsageError(f"cannot reach {self.base_url}: {why}") from None
            if attempt + 1 < tries:
                await asyncio.sleep(min(longest, first * 2**attempt))
        raise UsageError(f"{method} {self.base_url}{path.partition('?')[0]} failed {tries} times, last: {why}; "
                         "rerun the same command to go on (batches already made are resumed, not made again)")

    def _ok(self, status: int, raw: bytes, what: str) -> dict:
        if status in (401, 403):
            raise UsageError(f"{self.base_url} refused the API key (HTTP {status}): {error_message(raw, self._key)}")
        if status != 200:
            raise UsageError(f"{what} at {self.base_url} answered HTTP {status}: {error_message(raw, self._key)}")
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                raise TypeError
            return data
        except (orjson.JSONDecodeError, TypeError):
            raise UsageError(f"{what} at {self.base_url} did not answer a JSON object") from None

    async def submit(self, entry: Entry, data: bytes, ledger: Ledger) -> None:
        form, content_type = _form(data, f"{entry.name}.jsonl")
        uploaded = self._ok(*await self._call("POST", "/files", body=form, content_type=content_type), "POST /files")
        ledger.update(entry, state="uploaded", file_id=str(uploaded.get("id")))
        await self._create(entry, ledger)

    async def _create(self, entry: Entry, ledger: Ledger) -> None:
        ledger.update(entry, state="creating")  # from here on, a rerun looks for this file's batch first
        body = {"input_file_id": entry.file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h",
                "metadata": {"personagen": entry.name}}
        made = self._ok(*await self._call("POST", "/batches", body=orjson.dumps(body),
                                          content_type="application/json"), "POST /batches")
        ledger.update(entry, state="submitted", batch_id=str(made.get("id")))

    async def adopt(self, entry: Entry, ledger: Ledger) -> bool:
        if entry.state == "submitted":
            return True
        if entry.state != "creating":
            return False  # no batch was made of it: its requests go into the next round
        if (found := await self._find(entry.file_id)) is not None:
            ledger.update(entry, state="submitted", batch_id=found)
            return True
        await self._create(entry, ledger)
        return True

    async def _find(self, file_id: str) -> str | None:
        """The id of the batch made of the input file `file_id`, if there is one."""
        after = ""
        for _ in range(FIND_PAGES):
            page = self._ok(*await self._call("GET", f"/batches?limit=100{after}"), "GET /batches")
            for batch in page.get("data") or []:
                if batch.get("input_file_id") == file_id:
                    return str(batch["id"])
            if not page.get("has_more") or not page.get("last_id"):
                return None
            after = f"&after={page['last_id']}"
        return None

    async def finished(self, entry: Entry) -> tuple[str, bytes, bytes] | None:
        batch = self._ok(*await self._call("GET", f"/batches/{entry.batch_id}"), "GET /batches/{id}")
        status = batch.get("status")
        if status not in TERMINAL:
            return None
        if status == "failed":
            errors = (batch.get("errors") or {}).get("data") or [{}]
            why = redact(str(errors[0].get("message") or errors[0] or "no reason given")[:300], self._key)
            raise BatchFailed(f"batch {entry.batch_id} failed: {why}")
        return status, await self._content(batch.get("output_file_id")), await self._content(
            batch.get("error_file_id"))

    async def _content(self, file_id: str | None) -> bytes:
        if not file_id:
            return b""
        status, raw = await self._call("GET", f"/files/{file_id}/content", cap=MAX_FILE_BYTES)
        if status != 200:
            self._ok(status, raw, "GET /files/{id}/content")
        return raw if self._secret is None else raw.replace(self._secret, REDACTED.encode())

    def waiting(self, entries: list[Entry]) -> Waiting | None:
        return None


def _form(data: bytes, filename: str) -> tuple[bytes, str]:
    """The multipart/form-data body of an upload for a batch (purpose "batch", the file `data`), and its
    Content-Type; the boundary is random, so it is in no file."""
    boundary = f"personagen-{secrets.token_hex(16)}"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/jsonl\r\n\r\n")
    return b"".join((head.encode(), data, f"\r\n--{boundary}--\r\n".encode())), \
        f"multipart/form-data; boundary={boundary}"
