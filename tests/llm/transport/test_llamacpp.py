"""llama.cpp as a user-run endpoint: `llama_cpp.server` (the optional `llamacpp` extra, built from source) at
--base-url with the `llamacpp` dialect. Skipped where llama-cpp-python is not installed (the default install) and
on CPUs with AMX, where llama.cpp's AMX matrix path segfaults (llama.cpp issue 20824)."""
import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import orjson
import pytest

from common.cpus import has_amx
from llm.transport.embedded import MODEL, gguf_path
from tests.support.paths import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')"),
    pytest.mark.skipif(has_amx(), reason="this CPU has AMX, where llama.cpp segfaults (llama.cpp issue 20824)"),
]


def test_generate_against_a_llama_cpp_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()),
                               "--model_alias", MODEL, "--n_ctx", "2048", "--host", "127.0.0.1", "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.25)
        out = tmp_path / "out.jsonl"
        proc = subprocess.run([sys.executable, "-m", "llm.generate", "--n", "2", "--out", str(out), "--domain", "sns",
                               "--emotions", "joy,anger", "--quiet", "--base-url", f"http://127.0.0.1:{port}/v1",
                               "--model", MODEL, "--dialect", "llamacpp"], cwd=REPO, capture_output=True, text=True,
                              timeout=400)
        assert proc.returncode == 0, proc.stderr
        results = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        assert Counter(r["emotion"] for r in results) == {"joy": 1, "anger": 1}
        assert all(r["text"].strip() and set(r["validation"]) == {"stage1", "stage2", "stage3"} for r in results)
    finally:
        server.terminate()
        server.wait(10)
