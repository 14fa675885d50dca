"""Resident memory of `python -m llm.generate --n N` (a text run against the local test server, which answers
every request), ours against the code before issue 26 (the whole tree at BEFORE_26, read from git by
benchmarks/baseline.py), in the same run:

    python benchmarks/bench_memory.py [--n 100000000] [--seconds 20] [--ceiling 3072]

Each run is sampled (VmRSS, every 0.2 s) for `--seconds` after it starts, then killed with SIGKILL; a run that
passes `--ceiling` MiB is killed there (the old code lists every id still to do before its first request: about
40 bytes a requested text). Printed: the peak, when it was reached, the requests the server saw meanwhile, and the
bytes a requested text costs (peak / n)."""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm.testing.faults import Faults, fetch, spawned  # noqa: E402

from baseline import BEFORE_26, ROOT, tree  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(name: str, code: Path, a) -> dict:
    with spawned(Faults(latency=(0.05, 0.2))) as url, tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "llm.generate", "--n", str(a.n), "--out", f"{tmp}/out.jsonl", "--domain", "sns",
                "--base-url", url, "--model", "test-model", "--quiet"]
        proc = subprocess.Popen(argv, cwd=code, env={**os.environ, "PYTHONPATH": str(code)})
        start, top, when, why = time.monotonic(), 0.0, 0.0, "sampled for the whole time"
        try:
            while time.monotonic() - start < a.seconds:
                if proc.poll() is not None:
                    why = f"ended by itself (exit {proc.returncode})"
                    break
                rss = rss_mib(proc.pid)
                if rss > top:
                    top, when = rss, time.monotonic() - start
                if rss > a.ceiling:
                    why = f"killed at the ceiling of {a.ceiling} MiB"
                    break
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        sent = fetch(url)["arrivals"]
    return {"code": name, "n": a.n, "peak_rss_mib": round(top), "at_s": round(when, 1), "requests_sent": sent,
            "bytes_per_requested_text": round(top * 2**20 / a.n, 2), "run": why}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000_000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--ceiling", type=float, default=3072.0, help="MiB at which a run is killed early")
    a = p.parse_args()
    with tree(BEFORE_26) as before:
        rows = [measure("ours", ROOT, a), measure(f"before ({BEFORE_26[:7]})", before, a)]
    for row in rows:
        print(row, flush=True)
    ours, old = rows
    print(f"peak RSS ours/before: {ours['peak_rss_mib']} / {old['peak_rss_mib']} MiB "
          f"({ours['peak_rss_mib'] / max(old['peak_rss_mib'], 1):.2f}); requests sent {ours['requests_sent']} vs "
          f"{old['requests_sent']}")


if __name__ == "__main__":
    main()
