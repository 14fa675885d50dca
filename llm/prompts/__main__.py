"""`python -m llm.prompts export NAME [--out FILE]`: a shipped prompt set written out (to stdout without --out), to
edit and pass back with `--prompts FILE`; `python -m llm.prompts list` names the shipped sets."""
from __future__ import annotations

import sys

from common.cli import Parser, first_paragraph, run
from common.shipped import export, names
from llm.engine.promptset import SETS_DIR


def parser() -> Parser:
    p = Parser(prog="python -m llm.prompts", description=first_paragraph(__doc__))
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser, help="export or list")
    one = sub.add_parser("export", help="write a shipped prompt set out")
    one.add_argument("name", help=f"the set ({', '.join(names(SETS_DIR, '.toml'))})")
    one.add_argument("--out", help="the file to write (default: stdout)")
    sub.add_parser("list", help="name the shipped prompt sets")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "list":
        print("\n".join(names(SETS_DIR, ".toml")))
    else:
        export(SETS_DIR, ".toml", args.name, args.out, "prompt set")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
