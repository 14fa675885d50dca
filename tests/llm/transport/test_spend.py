"""The budget (`--max-cost`, issue 22): a request waits while requests in flight may free enough and the run stops
(exit 1, one line with spent and remaining) when none can; the server side never sees more than the budget's
worth of tokens, online, in batch mode (at the discount) and across Ray shards; what earlier invocations spent
counts, and a rerun with a larger budget goes on to the records of an unbudgeted run."""
import asyncio
import dataclasses
import signal
import subprocess
import sys
import time

import orjson
import pytest

from common.cli import run
from llm.generate import main
from llm.testing.batches import BatchFaults
from llm.testing.faults import Faults, fetch, spawned
from llm.transport.spend import BudgetReached, Prices, Spend
from tests.support.batching import argv, records
from tests.support.paths import REPO

# the server's window spans the whole test: its max_tokens_in_window is every token it served
FAULTS = Faults(implausible=0.15, seed=3, window=1e9)
PRICE = 1000.0  # per million prompt and completion tokens: a token costs 0.001
N = 12


def priced(*extra: str) -> tuple[str, ...]:
    return ("--price-in", str(PRICE), "--price-out", str(PRICE), *extra)


def served_cost(url: str, discount: float = 1.0) -> float:
    """What the server's answers cost at the prices, from its own count of the tokens it served."""
    return fetch(url)["max_tokens_in_window"] * PRICE / 1e6 * discount


def summary(out) -> dict:
    return orjson.loads(open(f"{out}.summary.json", "rb").read())


async def test_a_request_waits_for_requests_in_flight_and_the_budget_stops_when_none_can_free_enough():
    spend = Spend(Prices(1e6, 1e6), limit=1.0)  # a token costs 1
    first = await spend.hold(0, 0.6)  # 0.6 of a token: costs are whole-token free here
    second = asyncio.ensure_future(spend.hold(0, 0.6))
    await asyncio.sleep(0.01)
    assert not second.done()  # 0.6 in flight + 0.6 > 1: it waits
    assert spend.release(first, {"prompt_tokens": 0, "completion_tokens": 0.3}) == pytest.approx(0.3)
    assert await second == pytest.approx(0.6)  # 0.3 spent + 0.6 fits
    third = asyncio.ensure_future(spend.hold(0, 0.5))
    await asyncio.sleep(0.01)
    assert not third.done()
    spend.release(0.6, {})  # no usage reported: its worst case is charged
    with pytest.raises(BudgetReached) as stop:
        await third
    assert stop.value.spent == pytest.approx(0.9) and "0.100000 remaining" in str(stop.value)
    assert spend.release(0.0, None) == 0.0  # a request never answered costs nothing
    with pytest.raises(BudgetReached):  # once reached, even a request that would fit stays out: the run stops
        await spend.hold(0, 0.05)
    assert spend.in_flight == 0.0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[list[dict], float]:
    """The unbudgeted online run: its records and its cost."""
    out = tmp_path_factory.mktemp("reference") / "out.jsonl"
    with spawned(FAULTS) as url:
        assert run(main, argv(url, out, N, *priced())) == 0
        cost = served_cost(url)
    assert summary(out)["cost"] == pytest.approx(cost)
    return records(out), cost


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_the_budget_is_never_crossed_stops_in_one_line_and_a_larger_one_goes_on(tmp_path, capsys, reference, mode):
    expected, full = reference
    discount = 0.5 if mode == "batch" else 1.0
    budget = round(0.4 * full * discount, 3)
    out = tmp_path / "out.jsonl"
    batch = ("--batch",) if mode == "batch" else ()
    with spawned(FAULTS, batch=BatchFaults(delay=0.01)) as url:
        assert run(main, argv(url, out, N, *priced("--max-cost", str(budget)), *batch)) == 1
        err = capsys.readouterr().err
        spent = served_cost(url, discount)
        assert 0 < spent <= budget  # the server's own count
        s = summary(out)
        assert s["output_spent"] == pytest.approx(spent, abs=1e-6) and s["stopped"].startswith("budget reached")
        assert err == f"error: {s['stopped']}\n" and f"spent {s['output_spent']:.6f} of --max-cost {budget:g}" in err
        assert f"({budget - s['output_spent']:.6f} remaining" in err
        # what was spent counts: a rerun sends only what fits in the rest (a smaller request may still go: which
        # request comes first depends on timing), so the server's count stays within the budget
        assert run(main, argv(url, out, N, *priced("--max-cost", str(budget)), *batch)) == 1
        again = served_cost(url, discount)
        assert spent <= again <= budget and summary(out)["output_spent"] == pytest.approx(again, abs=1e-6)
        capsys.readouterr()
        larger = round(2 * full * discount, 3)
        assert run(main, argv(url, out, N, *priced("--max-cost", str(larger)), *batch)) == 0
        total = served_cost(url, discount)
    assert records(out) == expected
    assert summary(out)["output_spent"] == pytest.approx(total, abs=1e-6) and total <= larger


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_under_ray_the_budget_is_global_across_shards(tmp_path, capsys, reference, ray_instance):
    expected, full = reference
    budget = round(0.4 * full, 3)
    out = tmp_path / "out.jsonl"
    slow = dataclasses.replace(FAULTS, latency=(0.01, 0.03))
    with spawned(slow) as url:
        ray_argv = argv(url, out, N, *priced("--max-cost", str(budget)), "--ray", "--shards", "2")
        assert run(main, ray_argv) == 1
        spent = served_cost(url)
        assert 0 < spent <= budget  # two shards, one budget
        err = capsys.readouterr().err
        assert err.startswith("error: budget reached: spent ") and err.count("\n") == 1
        assert summary(out)["output_spent"] == pytest.approx(spent, abs=1e-6)
        larger = round(2 * full, 3)
        assert run(main, [*ray_argv[:ray_argv.index("--max-cost") + 1], str(larger), "--ray", "--shards", "2"]) == 0
        total = served_cost(url)
    assert records(out) == expected and total <= larger
    assert summary(out)["output_spent"] == pytest.approx(total, abs=1e-6)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_what_a_killed_run_spent_counts_for_the_next(tmp_path):
    out = tmp_path / "out.jsonl"
    slow = dataclasses.replace(FAULTS, latency=(0.05, 0.1))
    with spawned(slow) as url:
        command = [sys.executable, "-m", "llm.generate", *argv(url, out, 30, *priced(), "--concurrency", "4")]
        proc = subprocess.Popen(command, cwd=REPO)
        deadline = time.monotonic() + 120
        while not out.exists() or len(out.read_bytes().splitlines()) < 8:
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = served_cost(url)
        assert subprocess.run(command, cwd=REPO).returncode == 0
        total = served_cost(url)
    s = summary(out)
    # the whole output's spend: every answer the server gave but those in flight at the kill (at most 4, the
    # concurrency; a request here is under 1000 tokens, 1.0 at the prices), which the client never received
    assert total - 4.0 <= s["output_spent"] <= total + 1e-6 and s["output_spent"] - s["cost"] > killed - 4.0
