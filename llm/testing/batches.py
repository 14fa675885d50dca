"""The test server's OpenAI Batch API (`/v1/files`, `/v1/batches`), mounted by llm.testing.faults.FaultServer, with
scaled time and fault injection for the tests and benchmarks/bench_batch.py.

A batch is answered line by line by the server's own chat answers (`FaultServer.completion`: a function of the
request body), all at once when `delay` seconds have passed since it was created (status validating, then
in_progress, then completed; time is scaled: `delay` stands for the provider's hours). Faults, in creation order:
the first `expire` batches expire with the first half of their lines answered, the next `cancel` are cancelled with
a third answered, the next `fail` fail validation (nothing answered); a share `p_line_error` of the lines of the
others land in the error file (HTTP 500), drawn from a seeded RNG. A line repeating an earlier custom_id of its file
fails the whole batch, as OpenAI's does. `/_batches` lists every batch with its custom_ids, for the tests."""
from __future__ import annotations

import dataclasses
import random
import time
import uuid
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from common.hashing import canonical, hexdigest

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchFaults:
    """What the Batch API of the test server does (see the module docstring)."""

    delay: float = 0.2
    p_line_error: float = 0.0
    expire: int = 0
    cancel: int = 0
    fail: int = 0
    enabled: bool = True  # False: an endpoint without the Batch API (404 on /v1/files and /v1/batches)
    seed: int = 0


@dataclass
class _Batch:
    info: dict
    lines: list[dict]
    fate: str  # "completed", "expired", "cancelled" or "failed"
    created: float = field(default_factory=time.monotonic)


class BatchAPI:
    """The routes of the Batch API over `server` (a FaultServer: its `completion(body)` answers a line)."""

    def __init__(self, server, faults: BatchFaults):
        self.server, self.faults = server, faults
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, _Batch] = {}
        self._rng = random.Random(faults.seed)

    def mount(self, app: web.Application) -> None:
        if not self.faults.enabled:
            return
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches", self._list)
        app.router.add_get("/v1/batches/{id}", self._get)
        app.router.add_get("/_batches", self._record)

    def _store(self, data: bytes, purpose: str, name: str) -> dict:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": name, "purpose": purpose}

    async def _upload(self, request: web.Request) -> web.Response:
        if not self.server.authorized(request.headers):
            return _error(401, "Incorrect API key provided")
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "batch" or not hasattr(upload, "file"):
            return _error(400, "expected purpose=batch and a file")
        return web.json_response(self._store(upload.file.read(), "batch", upload.filename))

    async def _content(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["id"])
        if data is None:
            return _error(404, "No such file")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _create(self, request: web.Request) -> web.Response:
        if not self.server.authorized(request.headers):
            return _error(401, "Incorrect API key provided")
        body = await request.json()
        data = self.files.get(body.get("input_file_id"))
        if data is None:
            return _error(404, f"No such file: {body.get('input_file_id')}")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, "endpoint must be /v1/chat/completions and completion_window 24h")
        lines = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        k = len(self.batches)
        f = self.faults
        fate = ("expired" if k < f.expire else "cancelled" if k < f.expire + f.cancel
                else "failed" if k < f.expire + f.cancel + f.fail else "completed")
        ids = [line.get("custom_id") for line in lines]
        if len(set(ids)) != len(ids):
            fate = "failed"
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        info = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
                "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata")}
        self.batches[batch_id] = _Batch(info, lines, fate)
        return web.json_response(info)

    async def _get(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _error(404, "No such batch")
        return web.json_response(self._advance(batch))

    async def _list(self, request: web.Request) -> web.Response:
        """Newest first, `limit` of them after the id `after` (OpenAI's cursor)."""
        infos = [self._advance(b) for b in reversed(self.batches.values())]
        after = request.query.get("after")
        if after is not None:
            ids = [i["id"] for i in infos]
            infos = infos[ids.index(after) + 1:] if after in ids else []
        limit = int(request.query.get("limit", 20))
        page = infos[:limit]
        return web.json_response({"object": "list", "data": page, "has_more": len(infos) > limit,
                                  "first_id": page[0]["id"] if page else None,
                                  "last_id": page[-1]["id"] if page else None})

    def _advance(self, batch: _Batch) -> dict:
        """The batch's state now: validating, in progress, then (after `delay`) its fate, answered once."""
        info = batch.info
        if info["status"] in TERMINAL:
            return info
        age = time.monotonic() - batch.created
        if age < self.faults.delay:
            info["status"] = "validating" if age < self.faults.delay / 5 else "in_progress"
            return info
        if batch.fate == "failed":
            info.update(status="failed", errors={"object": "list", "data": [
                {"code": "invalid_request", "message": "the input file holds a repeated custom_id or an invalid "
                 "line (injected)", "line": None}]})
            return info
        answered = {"expired": len(batch.lines) // 2, "cancelled": len(batch.lines) // 3}.get(batch.fate,
                                                                                            len(batch.lines))
        out, errors = [], []
        for i, line in enumerate(batch.lines):
            if i >= answered:
                errors.append({"id": f"batch_req_{i}", "custom_id": line["custom_id"], "response": None,
                               "error": {"code": f"batch_{batch.fate}", "message": f"this request was not "
                                         f"answered: the batch was {batch.fate}"}})
            elif self._rng.random() < self.faults.p_line_error:
                errors.append(_line(i, line, 500, {"error": {"message": "server error (injected)"}}))
            else:
                out.append(_line(i, line, *self.server.completion(line["body"])))
        info["request_counts"] = {"total": len(batch.lines), "completed": len(out), "failed": len(errors)}
        for key, lines in (("output_file_id", out), ("error_file_id", errors)):
            if lines:
                data = b"".join(orjson.dumps(x) + b"\n" for x in lines)
                info[key] = self._store(data, "batch_output", f"{info['id']}_{key}.jsonl")["id"]
        info["status"] = batch.fate
        return info

    async def _record(self, request: web.Request) -> web.Response:
        return web.json_response([{"id": b.info["id"], "status": b.info["status"], "fate": b.fate,
                                   "custom_ids": [line["custom_id"] for line in b.lines]}
                                  for b in self.batches.values()])


def _line(i: int, line: dict, status: int, body: dict) -> dict:
    return {"id": f"batch_req_{i}", "custom_id": line["custom_id"],
            "response": {"status_code": status, "request_id": hexdigest(canonical(line["body"]))[:16], "body": body},
            "error": None}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "code": status}}, status=status)


