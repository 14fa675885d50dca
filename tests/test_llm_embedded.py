"""The embedded default: SmolLM2-135M under llama-cpp-python's server. Format and counts only."""
import importlib.util
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from llm.transport.embedded import MODEL

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason="llama-cpp-python is not installed (pip install '.[local]')")


def servers() -> list[int]:
    """Pids of running processes serving the embedded model (by its alias on their command line)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"--model_alias\0" + MODEL.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


def command(out: Path, n: int) -> list[str]:
    return [sys.executable, "-m", "llm.generate", "--n", str(n), "--out", str(out), "--domain", "sns",
            "--emotions", "joy,anger", "--quiet"]


def test_embedded_smollm2_writes_n_well_formed_texts(tmp_path):
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(command(out, 4), cwd=REPO, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr
    results = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(r["id"] for r in results) == [0, 1, 2, 3]
    assert Counter(r["emotion"] for r in results) == {"joy": 2, "anger": 2}
    for r in results:
        assert isinstance(r["text"], str) and r["text"].strip()
        assert r["model"] == MODEL and r["domain"] == "sns"
        assert set(r["validation"]) == {"stage1", "stage2", "stage3"}
        assert r["usage"]["requests"] >= 4 and r["prompt"][-1]["role"] == "user"
    assert not servers()  # stopped on exit


def test_ctrl_c_stops_the_embedded_server(tmp_path):
    proc = subprocess.Popen(command(tmp_path / "out.jsonl", 50), cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not servers():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(3)  # let it get going
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    assert proc.stderr.read().strip().splitlines()[-1] == "error: interrupted"
    time.sleep(0.5)
    assert not servers()
