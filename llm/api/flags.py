"""The command line of `python -m llm.generate`: flags made from the fields of `RunConfig` and `ClientOptions`
(common.fields), in help groups, read into a `RunConfig`; `--config FILE` gives the defaults the flags override;
`--plan` and `--preview K` say what to do instead of running."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from common.cli import Parser, group
from common.errors import UsageError
from common.fields import Whole, add_flags, given

from ..transport.options import ClientOptions
from .config import GROUPS, PLANNING, WHAT, RunConfig, load

DESCRIPTION = """`python -m llm.generate --n 3500 --out data.jsonl`: personas from the model, validated by an LLM
in three stages, each turned into a short text expressing its emotion. Rerun the same command to resume.

`--mode dialogue --benchmark meld --labels balanced --n-dialogues 500 --out d.csv`: emotion-labelled dialogues
(model.dialogue) in MELD's CSV columns, plus the same dialogues as JSONL beside it (d.jsonl, the resumable file)."""
CLASSES = (RunConfig, ClientOptions)


@dataclass(frozen=True)
class Command:
    """What the command line asks for: the run, and whether to print its plan or a preview of K slots instead."""

    config: RunConfig
    plan: bool = False
    preview: int | None = None


def parser() -> Parser:
    """The parser of `python -m llm.generate` (every flag, none given)."""
    p = Parser(prog="python -m llm.generate", description=DESCRIPTION,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(p, CLASSES, GROUPS)
    group(p, GROUPS[WHAT]).add_argument("--config", metavar="FILE", help="a run config (.toml or .json, see "
                                      "llm/api/config.py; a run saves its own as OUT.config.toml): its options, "
                                      "the flags given here overriding them")
    planning = group(p, GROUPS[PLANNING])
    planning.add_argument("--plan", action="store_true", help="print the expected requests, tokens, wall time, "
                          "persona redraws and cost of the run, and send nothing (see llm/api/plan.py)")
    planning.add_argument("--preview", type=Whole().flag_type, metavar="K", help="run the first K slots through the "
                          "whole pipeline and print them as a table; nothing is written beside --out and its cache "
                          "is kept as it is")
    return p


def parse(argv: list[str] | None) -> Command:
    """The command of `argv`: the flags over the options of --config FILE (each already checked in its flag's or
    its key's words), made into one RunConfig, which checks their combinations."""
    args = parser().parse_args(argv)
    values = {**(load(args.config) if args.config else {}), **given(args, RunConfig), **given(args, ClientOptions)}
    if values.get("out") is None:
        raise UsageError("the following arguments are required: --out")
    return Command(RunConfig.from_values(values), args.plan, args.preview)
