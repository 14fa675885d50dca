"""`python -m model.export KIND NAME [--out FILE]`: a shipped data file of the persona model written out, to edit
and pass back by path: a profile (`--profile FILE`), a scenario domain (`--domain FILE`), an emotion set
(`--emotions FILE`) or a fitted dialogue chain (`--chain FILE`). Without --out it goes to stdout."""
from __future__ import annotations

import sys

from common.cli import Parser, first_paragraph, run
from common.shipped import export, names
from model.dialogue.chain import CHAINS_DIR
from model.emotions import SETS_DIR
from model.profile import DOMAINS_DIR, PROFILES_DIR

KINDS = {"profile": PROFILES_DIR, "domain": DOMAINS_DIR, "emotions": SETS_DIR, "chain": CHAINS_DIR}


def parser() -> Parser:
    p = Parser(prog="python -m model.export", description=first_paragraph(__doc__))
    p.add_argument("kind", choices=KINDS, help="what to write out")
    p.add_argument("name", help="; ".join(f"{kind}: {', '.join(names(path, '.json'))}" for kind, path in KINDS.items()))
    p.add_argument("--out", help="the file to write (default: stdout)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    export(KINDS[args.kind], ".json", args.name, args.out, args.kind)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
