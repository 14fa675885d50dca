"""`python -m llm.generate` for real: subprocesses, SIGKILL and resume, and one-line errors for bad input."""
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from llm.generate import main
from llm.testing.faults import Faults, fetch, spawned
from common.cli import run
from tests.support.paths import REPO

FAULTS = Faults(p500=0.05, p_drop=0.02, implausible=0.15, latency=(0.03, 0.08), seed=7)


def cli(url: str, out: Path, n: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "llm.generate", "--n", str(n), "--out", str(out), "--domain", "sns",
            "--base-url", url, "--model", "test-model", "--concurrency", "4", "--quiet", *extra]


def lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_run_killed_and_resumed_equals_an_uninterrupted_one(tmp_path):
    n, port = 60, free_port()
    killed, straight = tmp_path / "killed" / "out.jsonl", tmp_path / "straight" / "out.jsonl"
    killed.parent.mkdir()
    straight.parent.mkdir()
    with spawned(FAULTS, port) as url:
        proc = subprocess.Popen(cli(url, killed, n), cwd=REPO)
        deadline = time.monotonic() + 120
        while len(killed.read_bytes().splitlines()) < 15 if killed.exists() else True:
            assert proc.poll() is None and time.monotonic() < deadline, "the first run ended before it was killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = fetch(url, "_completed")
    assert len(lines(killed)) < n
    with spawned(FAULTS, port) as url:  # the same endpoint again, fresh server state
        assert subprocess.run(cli(url, killed, n), cwd=REPO).returncode == 0
        second = fetch(url, "_completed")
    with spawned(FAULTS) as url:
        assert subprocess.run(cli(url, straight, n), cwd=REPO).returncode == 0

    resumed, uninterrupted = lines(killed), lines(straight)
    assert len(resumed) == n and len({r["id"] for r in resumed}) == n  # no loss, no duplicate
    assert sorted(resumed, key=lambda r: r["id"]) == sorted(uninterrupted, key=lambda r: r["id"])
    # answered requests the second run sent again: at most those in flight when the first was killed
    assert len(set(first) & set(second)) <= 4
    summary = orjson.loads((killed.parent / "out.jsonl.summary.json").read_bytes())
    assert summary["resumed"] > 0 and summary["texts"] == n - summary["resumed"]


def test_a_torn_last_line_is_cut_and_its_text_redone(tmp_path):
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        assert run(main, cli(url, out, 5)[3:]) == 0
        done = out.read_bytes().splitlines(keepends=True)
        out.write_bytes(b"".join(done[:3]) + done[3][:40])  # killed in the middle of writing the 4th line
        assert run(main, cli(url, out, 5)[3:]) == 0
    assert sorted(orjson.loads(line)["id"] for line in out.read_bytes().splitlines()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "faults, args, message",
    [
        (None, ["--model", "test-model"], "cannot reach http://127.0.0.1:9/v1"),
        (Faults(api_key="right"), ["--model", "test-model"], "refused the API key (HTTP 401)"),
        (Faults(), ["--model", "gpt-9"], "unknown model 'gpt-9'; http://127.0.0.1"),
        (Faults(), ["--model", "test-model", "--rpm", "0"], "argument --rpm: must be at least 1, got 0"),
        (Faults(), ["--model", "test-model", "--dialect", "grpc"], "argument --dialect: invalid choice: 'grpc'"),
        (Faults(), ["--model", "test-model", "--n", "many"], "argument --n: expected a whole number"),
        (Faults(), [], "--base-url and --model go together"),
        (Faults(), ["--model", "test-model", "--emotions", ""], "unknown emotion preset"),
    ],
    ids=["unreachable", "401", "unknown-model", "rpm-0", "dialect", "n-not-a-number", "model-missing", "emotions"],
)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, faults, args, message, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-secret")
    out = tmp_path / "out.jsonl"

    def argv(url):
        return ["--n", "3", "--out", str(out), "--base-url", url, *args]

    if faults is None:
        code = run(main, argv("http://127.0.0.1:9/v1"))
    else:
        with spawned(faults) as url:
            code = run(main, argv(url))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "wrong-secret" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_module_entry_point_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "llm.generate", "--n", "2", "--out", str(tmp_path / "o.jsonl"),
                           "--bogus"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == "error: unrecognized arguments: --bogus\n" and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_writes_its_summary_and_says_how_to_resume(tmp_path, sig, code):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS) as url:
        argv = [a for a in cli(url, out, 40) if a != "--quiet"]
        proc = subprocess.Popen(argv, cwd=REPO, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while len(lines(out)) < 5:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(60) == code
        err = proc.stderr.read()
        summary = orjson.loads(Path(f"{out}.summary.json").read_bytes())
        written = len(lines(out))
        assert summary["interrupted"] and summary["output"]["results"] == written < 40
        assert f"interrupted with {written} of 40 texts written (see {out}.summary.json); rerun the same command " \
               "to resume" in err
        assert subprocess.run(argv, cwd=REPO, capture_output=True).returncode == 0
    assert sorted(r["id"] for r in lines(out)) == list(range(40))

