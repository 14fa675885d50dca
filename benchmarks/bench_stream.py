"""Streaming at scale: `python -m model.sample --n N --format parquet` vs the in-memory warm rate, in one run.

Measures the CLI's wall time, throughput and peak RSS (a child process, so RSS is its own), and the warm in-memory
rate of `sample_codes` on 2**20 personas in this process; prints the ratio.

    python benchmarks/bench_stream.py [--n 100000000] [--profile jp]
"""
import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from model.persona import sample_codes
from model.profile import load_profile

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000_000)
    ap.add_argument("--profile", default="jp")
    args = ap.parse_args()

    profile = load_profile(args.profile)
    ids = np.arange(1 << 20)
    sample_codes(profile, ids, seed=0)
    start = time.perf_counter()
    sample_codes(profile, ids, seed=1)
    memory_rate = len(ids) / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory(dir=REPO) as tmp:
        out = Path(tmp) / "big.parquet"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "model.sample", "--n", str(args.n), "--profile", args.profile,
                        "--out", str(out)], cwd=REPO, check=True)
        wall = time.perf_counter() - start
        size = out.stat().st_size
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stream_rate = args.n / wall
    print(f"in-memory warm rate      {memory_rate:>12,.0f} personas/s (sample_codes, 2**20)")
    print(f"streaming parquet, n={args.n:,}: {wall:.1f} s wall, {stream_rate:,.0f} personas/s, "
          f"{size / 2**20:,.0f} MiB file, peak RSS {peak_mib:,.0f} MiB")
    print(f"ratio in-memory / streaming {memory_rate / stream_rate:.2f}x (goal <= 2)")


if __name__ == "__main__":
    main()
