"""The dedup index of `llm.generate --dedup` (common.duplicates) against a brute-force pairwise comparison, in one
run: the CPU time each text adds to a run, and the memory the index holds.

- texts: the test server's varied texts (llm.testing.varied, keys 0 .. n-1) with --duplicate-rate of them
  repeats (as `python -m llm.testserver --duplicate-rate`), offered in id order, all under one scope;
- ours: `offer` of each text to the near index (MinHash of character 5-grams, LSH; --threshold) and to the exact
  index, at --n texts (goal: at most 1 ms per text at 100,000);
- baseline: the brute-force near dedup a user would write: the exact Jaccard of the text's 5-gram set against every
  kept text's, at --baseline-n texts (it grows with the kept texts, so the time per text at --n is extrapolated
  linearly: the mean cost per text at m kept texts is about that of m/2 comparisons); the ratio is also given at
  the same --baseline-n, where both were measured;
- embeddings (--embeddings): MiniLM (the evaluation's model) encoding of --baseline-n texts, the cost per text
  before any search (the alternative to MinHash that the issue names).
- memory: the growth of this process's resident set while the index is built (the texts made before), per text.

    python benchmarks/bench_dedup.py [--n 100000] [--baseline-n 2000] [--duplicate-rate 0.5] [--threshold 0.7]
        [--embeddings]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.duplicates import ExactIndex, NearIndex, shingles  # noqa: E402
from llm.testing.varied import varied  # noqa: E402


def rss() -> int:
    """This process's resident set, bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed_offers(index, texts: list[str]) -> tuple[float, float, int, int]:
    """Wall and CPU seconds per text, duplicates found, and resident-set growth of offering `texts` to `index` in
    order."""
    before, t0, c0 = rss(), time.perf_counter(), time.process_time()
    found = sum(index.offer(i, text) is not None for i, text in enumerate(texts))
    return (time.perf_counter() - t0) / len(texts), (time.process_time() - c0) / len(texts), found, rss() - before


def brute_force(texts: list[str], threshold: float) -> tuple[float, int]:
    """CPU seconds per text and duplicates of the pairwise baseline."""
    t0, kept, found = time.process_time(), [], 0
    for text in texts:
        mine = set(shingles(text))
        if any(len(mine & other) >= threshold * len(mine | other) for other in kept):
            found += 1
        else:
            kept.append(mine)
    return (time.process_time() - t0) / len(texts), found


def embedding_cost(texts: list[str]) -> float:
    from eval.embed import load_model

    model = load_model()
    model.encode(texts[:64])  # warm up
    t0 = time.process_time()
    model.encode(texts, batch_size=64)
    return (time.process_time() - t0) / len(texts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--baseline-n", type=int, default=2_000)
    p.add_argument("--duplicate-rate", type=float, default=0.5)
    p.add_argument("--threshold", type=float, default=0.7)
    p.add_argument("--embeddings", action="store_true")
    args = p.parse_args()
    texts = [varied({"key": i}, args.duplicate_rate) for i in range(args.n)]
    small = texts[:args.baseline_n]
    _, near_small, near_small_found, _ = timed_offers(NearIndex(args.threshold), small)
    base_small, base_found = brute_force(small, args.threshold)
    near_wall, near, near_found, near_mem = timed_offers(NearIndex(args.threshold), texts)
    exact_wall, exact, exact_found, exact_mem = timed_offers(ExactIndex(), texts)
    base = base_small * args.n / args.baseline_n  # linear in the kept texts
    print(f"texts: {args.n} (duplicate rate {args.duplicate_rate}), near threshold {args.threshold}; times are CPU "
          f"time per text (wall time beside it: other processes' load adds to it)")
    print(f"ours near:  {near * 1e3:.3f} ms/text at {args.n} (wall {near_wall * 1e3:.3f}; {near_found} duplicates), "
          f"{near_mem / args.n:.0f} bytes/text ({near_mem / 2**20:.1f} MiB)")
    print(f"ours exact: {exact * 1e3:.4f} ms/text at {args.n} (wall {exact_wall * 1e3:.4f}; {exact_found} "
          f"duplicates), {exact_mem / args.n:.0f} bytes/text ({exact_mem / 2**20:.1f} MiB)")
    print(f"at {args.baseline_n}: ours near {near_small * 1e3:.3f} ms/text ({near_small_found} duplicates), "
          f"brute force {base_small * 1e3:.3f} ms/text ({base_found} duplicates): ratio {base_small / near_small:.1f}x")
    print(f"brute force at {args.n} (extrapolated): {base * 1e3:.1f} ms/text: ratio {base / near:.0f}x")
    print(f"goal: ours near <= 1 ms/text at {args.n}: {'met' if near <= 1e-3 else 'NOT met'}")
    if args.embeddings:
        print(f"MiniLM encoding alone: {embedding_cost(small) * 1e3:.2f} ms/text (batch 64, {len(small)} texts)")


if __name__ == "__main__":
    main()
