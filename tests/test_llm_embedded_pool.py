"""The embedded backend's servers: one single-thread server per usable core behind the weighted Pool, one server
on one core; the outputs do not depend on how many servers answer (deterministic test servers stand in for
llama.cpp, which needs no GPU but minutes)."""
import os
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import orjson
import pytest

from common.cli import run
from llm.generate import main
from llm.testserver import Faults, fetch, spawned
from llm.transport import embedded
from common.cpus import usable_cores
from llm.transport.embedded import MODEL, server_command, server_plan

FAULTS = Faults(models=(MODEL,), owned_by="me", latency=(0.0, 0.01), implausible=0.1)


def test_one_single_thread_server_per_usable_core(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # the affinity mask wins over the machine's count
    assert usable_cores() == 4
    assert server_plan() == (4, 1)
    assert server_plan(2) == (2, 2)  # fewer servers than cores: the cores are shared out


def test_one_core_falls_back_to_one_server_with_one_thread(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert server_plan() == (1, 1)


def test_without_an_affinity_mask_the_cpu_count_decides(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert server_plan() == (1, 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert server_plan() == (2, 1)


def test_a_bad_server_count_is_refused():
    with pytest.raises(ValueError, match="servers must be >= 1"):
        server_plan(-1, 2)


def test_the_server_command_pins_both_thread_counts():
    command = server_command(Path("/m.gguf"), 8123, 1)
    assert command[command.index("--n_threads") + 1] == "1"
    assert command[command.index("--n_threads_batch") + 1] == "1"
    assert command[command.index("--port") + 1] == "8123" and "--model_alias" in command


def generate(tmp_path: Path, monkeypatch, n_servers: int) -> tuple[list[dict], list[int]]:
    """`llm.generate` without --base-url, its embedded servers replaced by n deterministic test servers."""
    with ExitStack() as stack:
        urls = [stack.enter_context(spawned(FAULTS)) for _ in range(n_servers)]

        @asynccontextmanager
        async def fake_servers(servers=None, startup_timeout=180.0, model=None):
            yield urls

        monkeypatch.setattr(embedded, "embedded_servers", fake_servers)
        monkeypatch.setattr(embedded, "served_gguf", lambda: Path("/served.Q8_0.gguf"))
        out = tmp_path / f"out{n_servers}.jsonl"
        assert run(main, ["--n", "12", "--out", str(out), "--domain", "sns", "--emotions", "joy,anger",
                          "--quiet", "--seed", "5"]) == 0
        served = [fetch(url)["served"] for url in urls]
    records = sorted((orjson.loads(line) for line in out.read_bytes().splitlines()), key=lambda r: r["id"])
    return records, served


def test_several_servers_give_the_outputs_of_one(tmp_path, monkeypatch):
    one, served_one = generate(tmp_path, monkeypatch, 1)
    three, served_three = generate(tmp_path, monkeypatch, 3)
    assert len(one) == 12 and all(r["model"] == MODEL for r in one)
    assert [(r["id"], r["emotion"], r["text"], r["validation"]) for r in three] == \
           [(r["id"], r["emotion"], r["text"], r["validation"]) for r in one]
    assert all(n > 0 for n in served_three)  # every server answered a share
    assert sum(served_three) == served_one[0]  # the same requests, only spread out


async def test_a_server_that_fails_to_start_stops_the_others(monkeypatch):
    import asyncio

    from common.errors import UsageError

    events = []

    @asynccontextmanager
    async def fake_server(model, threads, startup_timeout):
        i = len([e for e in events if e.startswith("start")])
        events.append(f"start{i}")
        try:
            if i == 1:
                await asyncio.sleep(0.05)
                raise UsageError("the embedded llama.cpp server exited with code 1")
            if i == 2:
                await asyncio.sleep(60)  # still starting when server 1 fails
            yield f"http://127.0.0.1:{8000 + i}/v1"
        finally:
            events.append(f"stop{i}")

    monkeypatch.setattr(embedded, "embedded_server", fake_server)
    with pytest.raises(UsageError, match="exited with code 1"):
        async with embedded.embedded_servers(Path("/m.gguf"), 3):
            raise AssertionError("no server set may be yielded")
    assert sorted(e for e in events if e.startswith("stop")) == ["stop0", "stop1", "stop2"]
