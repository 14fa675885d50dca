"""Batch mode (issue 22): the same slots driven in rounds through the Batch API of the test server: the records of
an online run in few rounds (redraws included), answers in the cache for a later online run, kill -9 while
polling and a resume that submits no custom_id twice, expired and cancelled batches and failed lines retried,
bounded attempts, a failed batch named in one line, files under the limits, and dialogue mode."""
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from common.cli import run
from llm.generate import main
from llm.testing.batches import BatchFaults
from llm.testing.faults import Faults, fetch, spawned
from tests.support.batching import argv, online_records, records, requests_per_slot
from tests.support.paths import REPO

FAULTS = Faults(implausible=0.15, seed=3)
N = 24


@pytest.fixture(scope="module")
def online(tmp_path_factory) -> list[dict]:
    return online_records(tmp_path_factory.mktemp("online"), FAULTS, N)


def summary(out: Path) -> dict:
    return orjson.loads(Path(f"{out}.summary.json").read_bytes())


def submitted(batches: list[dict]) -> Counter:
    """How many batches each custom_id was sent in."""
    return Counter(c for b in batches for c in b["custom_ids"])


def test_a_batch_run_gives_the_online_records_in_as_many_rounds_as_its_longest_slot_asks(tmp_path, online):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS, batch=BatchFaults(delay=0.05)) as url:
        assert run(main, argv(url, out, N, "--batch")) == 0
        batches = fetch(url, "_batches")
        assert fetch(url)["arrivals"] == 0  # not one online request
    results = records(out)
    assert results == online
    s = summary(out)
    assert s["persona_redraws"] > 0  # redraws happened, and went into later rounds
    # every round holds the next request of every open slot: the run takes as many rounds as its longest slot asks
    assert s["batch"]["rounds"] == max(map(requests_per_slot, results)) == len(batches)
    assert s["batch"]["batches"] == [b["id"] for b in batches] and s["batch"]["statuses"] == {"completed": len(batches)}
    assert len(batches[0]["custom_ids"]) == N  # round 1: stage 1 of every slot
    assert max(submitted(batches).values()) == 1  # no request sent twice
    assert s["requests"] == sum(len(b["custom_ids"]) for b in batches)


def test_answered_lines_are_in_the_cache_so_an_online_rerun_costs_nothing(tmp_path, online):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS, batch=BatchFaults(delay=0.02)) as url:
        assert run(main, argv(url, out, N, "--batch")) == 0
        out.unlink()
        assert run(main, argv(url, out, N)) == 0  # online, same endpoint, same cache
        assert fetch(url)["arrivals"] == 0
    assert records(out) == online and summary(out)["cache_hits"] > 0


@pytest.mark.parametrize("faults", [BatchFaults(delay=0.02, expire=1), BatchFaults(delay=0.02, cancel=2),
                                    BatchFaults(delay=0.02, p_line_error=0.2, seed=5)],
                         ids=["expired", "cancelled", "failed-lines"])
def test_what_a_batch_left_unanswered_goes_into_the_next_round_and_what_it_answered_is_kept(tmp_path, online, faults):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS, batch=faults) as url:
        assert run(main, argv(url, out, N, "--batch")) == 0
        batches = fetch(url, "_batches")
    assert records(out) == online
    first = batches[0]
    if faults.expire or faults.cancel:
        kept = len(first["custom_ids"]) // (2 if faults.expire else 3)  # the partial output the batch had
        answered, unanswered = first["custom_ids"][:kept], first["custom_ids"][kept:]
        assert first["fate"] == ("expired" if faults.expire else "cancelled")
        assert set(unanswered) <= set(batches[1]["custom_ids"])  # the rest, in the next round
        assert not set(answered) & {c for b in batches[1:] for c in b["custom_ids"]}  # never asked again
    s = summary(out)
    assert s["retries"] > 0 and sum(s["faults"].values()) == s["retries"]
    assert s["requests"] == sum(len(b["custom_ids"]) for b in batches)


