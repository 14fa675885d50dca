"""`python -m llm.prompts export NAME [--out FILE]`: a shipped prompt set written out (to stdout without --out), to
edit and pass back with `--prompts FILE`; `python -m llm.prompts list` names the shipped sets."""
from __future__ import annotations

import sys

from common.cli import Parser, run
from common.shipped import export, names
from llm.engine.promptset import SETS_DIR


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m llm.prompts", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    one = sub.add_parser("export", help="write a shipped prompt set out")
    one.add_argument("name", help=f"the set ({', '.join(names(SETS_DIR, '.toml'))})")
    one.add_argument("--out", help="the file to write (default: stdout)")
    sub.add_parser("list", help="name the shipped prompt sets")
    args = p.parse_args(argv)
    if args.command == "list":
        print("\n".join(names(SETS_DIR, ".toml")))
    else:
        export(SETS_DIR, ".toml", args.name, args.out, "prompt set")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
