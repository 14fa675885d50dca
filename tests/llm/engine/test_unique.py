"""Issue 23: `llm.generate --dedup` against the test server's repeats (`--duplicate-rate`): exact and near dedup
keep the run's size and per-emotion counts, the same bytes at concurrency 1 and 32 and after kill -9 and a rerun,
the summary and card count the regenerated texts and the slots out of draws, a degenerate endpoint warns without
--dedup, and bad input is one `error:` line."""
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from common.cli import run
from common.duplicates import DedupSpec, index_for
from llm.generate import main
from llm.testing.faults import Faults, spawned
from tests.support.paths import REPO



def argv(url: str, out: Path, n: int, *extra: str) -> list[str]:
    return ["--n", str(n), "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--no-validate", "--quiet", *extra]


def results(out: Path) -> list[dict]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def summary(out: Path) -> dict:
    return orjson.loads(Path(f"{out}.summary.json").read_bytes())


def repeats(rows: list[dict], spec: DedupSpec, scope: str = "emotion") -> int:
    index = index_for(spec)
    return sum(index.offer(r["id"], r["text"], r["emotion"] if scope == "emotion" else "") is not None for r in rows)


@pytest.fixture(scope="module")
def repeating():
    with spawned(Faults(duplicate_rate=0.5)) as url:
        yield url


@pytest.fixture(scope="module")
def plain(repeating, tmp_path_factory):
    """60 texts without --dedup: the repeats the others are measured against."""
    out = tmp_path_factory.mktemp("plain") / "out.jsonl"
    assert run(main, argv(repeating, out, 60)) == 0
    return out


def test_without_dedup_the_repeating_server_leaves_duplicates(plain):
    rows = results(plain)
    assert repeats(rows, DedupSpec("exact")) >= 3 and repeats(rows, DedupSpec("near", 0.7)) > repeats(
        rows, DedupSpec("exact"))
    assert summary(plain)["output"]["exact_duplicates"] == repeats(rows, DedupSpec("exact"), "all")
    assert "dedup" not in summary(plain) and not any("dedup" in r for r in rows)


@pytest.mark.parametrize("dedup, scope", [("near", "emotion"), ("exact", "all")])
def test_dedup_keeps_size_and_emotions_and_the_same_bytes_at_concurrency_1_and_32(repeating, plain, tmp_path,
                                                                                 dedup, scope):
    outs = [tmp_path / f"c{c}" / "out.jsonl" for c in (1, 32)]
    for c, out in zip((1, 32), outs):
        out.parent.mkdir()
        assert run(main, argv(repeating, out, 60, "--dedup", dedup, "--dedup-scope", scope,
                              "--concurrency", str(c))) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    rows, before = results(outs[0]), results(plain)
    assert [(r["id"], r["emotion"]) for r in rows] == [(r["id"], r["emotion"]) for r in before]  # exact counts
    spec = DedupSpec.parse(dedup)
    assert repeats(rows, spec, scope) == 0 < repeats(before, spec, scope)
    # settled in id order: a slot's first draw (the plain run's text) is redrawn exactly when it duplicates a text
    # kept for a lower id, so the lowest id of a group keeps its text
    index = index_for(spec)
    for r, b in zip(rows, before):
        scope_of = r["emotion"] if scope == "emotion" else ""
        first_redrawn = any(d.get("duplicate_of") is not None and d["attempt"] == 0 for d in r["rejected_draws"])
        assert b["attempt"] == 0 and (index.find(b["text"], scope_of) is not None) == first_redrawn
        assert first_redrawn or r["text"] == b["text"]
        index.offer(r["id"], r["text"], scope_of)
    s = summary(outs[0])
    redrawn = [d for r in rows for d in r["rejected_draws"] if "duplicate_of" in d]
    assert s["dedup"]["rule"] == f"{spec}/{scope}" and all(r["dedup"] == f"{spec}/{scope}" for r in rows)
    assert s["dedup"]["regenerated"] == dict(sorted(Counter(r["emotion"] for r in rows for d in r["rejected_draws"]
                                                            if "duplicate_of" in d).items()))
    assert sum(s["dedup"]["regenerated"].values()) == len(redrawn) > 0 and s["dedup"]["out_of_draws"] == {}
    assert all(d["duplicate_of"] < r["id"] for r in rows for d in r["rejected_draws"] if "duplicate_of" in d)
    assert all(r["persona_draws"] == r["attempt"] + 1 for r in rows)
    card = (outs[0].parent / "README.md").read_text()
    assert f"`--dedup {spec} --dedup-scope {scope}`" in card and f"| all | {len(redrawn)} | 0 |" in card


