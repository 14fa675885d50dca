"""Issue 26, a full disk under a run: the first write the system refuses stops the sending (the requests in flight
end and their answers are kept as far as the disk allows), one `error:` line says how many answered requests could
not be stored, and the rerun asks only those again. The disk fills for real in a child process whose files may
grow only so far (tests/confined.py: RLIMIT_FSIZE, SIGXFSZ ignored, every write past it fails with EFBIG),
without root."""
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import llm.transport.cache as cache_module
from common.errors import WriteRefused
from tests.support.confined import confined
from llm.testing.faults import Faults, fetch, spawned
from llm.transport.cache import Cache
from tests.support.paths import REPO



def generate(url: str, out: Path, n: int) -> list[str]:
    return [sys.executable, "-m", "llm.generate", "--n", str(n), "--out", str(out), "--domain", "sns", "--base-url",
            url, "--model", "test-model", "--concurrency", "4", "--quiet"]


def one_line(stderr: str) -> str:
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    return stderr


@pytest.mark.slow
def test_a_disk_filling_mid_run_stops_the_sending_and_the_rerun_asks_only_what_was_lost(tmp_path):
    out = tmp_path / "out.jsonl"
    with spawned(Faults(latency=(0.05, 0.1))) as url:
        full = subprocess.run(confined(generate(url, out, 60), file_size=60_000), cwd=REPO, capture_output=True,
                              text=True)
        assert full.returncode == 2
        err = one_line(full.stderr)
        assert err.startswith(f"error: cannot write request cache {out}.cache.sqlite: ") and "rerun" in err
        said = re.search(r"(\d+) answered requests? could not be stored", err)
        lost = int(said[1]) if said else 0
        assert said or "every answer received is stored" in err
        assert subprocess.run(generate(url, out, 60), cwd=REPO, capture_output=True).returncode == 0
        assert fetch(url)["repeated_completions"] <= lost  # paid twice: only what the line said was lost
    assert out.read_bytes().count(b"\n") == 60


@pytest.mark.slow
def test_a_disk_too_full_to_open_the_cache_is_named_so_and_nothing_is_sent(tmp_path):
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        assert subprocess.run(generate(url, out, 2), cwd=REPO, capture_output=True).returncode == 0
        sent = fetch(url)["arrivals"]
        before = out.read_bytes()
        full = subprocess.run(confined(generate(url, out, 4), file_size=8_000), cwd=REPO, capture_output=True,
                              text=True)  # SQLite's -shm alone needs 32 KiB
        assert full.returncode == 2
        err = one_line(full.stderr)
        assert f"cannot write request cache {out}.cache.sqlite" in err and "damaged" not in err
        assert fetch(url)["arrivals"] == sent
    assert out.read_bytes() == before


def test_a_cache_that_cannot_open_on_a_disk_without_room_says_the_disk_is_full(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    made = Cache(path)
    made.put("ab" * 32, {"x": 1})
    made.close()
    monkeypatch.setattr(cache_module.os, "statvfs", lambda p: SimpleNamespace(f_bavail=0))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, hard))  # SQLite says "disk I/O error" making its -shm
    try:
        with pytest.raises(WriteRefused, match=f"cannot write request cache {path}: the disk is full"):
            Cache(path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