def test_attempts_are_bounded_like_online_retries(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS, batch=BatchFaults(delay=0.01, p_line_error=1.0)) as url:
        assert run(main, argv(url, out, 4, "--batch", "--max-attempts", "3")) == 1
        batches = fetch(url, "_batches")
    assert len(batches) == 3 and all(n == 3 for n in submitted(batches).values())
    s = summary(out)
    assert s["failed"] == 4 and "gave up after 3 batches, last: HTTP 500" in s["failures"]["0"]
    assert capsys.readouterr().err.startswith("error: 4 of 4 texts failed")


def test_a_failed_batch_is_one_line_naming_its_id_and_a_rerun_makes_a_new_one(tmp_path, capsys, online):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS, batch=BatchFaults(delay=0.01, fail=1)) as url:
        assert run(main, argv(url, out, N, "--batch")) == 2
        failed = fetch(url, "_batches")[0]["id"]
        err = capsys.readouterr().err
        assert err == f"error: batch {failed} failed: the input file holds a repeated custom_id or an invalid line " \
                      "(injected)\n"
        assert run(main, argv(url, out, N, "--batch")) == 0
        assert len(fetch(url, "_batches")[1]["custom_ids"]) == N  # round 1 again, in a new batch
    assert records(out) == online


def test_round_files_stay_under_the_request_and_byte_limits(tmp_path, online):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS, batch=BatchFaults(delay=0.01)) as url:
        assert run(main, argv(url, out, N, "--batch", "--batch-max-requests", "7")) == 0
        by_count = fetch(url, "_batches")
    assert max(len(b["custom_ids"]) for b in by_count) == 7 and records(out) == online
    out2 = tmp_path / "bytes.jsonl"
    with spawned(FAULTS, batch=BatchFaults(delay=0.01)) as url:
        assert run(main, argv(url, out2, N, "--batch", "--batch-max-bytes", "12000")) == 0
        by_size = fetch(url, "_batches")
    assert len(by_size) > summary(out2)["batch"]["rounds"] and records(out2) == online
    s = summary(out2)
    assert s["batch"]["rounds"] == summary(out)["batch"]["rounds"]  # more files, not more rounds


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_while_polling_then_the_same_command_resumes_the_same_batches(tmp_path, online):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS, batch=BatchFaults(delay=1.5)) as url:
        command = [sys.executable, "-m", "llm.generate", *argv(url, out, N, "--batch", "--batch-poll", "0.05")]
        proc = subprocess.Popen(command, cwd=REPO)
        deadline = time.monotonic() + 120
        while len(fetch(url, "_batches")) < 2:  # killed while its second round's batch is being polled
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = fetch(url, "_batches")
        assert subprocess.run(command, cwd=REPO).returncode == 0
        batches = fetch(url, "_batches")
    assert len(before) == 2 and batches[:2] == [{**b, "status": "completed"} for b in before]  # none made again
    assert max(submitted(batches).values()) == 1  # no custom_id submitted twice
    assert records(out) == online
    s = summary(out)
    assert before[1]["id"] in s["batch"]["batches"]  # the rerun resumed polling the killed run's batch
    assert s["batch"]["rounds"] == len(batches) - 2


def test_dialogue_mode_in_batch_mode_gives_the_online_dialogues(tmp_path):
    dialogue = ["--mode", "dialogue", "--n-dialogues", "6", "--quiet", "--model", "test-model"]
    faults = Faults(wrong_turns=0.3, seed=2)
    with spawned(faults, batch=BatchFaults(delay=0.01)) as url:
        assert run(main, [*dialogue, "--out", str(tmp_path / "b.jsonl"), "--base-url", url, "--batch",
                          "--batch-poll", "0.02"]) == 0
        rounds = summary(tmp_path / "b.jsonl")["batch"]["rounds"]
    with spawned(faults) as url:
        assert run(main, [*dialogue, "--out", str(tmp_path / "o.jsonl"), "--base-url", url]) == 0
    batched, online = records(tmp_path / "b.jsonl"), records(tmp_path / "o.jsonl")
    assert batched == online and len(batched) == 6
    # a round per request of the longest slot (3 tries a draw) at most: a redrawn dialogue may repeat a request
    assert max(d["text_attempts"] for d in batched) < rounds <= max(
        d["text_attempts"] + 3 * (d["dialogue_draws"] - 1) for d in batched)


