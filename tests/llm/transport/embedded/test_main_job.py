"""The embedded default end to end: `llm.generate` without --base-url on the real SmolLM2-135M model (our own
server, from wheels), on any x86-64 CPU. Format, counts, determinism and the server's lifetime."""
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from llm.transport.embedded import MODEL
from tests.support.paths import REPO

pytestmark = pytest.mark.slow  # subprocesses: see pyproject's slow marker


def servers(parent: int | None = None) -> list[int]:
    """Pids of running embedded servers (by their module on the command line), those whose parent is `parent`
    if given (other work on the machine may run servers of its own)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"llm.transport.embedded.server\0" in cmdline.read_bytes() and (
                    parent is None or int((cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent):
                found.append(int(cmdline.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return found


def command(out: Path, n: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "llm.generate", "--n", str(n), "--out", str(out), "--domain", "sns",
            "--emotions", "joy,anger", "--quiet", *extra]


def test_embedded_smollm2_writes_the_same_bytes_at_any_concurrency(tmp_path):
    """Four well-formed texts on the real model; the output bytes are the same at the default concurrency (the
    server batches the requests in flight) and at --concurrency 1 (batch 1)."""
    outputs, before = [], set(servers())
    for extra in ((), ("--concurrency", "1")):
        out = tmp_path / f"out{len(outputs)}.jsonl"
        proc = subprocess.run(command(out, 4, *extra), cwd=REPO, capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stderr
        outputs.append(out.read_bytes())
    results = [orjson.loads(line) for line in outputs[0].splitlines()]
    assert sorted(r["id"] for r in results) == [0, 1, 2, 3]
    assert Counter(r["emotion"] for r in results) == {"joy": 2, "anger": 2}
    for r in results:
        assert isinstance(r["text"], str) and r["text"].strip()
        assert r["model"] == MODEL and r["domain"] == "sns"
        assert set(r["validation"]) == {"stage1", "stage2", "stage3"}
        assert r["usage"]["requests"] >= 4 and r["prompt"][-1]["role"] == "user"
    assert outputs[1] == outputs[0]
    assert not set(servers()) - before  # stopped on exit


def _started(proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 120
    while not servers(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    return servers(proc.pid)[0]


def test_ctrl_c_stops_the_embedded_server(tmp_path):
    proc = subprocess.Popen(command(tmp_path / "out.jsonl", 50), cwd=REPO, stderr=subprocess.PIPE, text=True)
    server = _started(proc)
    time.sleep(8)  # let it get going
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    assert proc.stderr.read().strip().splitlines()[-1] == "error: interrupted"
    time.sleep(0.5)
    assert server not in servers()


def _answering(proc: subprocess.Popen, out: Path) -> None:
    """Wait until the run has written its first result (the server is up and answering)."""
    deadline = time.monotonic() + 300
    while not (out.exists() and out.read_bytes().count(b"\n")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)


def test_a_server_that_dies_is_one_line_not_connection_errors(tmp_path):
    """Killed while the run is under way (not while it loads: that is the start's own error): one line that says
    so, no 'interrupted ... rerun' line and no connection errors; what was written is kept."""
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(command(out, 50), cwd=REPO, stderr=subprocess.PIPE, text=True)
    pid = _started(proc)
    _answering(proc, out)
    subprocess.run(["kill", "-9", str(pid)], check=True)
    assert proc.wait(60) == 2
    lines = proc.stderr.read().strip().splitlines()
    assert lines[-1].startswith("error: the embedded server exited with code -9"), lines
    assert not any("rerun" in line or "ClientConnector" in line or "interrupted" in line for line in lines), lines
    assert out.read_bytes().count(b"\n") >= 1