@pytest.mark.slow
def test_kill_9_and_rerun_give_the_bytes_of_an_unbroken_run(tmp_path):
    with spawned(Faults(duplicate_rate=0.5, latency=(0.1, 0.2))) as url:
        whole = tmp_path / "whole" / "out.jsonl"
        whole.parent.mkdir()
        assert run(main, argv(url, whole, 80, "--dedup", "near", "--concurrency", "32")) == 0
        broken = tmp_path / "broken" / "out.jsonl"
        broken.parent.mkdir()
        command = [sys.executable, "-m", "llm.generate", *argv(url, broken, 80, "--dedup", "near",
                                                                "--concurrency", "4")]
        first = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 120
        while not (broken.exists() and broken.read_bytes().count(b"\n") >= 20):
            assert first.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        kept = broken.read_bytes().count(b"\n")
        assert 20 <= kept < 80
        assert run(main, argv(url, broken, 80, "--dedup", "near", "--concurrency", "3")) == 0
    assert broken.read_bytes() == whole.read_bytes()
    assert summary(broken)["resumed"] == kept and summary(broken)["output"]["results"] == 80


def test_a_degenerate_endpoint_warns_without_dedup_and_fails_slots_with_it(tmp_path, capsys):
    """The issue's case: every generation the same text. Without --dedup, a warning; with it, the first text is
    kept and every other slot runs out of draws, counted per emotion."""
    with spawned(Faults(text_answers=("Same old day.",))) as url:
        assert run(main, argv(url, tmp_path / "a.jsonl", 21)) == 0
        err = capsys.readouterr().err
        assert err.count("warning:") == 1 and "20 of 21 texts (95%) repeat an earlier text" in err
        assert "--dedup" in err
        assert run(main, argv(url, tmp_path / "b.jsonl", 21, "--dedup", "exact", "--dedup-scope", "all",
                              "--max-draws", "3")) == 1
        err = capsys.readouterr().err
    s = summary(tmp_path / "b.jsonl")
    assert "warning:" not in err and "error: 20 of 21 texts failed" in err
    assert [r["id"] for r in results(tmp_path / "b.jsonl")] == [0]
    assert sum(s["dedup"]["out_of_draws"].values()) == 20 and sum(s["dedup"]["regenerated"].values()) == 60
    assert all("out of draws: draw 3 duplicated text 0" in why for why in s["failures"].values())
    assert "| all | 0 | 20 |" in (tmp_path / "README.md").read_text()


def test_no_warning_below_a_tenth_of_repeats(tmp_path, capsys):
    with spawned(Faults(duplicate_rate=0.0)) as url:
        assert run(main, argv(url, tmp_path / "a.jsonl", 30)) == 0
    assert "warning:" not in capsys.readouterr().err
    assert summary(tmp_path / "a.jsonl")["output"]["exact_duplicates"] <= 3


@pytest.mark.parametrize("extra, words", [
    (["--dedup", "near:2"], "argument --dedup: near:THRESHOLD needs a Jaccard similarity in (0, 1], got '2'"),
    (["--dedup", "near:0"], "in (0, 1], got '0'"),
    (["--dedup", "fuzzy"], "argument --dedup: expected exact, near or near:THRESHOLD, got 'fuzzy'"),
    (["--dedup", "exact", "--dedup-scope", "speaker"], "argument --dedup-scope: invalid choice: 'speaker'"),
    (["--dedup-scope", "all"], "--dedup-scope needs --dedup"),
    (["--dedup", "exact", "--ray"], "--dedup is text mode's, in one process"),
])
def test_bad_dedup_flags_are_one_error_line(tmp_path, capsys, extra, words):
    assert run(main, ["--n", "3", "--out", str(tmp_path / "o.jsonl"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert not list(tmp_path.iterdir())


def test_a_config_file_with_a_bad_dedup_is_refused(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('n = 3\nout = "o.jsonl"\ndedup = "near:1.5"\n')
    assert run(main, ["--config", str(config)]) == 2
    assert "key 'dedup' = 'near:1.5'" in capsys.readouterr().err


def test_resuming_under_another_dedup_rule_is_refused(repeating, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert run(main, argv(repeating, out, 5)) == 0
    before, _ = out.read_bytes(), capsys.readouterr()
    assert run(main, argv(repeating, out, 8, "--dedup", "exact")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds texts written without --dedup, not with --dedup exact --dedup-scope " \
        "emotion" in err
    assert out.read_bytes() == before


def test_the_saved_config_runs_the_same_dedup_again(repeating, tmp_path):
    out = tmp_path / "out.jsonl"
    assert run(main, argv(repeating, out, 10, "--dedup", "near:0.8", "--dedup-scope", "all")) == 0
    saved = Path(f"{out}.config.toml").read_text()
    assert 'dedup = "near:0.8"' in saved and 'dedup_scope = "all"' in saved
    assert run(main, ["--config", f"{out}.config.toml"]) == 0  # resumes: the same rule
    assert summary(out)["resumed"] == 10