HELP = {  # each BatchFaults field's flag
    "delay": "seconds from a batch's creation to its answers (scaled time: the provider's hours)",
    "p_line_error": "share of a batch's lines answered in its error file (HTTP 500)",
    "expire": "the first N batches expire with half their lines answered",
    "cancel": "the next N batches are cancelled with a third of their lines answered",
    "fail": "the next N batches fail validation, nothing answered",
    "enabled": "no Batch API: 404 on /v1/files and /v1/batches",
    "seed": "seed of the line errors",
}


def add_arguments(parser) -> None:
    """The command line of the batch faults (`--batch-delay`, `--batch-expire`, ..., `--no-batch-api`), in a help
    group of their own."""
    group = parser.add_argument_group("batch API")
    for f in dataclasses.fields(BatchFaults):
        if f.name == "enabled":
            group.add_argument("--no-batch-api", dest="batch_enabled", action="store_false", help=HELP[f.name])
        else:
            group.add_argument(f"--batch-{f.name.replace('_', '-')}", dest=f"batch_{f.name}",
                               type=float if isinstance(f.default, float) else int, default=f.default,
                               help=HELP[f.name])


def from_arguments(args: dict) -> BatchFaults:
    """The BatchFaults of parsed arguments (taking its `batch_` entries out of `args`)."""
    return BatchFaults(**{f.name: args.pop(f"batch_{f.name}") for f in dataclasses.fields(BatchFaults)})


def argv(faults: BatchFaults) -> list[str]:
    """The command line of `faults` (what `add_arguments` reads)."""
    out = []
    for f in dataclasses.fields(BatchFaults):
        value = getattr(faults, f.name)
        if f.name == "enabled":
            out += [] if value else ["--no-batch-api"]
        else:
            out += [f"--batch-{f.name.replace('_', '-')}", str(value)]
    return out
