"""`python -m model.sample --n 3500`: sample personas + scenarios + balanced emotions to JSONL or CSV."""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path

from common.cli import Parser, positive_int, run

WRITE_CHUNK = 1 << 18
MAX_N = 2**32  # ids are uint32 counters of the sampler's keys


def count(text: str) -> int:
    """--n: a whole number in [1, 2**32]."""
    n = positive_int(text)
    if n > MAX_N:
        raise argparse.ArgumentTypeError(f"at most 2**32 (ids are 32-bit counters), got {text}")
    return n


def parse(argv: list[str] | None):
    from model.emotions import DEFAULT, PRESETS
    from model.records import FORMATS  # JAX is imported here, under `run`'s signal handlers: Ctrl-C is one line

    p = Parser(prog="python -m model.sample", description=__doc__)
    p.add_argument("--n", type=count, required=True, help="number of personas (at most 2**32)")
    p.add_argument("--profile", default="jp", help="profile name (jp, us) or path to a profile JSON")
    p.add_argument("--domain", help="scenario domain name (sns, workplace) or path to a domain JSON")
    p.add_argument("--emotions", default=DEFAULT,
                   help=f"preset ({', '.join(PRESETS)}), an emotion file (.json, see model/emotion_sets/README.md) "
                   f"or comma-separated labels; default {DEFAULT}")
    p.add_argument("--seed", type=int, default=0, help="root seed (0 <= seed < 2**32)")
    p.add_argument("--out", help="output file (default: stdout)")
    p.add_argument("--format", choices=FORMATS, help="default: from --out's extension, else jsonl")
    args = p.parse_args(argv)
    if not 0 <= args.seed < 2**32:
        p.error(f"argument --seed: must be in [0, 2**32), got {args.seed}")
    if args.format is None:
        suffix = Path(args.out).suffix.lstrip(".") if args.out else ""
        args.format = suffix if suffix in FORMATS else "jsonl"
    if args.format == "parquet" and not args.out:
        p.error("--format parquet needs --out FILE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import numpy as np

    from model.compilation import enable_compilation_cache
    from model.emotions import resolve_emotions
    from model.persona import sample_codes
    from model.profile import load_profile
    from model.records import decode, table, write, write_parquet

    enable_compilation_cache()
    emotions = resolve_emotions(args.emotions)
    profile = load_profile(args.profile, args.domain)

    def draw(start: int) -> tuple:
        ids = np.arange(start, min(start + WRITE_CHUNK, args.n))
        return (profile, ids, *sample_codes(profile, ids, args.seed), args.seed, 0, emotions)

    def chunks() -> Iterator[tuple]:
        """Chunks in order, the next one sampled (JAX releases the GIL) while the caller writes this one."""
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(draw, 0)
            for start in range(WRITE_CHUNK, args.n + WRITE_CHUNK, WRITE_CHUNK):
                chunk = pending.result()
                if start < args.n:
                    pending = pool.submit(draw, start)
                yield chunk

    if args.format == "parquet":
        write_parquet((table(*chunk) for chunk in chunks()), args.out)
    else:
        write((rec for chunk in chunks() for rec in decode(*chunk)), args.out, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
