"""Issue 17, the results journal and its run: one writer per output, foreign files left alone, foreign or repeated
ids refused, a damaged cache refused before anything is sent, a full disk leaving a valid journal, a resumed run's
summary of the whole output, limits checked before any file, records sampled only after the endpoint answered,
a private cache, and bounded numbers."""
import errno
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

import model.records
from common.cli import run
from common.errors import UsageError
from common.jsonl import Appender, locked, recover
from llm.generate import main
from llm.testing.faults import Faults, fetch, spawned
from llm.transport.cache import Cache
from model.sample import main as sample_main
from tests.support.paths import REPO



def argv(url: str, out: Path, n: int, *extra: str) -> list[str]:
    return ["--n", str(n), "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--concurrency", "4", "--quiet", *extra]


def one_error(capsys, *parts: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, err
    return err


def requests(url: str) -> int:
    return fetch(url)["arrivals"]


def _another_name(out: Path, how: str) -> Path:
    """`out` itself, or another name of the same file: a symlink, a hard link."""
    other = out.parent / f"other-{how}.jsonl"
    if how == "symlink":
        other.symlink_to(out.name)
    elif how == "hardlink":
        os.link(out, other)
    return out if how == "same" else other


@pytest.mark.slow
@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_a_second_run_on_the_same_out_refuses_with_one_line_and_sends_nothing(tmp_path, how):
    out = tmp_path / "out.jsonl"
    with spawned(Faults(latency=(0.3, 0.4))) as url:
        first = subprocess.Popen([sys.executable, "-m", "llm.generate", *argv(url, out, 60)], cwd=REPO)
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_bytes().count(b"\n") >= 2):
            assert first.poll() is None and time.monotonic() < deadline, "the first run ended early"
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "llm.generate", *argv(url, _another_name(out, how), 60)],
                                cwd=REPO, capture_output=True, text=True)
        assert first.poll() is None  # the first was still running while the second tried
        assert first.wait(180) == 0
        total = fetch(url)
    assert second.returncode == 2
    assert second.stderr.startswith("error: ") and second.stderr.count("\n") == 1
    assert "another run" in second.stderr
    assert how == "hardlink" or f"process {first.pid}" in second.stderr
    ids = [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]
    assert sorted(ids) == list(range(60))  # each once
    assert total["repeated_completions"] == 0  # no request answered twice: the second run asked nothing
    assert not list(tmp_path.glob("*.lock"))


def test_a_journal_is_locked_under_every_name(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"")
    os.link(out, tmp_path / "hard.jsonl")
    (tmp_path / "soft.jsonl").symlink_to("out.jsonl")
    (tmp_path / "sub").mkdir()
    names = [tmp_path / "hard.jsonl", tmp_path / "soft.jsonl", tmp_path / "sub" / ".." / "out.jsonl"]
    for name in names:
        with locked(out):
            with pytest.raises(UsageError, match="being written by another run"):
                with locked(name):
                    pass
        with locked(name):
            with pytest.raises(UsageError, match="being written by another run"):
                with locked(out):
                    pass
    with locked(out):  # free again, and no lock file left
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.jsonl", "out.jsonl", "soft.jsonl", "sub"]


