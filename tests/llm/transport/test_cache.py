"""Issue 26, the request cache checked when it is opened: a directory, a missing or read-only directory, a
read-only file and an SQLite file of another schema are each one `error:` line, exit 2, with nothing sent and
nothing changed; and a cache file shared by two concurrent runs is safe (each waits for the other's commit)."""
import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.confined import confined
from llm.testing.faults import Faults, fetch, spawned
from tests.support.paths import REPO



def generate(url: str, out: Path, n: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "llm.generate", "--n", str(n), "--out", str(out), "--domain", "sns", "--base-url",
            url, "--model", "test-model", "--concurrency", "4", "--quiet", *extra]


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def foreign_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (day TEXT, note TEXT)")
        conn.execute("INSERT INTO notes VALUES ('monday', 'mine')")
    conn.close()


def read_only_dir(path: Path) -> None:
    path.mkdir()
    path.chmod(0o555)


def read_only_file(path: Path) -> None:
    path.parent.mkdir()
    foreign_database(path)  # replaced below by one of ours
    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, response BLOB NOT NULL)")
    conn.close()
    path.chmod(0o444)


CASES = {  # name: (the --cache path under tmp, how to make what is there, what the line says)
    "directory": ("cache", lambda p: p.mkdir(), "is a directory"),
    "missing-directory": ("nowhere/cache.sqlite", lambda p: None, "no such directory"),
    "read-only-directory": ("ro/cache.sqlite", lambda p: read_only_dir(p.parent), "cannot write request cache"),
    "read-only-file": ("ro/cache.sqlite", read_only_file, "cannot write request cache"),
    "another-schema": ("notes.sqlite", foreign_database, "is not a request cache (an SQLite file with tables notes)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_an_unusable_cache_is_one_line_before_anything_is_sent_or_changed(tmp_path, case):
    where, make, said = CASES[case]
    cache = tmp_path / "in" / where
    (tmp_path / "in").mkdir()
    make(cache)
    before = tree(tmp_path)
    with spawned(Faults()) as url:
        done = subprocess.run(confined(generate(url, tmp_path / "out.jsonl", 3, "--cache", str(cache)),
                                       permissions_bind=True), cwd=REPO, capture_output=True, text=True)
        sent = fetch(url)["arrivals"]
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and said in done.stderr, done.stderr
    assert sent == 0 and tree(tmp_path) == before


@pytest.mark.slow
def test_two_runs_sharing_one_cache_wait_for_each_other(tmp_path):
    cache = tmp_path / "shared.sqlite"
    with spawned(Faults(latency=(0.3, 0.4))) as url:
        first = subprocess.Popen(generate(url, tmp_path / "a.jsonl", 40, "--cache", str(cache)), cwd=REPO,
                                 stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (cache.exists() and cache.stat().st_size):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        holder = sqlite3.connect(cache, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # a third party holds the write lock longer than SQLite's default wait
        second = subprocess.Popen(generate(url, tmp_path / "b.jsonl", 40, "--cache", str(cache)), cwd=REPO,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(8)  # the first run commits meanwhile: it waits (SQLite's default gives up after 5 s)
        holder.execute("ROLLBACK")
        holder.close()
        codes = first.wait(300), second.wait(300)
        said = first.stderr.read() + second.stderr.read()
    # --quiet: no word but the canned texts' repeat warning (no "database is locked" traceback)
    assert codes == (0, 0) and all(line.startswith("warning: ") for line in said.splitlines()), said
    for out in ("a.jsonl", "b.jsonl"):
        assert (tmp_path / out).read_bytes().count(b"\n") == 40
    with sqlite3.connect(cache) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0] >= 40


def test_opening_a_file_another_connection_is_setting_up_waits_for_it(tmp_path):
    """Two processes opening one new cache file at once: while the other holds its write lock (setting the file
    up), SQLite answers "busy" at once rather than wait; the opening waits for it instead of failing with "held
    for over 60 s" (seen with two endpoints' Ray budgets on one ledger file)."""
    import threading

    from llm.transport.cache import Cache

    path = tmp_path / "c.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, response BLOB NOT NULL)")
    threading.Timer(0.5, other.execute, ("COMMIT",)).start()
    cache = Cache(path)
    cache.put("k", {"a": 1})
    cache.close()
    other.close()
    assert Cache(path).get("k") == {"a": 1}
