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


def _main_job(out: Path, n: int, *extra: str) -> list[dict]:
    """Run llm.generate on the embedded model; its results, after the checks every run's output passes."""
    proc = subprocess.run(command(out, n, *extra), cwd=REPO, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr
    results = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(r["id"] for r in results) == list(range(n))
    assert Counter(r["emotion"] for r in results) == {"joy": n // 2, "anger": n // 2}
    for r in results:
        assert isinstance(r["text"], str) and r["text"].strip()
        assert r["model"] == MODEL and r["domain"] == "sns"
        assert set(r["validation"]) == {"stage1", "stage2", "stage3"}
        assert r["usage"]["requests"] >= 4 and r["prompt"][-1]["role"] == "user"
    return results


def test_embedded_smollm2_writes_well_formed_texts_and_stops_its_server(tmp_path):
    """The real model end to end, in the quick run: two texts, and no server left running."""
    before = set(servers())
    _main_job(tmp_path / "out.jsonl", 2)
    assert not set(servers()) - before


@pytest.mark.slow
def test_embedded_smollm2_writes_the_same_bytes_at_any_concurrency(tmp_path):
    """Four texts; the output bytes are the same at the default concurrency (the server batches the requests in
    flight) and at --concurrency 1 (batch 1)."""
    batched, single = tmp_path / "batched.jsonl", tmp_path / "single.jsonl"
    _main_job(batched, 4)
    _main_job(single, 4, "--concurrency", "1")
    assert batched.read_bytes() == single.read_bytes()


def _started(proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 120
    while not servers(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    return servers(proc.pid)[0]


@pytest.mark.slow
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


@pytest.mark.slow
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
