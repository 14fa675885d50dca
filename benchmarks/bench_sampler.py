"""Sampler speed: our jitted NumPyro model vs a naive per-persona Python loop, in one run.

Baseline: what prompt-template generators do: for each persona, walk the attributes in order, draw each with
`random.choices` from its (unmasked) table row, and start the persona over whenever a drawn value breaks a mask.

    python benchmarks/bench_sampler.py [--profile jp] [--n 1000000] [--baseline-n 20000]

The naive run imports this file as a script, so run it from the repository root with the package installed.
"""
import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from model.persona import sample_codes
from model.profile import load_profile

REPO = Path(__file__).resolve().parents[1]


def naive_personas(profile, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    attrs = list(profile.attributes.values())
    out = []
    while len(out) < n:
        codes: dict[str, int] = {}
        for a in attrs:
            row = tuple(codes[p] for p in a.parents)
            weights = a.prior[row].tolist()
            c = rng.choices(range(a.size), weights=weights)[0]
            if not a.mask[row + (c,)]:
                break  # reject the persona and start over
            codes[a.name] = c
        else:
            out.append({a.name: a.categories[codes[a.name]] for a in attrs})
    return out


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cold_cli(argv: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, *argv, "--out", str(Path(tmp) / "out.jsonl")], cwd=REPO, check=True)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="jp")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-n", type=int, default=20_000)
    ap.add_argument("--naive", action="store_true", help="only run the baseline for --n and write JSONL to --out")
    ap.add_argument("--out")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    if args.naive:
        with open(args.out, "wb") as f:
            for rec in naive_personas(profile, args.n, 0):
                f.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
        return
    ids = np.arange(args.n)

    sample_codes(profile, ids, seed=0)  # compile
    ours = best_of(lambda: sample_codes(profile, ids, seed=1), 3)
    naive = best_of(lambda: naive_personas(profile, args.baseline_n, 1), 1)
    ours_rate, naive_rate = args.n / ours, args.baseline_n / naive
    print(f"profile {args.profile}: {len(profile.order)} attributes (stage 1-3)")
    print(f"warm personas/s   ours {ours_rate:>12,.0f}  (n={args.n:,}, best of 3)")
    print(f"                  naive {naive_rate:>11,.0f}  (n={args.baseline_n:,}, random.choices + rejection)")
    print(f"                  ratio {ours_rate / naive_rate:>11.1f}x")

    cmd = ["-m", "model.sample", "--n", "3500", "--profile", args.profile]
    cli = [cold_cli(cmd) for _ in range(3)]
    naive_cli = cold_cli([__file__, "--naive", "--n", "3500", "--profile", args.profile])
    print(f"cold wall --n 3500 ours  {min(cli):.2f} s (runs: {', '.join(f'{t:.2f}' for t in cli)})")
    print(f"                   naive {naive_cli:.2f} s (this script --naive: same profile loader, JSONL out)")
    print(f"                   ratio {naive_cli / min(cli):.2f}x")


if __name__ == "__main__":
    main()