def test_a_run_on_a_locked_out_is_refused_before_anything_is_sent(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url, locked(out):
        assert run(main, argv(url, out, 3)) == 2
        assert requests(url) == 0
    one_error(capsys, f"{out} is being written by another run (process {os.getpid()}")
    assert list(tmp_path.iterdir()) == []


def test_the_lock_is_exclusive_and_gone_after_the_block(tmp_path):
    out = tmp_path / "out.jsonl"
    with locked(out) as lock:
        assert lock.read_text() == f"{os.getpid()}\n"
        code = subprocess.run([sys.executable, "-c", "from common.jsonl import locked\n"
                               f"with locked({str(out)!r}): pass"], cwd=REPO, capture_output=True, text=True)
        assert code.returncode == 1 and "is being written by another run" in code.stderr
    assert not lock.exists()
    with locked(out):  # free again
        pass


@pytest.mark.parametrize("content", [b'{"id": 1}\nnot a result line', b"hello\nworld", b"some notes",
                                     b'{"id":0,"profile":"jp","domain":null,"seed":0,"emotion":"joy"}\n{"a"'])
def test_a_file_that_is_not_ours_is_refused_and_left_unchanged(tmp_path, content, capsys):
    out = tmp_path / "notes.jsonl"
    out.write_bytes(content)
    with spawned(Faults()) as url:
        assert run(main, argv(url, out, 3)) == 2
        assert requests(url) == 0
    one_error(capsys, str(out), "is not a result line")
    assert out.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.jsonl"]


def test_recover_cuts_a_torn_tail_only_of_a_journal():
    import tempfile

    d = Path(tempfile.mkdtemp())
    journal = d / "j.jsonl"
    journal.write_bytes(b'{"id":0}\n{"id":1,"te')
    assert list(recover(journal)) == [0] and journal.read_bytes() == b'{"id":0}\n'
    first = d / "first.jsonl"
    first.write_bytes(b'{"id":0,"tex')  # killed while writing the first line
    assert recover(first) == {} and first.read_bytes() == b""
    other = d / "other.txt"
    other.write_bytes(b"{")
    with pytest.raises(UsageError):
        recover(other)
    assert other.read_bytes() == b"{"


@pytest.mark.parametrize("damage, why", [("foreign", "has an id outside this run (999)"),
                                          ("duplicate", "repeats an earlier line's id")])
def test_a_foreign_or_repeated_id_is_refused_with_its_line_number(tmp_path, damage, why, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        assert run(main, argv(url, out, 4)) == 0
        lines = out.read_bytes().splitlines(keepends=True)
        extra = orjson.dumps({**orjson.loads(lines[1]), "id": 999}) + b"\n" if damage == "foreign" else lines[1]
        out.write_bytes(b"".join(lines) + extra)
        before = out.read_bytes()
        capsys.readouterr()
        sent = requests(url)
        assert run(main, argv(url, out, 4)) == 2
        assert requests(url) == sent
    one_error(capsys, f"{out}:5 {why}")
    assert out.read_bytes() == before


@pytest.mark.parametrize("damage", ["random", "truncated", "header"])
def test_a_damaged_cache_is_one_line_naming_it_and_nothing_is_sent(tmp_path, damage, capsys):
    out = tmp_path / "out.jsonl"
    cache = tmp_path / "out.jsonl.cache.sqlite"
    good = Cache(tmp_path / "good.sqlite")
    for i in range(300):
        good.put(f"{i:064x}", {"text": "x" * 300})
    good.close()
    data = (tmp_path / "good.sqlite").read_bytes()
    cache.write_bytes({"random": os.urandom(20000), "truncated": data[: len(data) // 2],
                       "header": data[:100]}[damage])
    with spawned(Faults()) as url:
        assert run(main, argv(url, out, 3)) == 2
        assert requests(url) == 0
    one_error(capsys, f"request cache {cache} is damaged", "--cache", f"delete {cache}")
    assert not out.exists()


class _FullDisk:
    """`os` as common.jsonl sees it, whose write(2) fills the disk after `room` bytes (a short write, then ENOSPC)."""

    def __init__(self, room: int):
        self.room = room

    def write(self, fd, data):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, bytes(data[: self.room]))
        self.room -= n
        return n

    def __getattr__(self, name):
        return getattr(os, name)


def test_the_appender_keeps_whole_lines_when_the_disk_fills(tmp_path, monkeypatch):
    path = tmp_path / "j.jsonl"
    monkeypatch.setattr("common.jsonl.os", _FullDisk(50))
    with Appender(path) as w:
        w.write({"id": 0, "t": "x" * 10})
        with pytest.raises(UsageError, match="No space left on device"):
            w.write({"id": 1, "t": "x" * 40})
    assert path.read_bytes() == b'{"id":0,"t":"xxxxxxxxxx"}\n'


def test_a_full_disk_ends_the_run_with_one_line_and_the_rerun_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        assert run(main, argv(url, tmp_path / "probe.jsonl", 1)) == 0
        room = 3 * len((tmp_path / "probe.jsonl").read_bytes()) + 100  # about three lines, then a short write
        with monkeypatch.context() as m:
            m.setattr("common.jsonl.os", _FullDisk(room))
            capsys.readouterr()
            assert run(main, argv(url, out, 8)) == 2
        one_error(capsys, f"cannot write {out}: No space left on device", "every answer received is stored",
                  "rerun")
        kept = [orjson.loads(line) for line in out.read_bytes().splitlines()]  # every line whole
        assert 1 <= len(kept) < 8 and out.read_bytes().endswith(b"\n")
        repeated = fetch(url)["repeated_completions"]  # the probe's slot, asked again by this run
        assert run(main, argv(url, out, 8)) == 0
        assert fetch(url)["repeated_completions"] == repeated  # the answers in flight were cached, not dropped
    assert sorted(orjson.loads(line)["id"] for line in out.read_bytes().splitlines()) == list(range(8))


def test_a_resumed_runs_summary_describes_the_whole_output_and_this_runs_share(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        assert run(main, argv(url, out, 3)) == 0
        first = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())
        assert run(main, argv(url, out, 7)[:-1]) == 0  # not --quiet: the summary on stderr too
    summary = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())
    results = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert (summary["texts"], summary["resumed"]) == (4, 3)  # this invocation's share
    whole = summary["output"]
    assert (whole["results"], whole["of"], whole["missing"]) == (7, 7, 0)
    assert whole["prompt_tokens"] == sum(r["usage"]["prompt_tokens"] for r in results)
    assert whole["completion_tokens"] == sum(r["usage"]["completion_tokens"] for r in results)
    assert whole["prompt_tokens"] > summary["prompt_tokens"] > 0  # this run's requests are a share of the whole
    assert whole["persona_draws"] == sum(r["persona_draws"] for r in results)
    assert first["output"]["results"] == 3
    err = capsys.readouterr().err
    assert orjson.loads(err[err.index("{"):]) == summary


@pytest.mark.parametrize("limit", [["--tpm", "10"], ["--temperature", "inf"], ["--temperature", "nan"]])
def test_a_bad_limit_or_temperature_leaves_no_file_and_sends_nothing(tmp_path, limit, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        assert run(main, argv(url, out, 3, *limit)) == 2
        assert requests(url) == 0
    one_error(capsys, limit[0][2:] if limit[1] == "10" else f"argument {limit[0]}")
    assert list(tmp_path.iterdir()) == []


def test_the_endpoint_is_checked_before_any_record_is_sampled(tmp_path, monkeypatch, capsys):
    sampled = []
    real = model.records.sample_records

    def counting(profile, ids, *a, **k):
        sampled.append(len(ids))
        return real(profile, ids, *a, **k)

    monkeypatch.setattr(model.records, "sample_records", counting)
    assert run(main, argv("http://127.0.0.1:9/v1", tmp_path / "out.jsonl", 200_000)) == 2
    one_error(capsys, "cannot reach")
    # one record, the first slot's, is rendered through the prompt set before connecting (a template error fails
    # before any request); the other 199,999 are sampled only once the endpoint answered
    assert sampled == [1] and list(tmp_path.iterdir()) == []


def test_dialogue_mode_checks_the_endpoint_before_sampling_its_dialogues(tmp_path, monkeypatch, capsys):
    import model.dialogue.sampler as sampler

    sampled = []
    real = sampler.sample_dialogues

    def counting(profile, chain, ids, *a, **k):
        sampled.append(len(ids))
        return real(profile, chain, ids, *a, **k)

    monkeypatch.setattr(sampler, "sample_dialogues", counting)
    out = tmp_path / "d.jsonl"
    assert run(main, ["--mode", "dialogue", "--n-dialogues", "50000", "--out", str(out), "--base-url",
                      "http://127.0.0.1:9/v1", "--model", "m", "--quiet"]) == 2
    one_error(capsys, "cannot reach")
    assert sampled == [1] and list(tmp_path.iterdir()) == []  # the first dialogue's prompt only, for the check


def test_records_are_sampled_a_chunk_at_a_time(tmp_path, monkeypatch):
    from llm.engine import resume as resume_module

    sizes = []
    real = model.records.sample_records
    monkeypatch.setattr(model.records, "sample_records",
                        lambda profile, ids, *a, **k: sizes.append(len(ids)) or real(profile, ids, *a, **k))
    monkeypatch.setattr(resume_module, "CHUNK", 2)
    with spawned(Faults()) as url:
        assert run(main, argv(url, tmp_path / "out.jsonl", 5)) == 0
    assert max(sizes) <= 2


def test_the_request_cache_and_its_wal_are_private_and_the_output_keeps_the_umask(tmp_path):
    out = tmp_path / "out.jsonl"
    old = os.umask(0o022)
    try:
        with spawned(Faults()) as url:
            db = Cache(tmp_path / "out.jsonl.cache.sqlite")  # the run's cache, held open: its -wal and -shm stay
            assert run(main, argv(url, out, 2)) == 0
            db.get("0" * 64)
            modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
            db.close()
    finally:
        os.umask(old)
    assert modes["out.jsonl.cache.sqlite"] == 0o600
    assert modes["out.jsonl.cache.sqlite-wal"] == 0o600 and modes["out.jsonl.cache.sqlite-shm"] == 0o600
    assert modes["out.jsonl"] == 0o644 and modes["out.jsonl.summary.json"] == 0o644


def test_a_full_disk_under_the_cache_is_one_line_and_keeps_what_was_put(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    cache.put("00" * 32, {"x": 1})
    cache._db.execute("PRAGMA max_page_count = 8")  # the file may grow no further: SQLITE_FULL, as on a full disk
    with pytest.raises(UsageError, match=f"cannot write request cache {tmp_path / 'c.sqlite'}: the disk is full"):
        cache.put("11" * 32, {"x": "y" * 100_000})
    assert cache.get("11" * 32) == {"x": "y" * 100_000}  # still pending, to be committed once there is room
    assert cache.get("00" * 32) == {"x": 1}


def test_a_new_cache_file_is_made_only_by_a_put(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    assert cache.get("ab" * 32) is None and list(tmp_path.iterdir()) == []
    cache.put("ab" * 32, {"x": 1})
    cache.close()
    assert (tmp_path / "c.sqlite").stat().st_mode & 0o777 == 0o600
    assert Cache(tmp_path / "c.sqlite").get("ab" * 32) == {"x": 1}
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)


@pytest.mark.parametrize("n", ["100000000000000000000", str(2**32 + 1)])
def test_model_sample_bounds_n(tmp_path, n, capsys):
    assert run(sample_main, ["--n", n, "--out", str(tmp_path / "p.jsonl")]) == 2
    one_error(capsys, "argument --n: at most 2**32")
    assert list(tmp_path.iterdir()) == []


def test_llm_generate_bounds_n(tmp_path, capsys):
    # before: any --n was taken, and `--n 5000000000` grew to 24 GB before it was killed
    assert run(main, argv("http://127.0.0.1:9/v1", tmp_path / "out.jsonl", 2**32 + 1)) == 2
    one_error(capsys, "argument --n: at most 2**32")
    assert list(tmp_path.iterdir()) == []
