"""Helpers of the batch tests: the command line of a batch run against the test server, the records of an output,
and an offline answerer standing in for vLLM's run_batch (each input line posted to the test server)."""
import urllib.request
from pathlib import Path

import orjson

from common.cli import run
from llm.generate import main
from llm.testing.faults import spawned
from llm.transport.batch.offline import OUT


def argv(url: str | None, out: Path, n: int, *extra: str) -> list[str]:
    endpoint = ["--base-url", url] if url else []
    return ["--n", str(n), "--out", str(out), "--domain", "sns", *endpoint, "--model", "test-model", "--quiet",
            "--batch-poll", "0.02", *extra]


def records(path: Path) -> list[dict]:
    return sorted((orjson.loads(line) for line in path.read_bytes().splitlines()), key=lambda r: r["id"])


def online_records(directory: Path, faults, n: int) -> list[dict]:
    """The records of the same run online: the reference a batch run must equal."""
    out = directory / "out.jsonl"
    with spawned(faults) as url:
        assert run(main, argv(url, out, n)) == 0
    return records(out)


def requests_per_slot(result: dict) -> int:
    """The requests a text slot took: its rejected draws' validation answers and its last draw's requests."""
    return sum(len(r["validation"]) for r in result["rejected_draws"]) + result["usage"]["requests"]


def run_batch(url: str, path: Path) -> Path:
    """Answer the batch input file `path` into `path`.out.jsonl, as vLLM's run_batch does, by posting each line's
    body to the test server at `url`."""
    lines = []
    for raw in path.read_bytes().splitlines():
        line = orjson.loads(raw)
        request = urllib.request.Request(f"{url}/chat/completions", data=orjson.dumps(line["body"]),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as resp:
            body = orjson.loads(resp.read())
        lines.append({"id": f"vllm-{len(lines)}", "custom_id": line["custom_id"],
                      "response": {"status_code": 200, "request_id": "r", "body": body}, "error": None})
    out = Path(f"{path}{OUT}")
    out.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    return out


def inputs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.jsonl") if not p.name.endswith(OUT))
