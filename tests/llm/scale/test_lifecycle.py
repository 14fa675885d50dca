"""Issue 26: a local Ray instance that `python -m llm.generate --ray` started goes away with the run, on every exit
path: SIGTERM ends the run with exit 143 (Ray's driver made it an abort, -6) and shuts Ray down; after kill -9 the
watchdog (llm.scale.watchdog) reaps it. Real processes: the driver, its Ray services and workers."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm.testing.faults import Faults, fetch, spawned
from tests.support.paths import REPO

pytestmark = pytest.mark.slow  # subprocesses: see pyproject's slow marker

pytest.importorskip("ray", reason="the optional extra 'ray' is not installed")



def below(pid: int) -> set[int]:
    """The live descendants of `pid`."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                parents[int(name)] = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found - {pid}


def alive(pids: set[int]) -> set[int]:
    def running(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    return {p for p in pids if running(p)}


def started_run(url: str, out: Path) -> tuple[subprocess.Popen, set[int]]:
    """A --ray run on a new local instance, once its shards are sending; and its processes then."""
    proc = subprocess.Popen([sys.executable, "-m", "llm.generate", "--n", "3000", "--out", str(out), "--domain",
                             "sns", "--base-url", url, "--model", "test-model", "--ray", "--shards", "2", "--quiet"],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while fetch(url)["arrivals"] < 20:
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended or never started sending"
        time.sleep(0.2)
    processes = below(proc.pid)
    assert len(processes) >= 4  # Ray's services and workers (and the watchdog)
    return proc, processes


def gone(processes: set[int], seconds: float = 60.0) -> set[int]:
    """The processes still alive after waiting up to `seconds` for them to go."""
    deadline = time.monotonic() + seconds
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(processes)


@pytest.mark.timeout(300)
def test_sigterm_ends_a_ray_run_with_143_and_shuts_its_ray_down(tmp_path):
    with spawned(Faults(latency=(0.05, 0.1))) as url:
        proc, processes = started_run(url, tmp_path / "out.jsonl")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 143
        assert proc.stderr.read().strip().splitlines()[-1] == "error: terminated"
        assert gone(processes) == set()


@pytest.mark.timeout(300)
def test_a_ray_run_killed_with_sigkill_leaves_no_ray_behind(tmp_path):
    with spawned(Faults(latency=(0.05, 0.1))) as url:
        proc, processes = started_run(url, tmp_path / "out.jsonl")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert gone(processes) == set()
