"""`python -m model.sample --n 3500`: sample personas + scenarios + balanced emotions to JSONL or CSV."""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator

from common.cli import Parser, first_paragraph, run
from common.fields import COUNT
from common.formats import FORMATS, format_of

WRITE_CHUNK = 1 << 18


def parser() -> Parser:
    from model.emotions import DEFAULT, PRESETS

    p = Parser(prog="python -m model.sample", description=first_paragraph(__doc__))
    what, out = p.add_argument_group("what to sample"), p.add_argument_group("output")
    what.add_argument("--n", type=COUNT.flag_type, required=True, help="number of personas (at most 2**32)")
    what.add_argument("--profile", default="jp", help="profile name (jp, us) or path to a profile JSON")
    what.add_argument("--domain", help="scenario domain name (sns, workplace) or path to a domain JSON")
    what.add_argument("--emotions", default=DEFAULT,
                   help=f"preset ({', '.join(PRESETS)}), an emotion file (.json, see model/emotion_sets/README.md) "
                   f"or comma-separated labels; default {DEFAULT}")
    what.add_argument("--seed", type=int, default=0, help="root seed (0 <= seed < 2**32)")
    out.add_argument("--out", help="output file (default: stdout)")
    out.add_argument("--format", choices=FORMATS, help="output format (default: from --out's extension, else jsonl; a "
                   "--format that contradicts the extension is refused)")
    return p


def parse(argv: list[str] | None):
    p = parser()
    args = p.parse_args(argv)
    if not 0 <= args.seed < 2**32:
        p.error(f"argument --seed: must be in [0, 2**32), got {args.seed}")
    args.format = format_of(args.out, args.format)
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
    from common.formats import write, write_tables
    from model.records import decode, table

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
        write_tables((table(*chunk) for chunk in chunks()), args.out)
    else:
        write((decode(*chunk) for chunk in chunks()), args.out, args.format, uniform=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
