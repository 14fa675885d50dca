"""Issue 26: the limits hold across a SIGKILL and a rerun. A real `python -m llm.generate` against the test server
(which records every arrival) is killed with SIGKILL while its burst goes out, and rerun at once on the same output:
the limiter's levels, kept in the request cache, make the rerun wait for what the killed run sent."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm.testing.faults import Faults, fetch, spawned
from llm.testing.record import max_in_window
from tests.support.paths import REPO

pytestmark = pytest.mark.slow  # subprocesses: see pyproject's slow marker

RPM, BURST = 600, 45.0  # 10 requests a second; a burst of 45 s worth (448 requests at once), so a rerun that
# forgot the killed run's admissions would send a second burst into the same minute (900 > 600)


def start(url: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llm.generate", "--n", "5000", "--out", str(out), "--domain",
                             "sns", "--base-url", url, "--model", "test-model", "--concurrency", "64", "--rpm",
                             str(RPM), "--burst", str(BURST), "--quiet"], cwd=REPO, env=os.environ.copy())


def until(condition, proc: subprocess.Popen, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended or stalled"
        time.sleep(0.05)


@pytest.mark.timeout(300)
def test_a_run_killed_with_sigkill_and_rerun_keeps_every_window_under_the_limits(tmp_path):
    # before: the rerun started from an empty limiter (a sliding-window log in memory) and sent a whole window more
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        first = start(url, out)
        until(lambda: fetch(url)["arrivals"] >= 400, first)  # near the end of its burst
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed = fetch(url)["arrivals"]
        second = start(url, out)
        until(lambda: fetch(url)["arrivals"] >= killed + 30, second)  # the rerun is sending
        time.sleep(3.0)
        second.send_signal(signal.SIGKILL)
        second.wait()
        arrivals = [(t, 1) for t in fetch(url, "_arrivals")]
    assert max_in_window(arrivals, 60.0) <= RPM
    for length in (1, 2, 5, 10, 30, 60):
        assert max_in_window(arrivals, length) <= RPM * (length + BURST) / 60