def test_the_summary_and_the_card_carry_the_batch_ids_and_the_cost_spent(tmp_path):
    out = tmp_path / "out.jsonl"
    prices = ("--price-in", "1", "--price-out", "2")
    with spawned(FAULTS, batch=BatchFaults(delay=0.01)) as url:
        assert run(main, argv(url, out, 6, "--batch", *prices, "--max-cost", "5")) == 0
        batches = [b["id"] for b in fetch(url, "_batches")]
        served = fetch(url, "_bodies")
    s = summary(out)
    assert s["batch"]["batches"] == s["batch"]["output_batches"] == batches and served == []  # no online request
    assert 0 < s["cost"] == s["output_spent"] <= 5 and s["max_cost"] == 5
    expected = (s["prompt_tokens"] * 1 + s["completion_tokens"] * 2) / 1e6 * 0.5  # at the batch discount
    assert s["cost"] == pytest.approx(expected, abs=1e-6)
    card = (tmp_path / "README.md").read_text()
    assert "## Batches" in card and "OpenAI Batch API, at 0.5 times the prices" in card
    assert all(f"- `{b}`" in card for b in batches)
    assert f"| cost spent | {s['cost']} | {s['output_spent']} |" in card


async def test_a_run_killed_between_uploading_and_recording_its_batch_finds_that_batch_instead_of_making_another(
        tmp_path):
    from llm.testing.faults import FaultServer
    from llm.transport.batch.batchapi import BatchAPI
    from llm.transport.batch.ledger import Ledger
    from llm.transport.batch.lines import files
    from llm.transport.cache import Cache
    from llm.transport.client import Client

    body = orjson.dumps({"model": "test-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
    async with FaultServer(batch=BatchFaults(delay=0.0)) as server:
        async with Client(server.url, "test-model") as client:
            api = await BatchAPI.checked(client, None)
            cache = Cache(tmp_path / "c.sqlite")
            ledger = Ledger(cache)
            (ids, data), = files([("a" * 64, body)], 10, 10_000)
            made = ledger.add("round-0001-001", 1, ids)
            await api.submit(made, data, ledger)  # uploaded and created ...
            ledger.update(made, state="creating", batch_id=None)  # ... but killed before its id was recorded
            for k in range(150):  # other batches made since: the search pages through the newest first
                await api.submit(ledger.add(f"other-{k}", 0, ids), data, ledger)
            resumed = [e for e in Ledger(cache).open() if e.name == made.name]
            assert [e.state for e in resumed] == ["creating"]
            assert await api.adopt(resumed[0], ledger)
            first = next(iter(server.batch_api.batches))
            assert resumed[0].batch_id == first and len(server.batch_api.batches) == 151  # found, none made
            dropped = ledger.add("round-0002-001", 2, ids)  # uploaded nothing: nothing to find, nothing made
            assert not await api.adopt(dropped, ledger) and len(server.batch_api.batches) == 151
            cache.close()


def test_dedup_in_batch_mode_settles_as_online_does(tmp_path):
    """A slot waiting for its turn to settle (--dedup) does not hold a round back: the rounds go on, and the output
    is the online run's."""
    repeats = Faults(duplicate_rate=0.5, seed=3)
    with spawned(repeats, batch=BatchFaults(delay=0.02)) as url:
        assert run(main, argv(url, tmp_path / "batch.jsonl", N, "--batch", "--dedup", "near")) == 0
        assert run(main, argv(url, tmp_path / "online.jsonl", N, "--dedup", "near")) == 0
    assert (tmp_path / "batch.jsonl").read_bytes() == (tmp_path / "online.jsonl").read_bytes()
    assert sum(summary(tmp_path / "batch.jsonl")["dedup"]["regenerated"].values()) > 0
