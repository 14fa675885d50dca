"""Batch files (`--batch-dir DIR`, issue 22): the round trip with an offline runner (here the test server standing
in for vLLM's run_batch) with --no-wait (exit 3 after each round's files, a rerun picks their outputs up) and
waiting for the outputs; and the bad input of batch mode, each refused in one line before anything is written or
sent."""
import threading
import time

import orjson
import pytest

import model.records
from common.cli import run
from llm.generate import main
from llm.testing.batches import BatchFaults
from llm.testing.faults import Faults, fetch, spawned
from llm.transport.batch.offline import OUT
from tests.support.batching import argv, inputs, online_records, records, run_batch

FAULTS = Faults(implausible=0.15, seed=3)
N = 12


@pytest.fixture(scope="module")
def online(tmp_path_factory) -> list[dict]:
    return online_records(tmp_path_factory.mktemp("online"), FAULTS, N)


@pytest.mark.slow
def test_the_no_wait_round_trip_writes_each_round_exits_3_and_picks_the_outputs_up(tmp_path, online, capsys):
    out, directory = tmp_path / "out.jsonl", tmp_path / "rounds"
    command = argv(None, out, N, "--batch-dir", str(directory), "--no-wait")
    rounds = 0
    with spawned(FAULTS) as url:
        while (code := run(main, command)) == 3:
            err = capsys.readouterr().err
            waiting = [p for p in inputs(directory) if not p.with_name(p.name + OUT).exists()]
            assert len(waiting) == 1 and err == (
                f"stopped: batch files waiting for their outputs: {waiting[0]} (each answered into <file>{OUT}, e.g. "
                "by vLLM's run_batch); rerun this command once they are there\n")
            written = inputs(directory)
            assert run(main, command) == 3 and inputs(directory) == written  # a rerun too soon writes nothing new
            capsys.readouterr()
            run_batch(url, waiting[0])
            rounds += 1
            assert rounds < 30
        assert code == 0 and fetch(url)["repeated_completions"] == 0  # every request answered once
    assert records(out) == online
    assert len(inputs(directory)) == rounds
    first = [orjson.loads(line) for line in inputs(directory)[0].read_bytes().splitlines()]
    assert len(first) == N and {line["url"] for line in first} == {"/v1/chat/completions"}
    assert all(line["body"]["model"] == "test-model" and line["method"] == "POST" for line in first)


def test_a_waiting_run_takes_each_output_as_it_appears(tmp_path, online):
    out, directory = tmp_path / "out.jsonl", tmp_path / "rounds"
    done = threading.Event()
    with spawned(FAULTS) as url:
        def runner():  # the user's offline runner, answering each new input file
            while not done.is_set():
                for path in inputs(directory) if directory.exists() else []:
                    if not path.with_name(path.name + OUT).exists():
                        run_batch(url, path)
                time.sleep(0.05)

        thread = threading.Thread(target=runner)
        thread.start()
        try:
            assert run(main, argv(None, out, N, "--batch-dir", str(directory))) == 0
        finally:
            done.set()
            thread.join()
    assert records(out) == online


@pytest.mark.slow
def test_batch_dir_answers_are_cached_under_base_url_so_an_online_run_there_costs_nothing(tmp_path, online):
    out, directory = tmp_path / "out.jsonl", tmp_path / "rounds"
    with spawned(FAULTS) as url:
        command = argv(url, out, N, "--batch-dir", str(directory), "--no-wait")
        while run(main, command) == 3:
            for path in inputs(directory):
                if not path.with_name(path.name + OUT).exists():
                    run_batch(url, path)
        answered = fetch(url)["arrivals"]
        out.unlink()
        assert run(main, argv(url, out, N)) == 0
        assert fetch(url)["arrivals"] == answered  # the online run asked nothing
    assert records(out) == online


def test_batch_against_an_endpoint_without_a_batch_api_is_one_line_before_any_persona_is_sampled(
        tmp_path, monkeypatch, capsys):
    sampled = []
    real = model.records.sample_records
    monkeypatch.setattr(model.records, "sample_records",
                        lambda profile, ids, *a, **k: sampled.append(len(ids)) or real(profile, ids, *a, **k))
    with spawned(FAULTS, batch=BatchFaults(enabled=False)) as url:
        assert run(main, argv(url, tmp_path / "out.jsonl", 500, "--batch")) == 2
        assert fetch(url)["arrivals"] == 0
    err = capsys.readouterr().err
    assert err == f"error: {url} has no Batch API (GET /batches answered HTTP 404); leave out --batch, or write " \
                  "batch files for its server with --batch-dir DIR\n"
    assert sampled == [1] and list(tmp_path.iterdir()) == []  # the template check's one record; nothing written


URL = ["--base-url", "http://127.0.0.1:9/v1", "--model", "m"]  # port 9: nothing is ever sent


@pytest.mark.parametrize("extra, message", [
    (["--batch"], "--batch needs --base-url and --model: the embedded server has no Batch API"),
    ([*URL, "--no-wait"], "--no-wait is --batch-dir's"),
    (["--batch-dir", "d"], "--batch-dir needs --model"),
    ([*URL, "--batch-dir", "d", "--ray"], "--batch and --batch-dir send a whole run as a few batches: they take no "
     "--ray"),
    ([*URL, "--batch", "--base-url", "http://b/v1"], "--batch takes one --base-url"),
    ([*URL, "--max-cost", "1", "--price-in", "1"], "--max-cost needs --price-in and --price-out"),
    ([*URL, "--max-cost", "-1"], "argument --max-cost: expected a finite number >= 0, got '-1'"),
    ([*URL, "--max-cost", "inf"], "argument --max-cost: expected a finite number >= 0, got 'inf'"),
    ([*URL, "--max-cost", "nan"], "argument --max-cost: expected a finite number >= 0, got 'nan'"),
    ([*URL, "--batch-poll", "0"], "argument --batch-poll: expected a finite number of seconds > 0, got '0'"),
    ([*URL, "--batch-discount", "1.5"], "argument --batch-discount: expected a number in [0, 1], got '1.5'"),
    ([*URL, "--batch-max-requests", "0"], "argument --batch-max-requests: must be at least 1, got 0"),
], ids=["batch-embedded", "no-wait", "batch-dir-model", "ray", "two-endpoints", "one-price", "negative", "inf",
        "nan", "poll", "discount", "max-requests"])
def test_batch_and_budget_flags_refuse_bad_input_in_one_line(tmp_path, capsys, extra, message):
    code = run(main, ["--n", "3", "--out", str(tmp_path / "o.jsonl"), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_batch_dir_that_is_a_file_and_a_batch_preview_are_refused_in_one_line(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    assert run(main, argv(None, tmp_path / "o.jsonl", 3, "--batch-dir", str(taken))) == 2
    assert capsys.readouterr().err == f"error: --batch-dir {taken} exists and is not a directory\n"
    assert taken.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert run(main, argv("http://127.0.0.1:9/v1", tmp_path / "o.jsonl", 3, "--batch", "--preview", "2")) == 2
    assert capsys.readouterr().err == "error: --preview sends its slots online, at once: leave out --batch and " \
                                      "--batch-dir\n"


def test_a_request_no_batch_file_can_hold_is_refused_in_one_line(tmp_path, capsys):
    with spawned(FAULTS) as url:
        assert run(main, argv(url, tmp_path / "o.jsonl", 2, "--batch", "--batch-max-bytes", "1024")) == 2
        assert fetch(url, "_batches") == []
    err = capsys.readouterr().err
    assert err.startswith("error: one request takes ") and "bytes in a batch file, over --batch-max-bytes 1024" in err
