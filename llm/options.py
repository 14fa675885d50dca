"""The flags of `python -m llm.generate`, their checks, and the same checks for a `RunConfig` (`check`)."""
from __future__ import annotations

import argparse
import sys

from common.cli import Parser, count, finite_non_negative, fraction, open_fraction, positive_int
from model.baselines import METHODS

from . import config as configs
from .formats import FORMATS
from .prompting import add_prompt_options
from .running import AUDIT
from .scale.shards import parse_endpoint
from .transport.session import add_client_options

DESCRIPTION = """`python -m llm.generate --n 3500 --out data.jsonl`: personas from the model, validated by an LLM
in three stages, each turned into a short text expressing its emotion. Rerun the same command to resume.

`--mode dialogue --benchmark meld --labels balanced --n-dialogues 500 --out d.csv`: emotion-labelled dialogues
(model.dialogue) in MELD's CSV columns, plus the same dialogues as JSONL beside it (d.jsonl, the resumable file)."""


def parser() -> Parser:
    """The parser of `python -m llm.generate` (every flag, none given)."""
    p = Parser(prog="python -m llm.generate", description=DESCRIPTION)
    _what_options(p)
    _connection_options(p)
    _generation_options(p)
    _run_options(p)
    _plan_options(p)
    p.add_argument("--preview", type=positive_int, metavar="K", help="run the first K slots through the whole "
                   "pipeline and print them as a table; nothing is written beside --out and its cache is kept as it is")
    p.add_argument("--config", metavar="FILE", help="a run config (.toml or .json, see llm/config.py; a run saves "
                   "its own as OUT.config.toml): its options, the flags given here overriding them")
    return p


def parse(argv: list[str] | None):
    p = parser()
    _config_defaults(p, argv)
    args = p.parse_args(argv)
    _check_options(p, args)
    return args


def check(config) -> None:
    """Refuse (UsageError) a `RunConfig` the command would refuse: each field by its flag's rules, then the
    combinations (as a config file is checked, so the library checks what the command line checks)."""
    p = parser()
    defaults = vars(p.parse_args(["--out", "x"] if config.out is None else ["--out", config.out]))
    for action in p._actions:
        value = getattr(config, action.dest, None)
        if action.dest in ("help", "out", "config", "preview", "plan") or value in (None, defaults[action.dest]):
            continue
        configs.checked("RunConfig", action.dest, list(value) if isinstance(value, tuple) else value, action)
    _check_options(p, argparse.Namespace(**{**vars(config.namespace()), "out": config.out or "x"}))


def _config_defaults(p, argv: list[str] | None) -> None:
    """The options of --config FILE as the parser's defaults (so flags override them), checked by their flags."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    path = pre.parse_known_args(argv)[0].config
    if path is None:
        return
    values = configs.load(path, p)
    given = argv if argv is not None else sys.argv[1:]
    if any(a == "--base-url" or a.startswith("--base-url=") for a in given):
        values.pop("endpoints", None)  # an append option: the flags replace the file's list, not extend it
    for action in p._actions:
        if action.dest in values:
            action.required = False
    p.set_defaults(**values)


def rejection_rate(text: str) -> float:
    value = fraction(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _plan_options(p) -> None:
    """The plan of a run, and its cost."""
    p.add_argument("--plan", action="store_true", help="print the expected requests, tokens, wall time, persona "
                   "redraws and cost of the run, and send nothing (see llm/plan.py)")
    p.add_argument("--expected-rejection", type=rejection_rate, metavar="R", help="share of personas validation "
                   "rejects, for --plan (default: from a learned profile's plausibility section, else 0)")
    p.add_argument("--price-in", type=finite_non_negative, metavar="USD", help="price of a million prompt tokens: "
                   "the plan's cost, and the summary's `cost` and `plan` after a run")
    p.add_argument("--price-out", type=finite_non_negative, metavar="USD",
                   help="price of a million completion tokens")


def _what_options(p) -> None:
    """What to generate, how many, from which persona model, and where to."""
    from model.emotions import DEFAULT, PRESETS

    p.add_argument("--mode", choices=("text", "dialogue"), default="text", help="short texts, or dialogues")
    p.add_argument("--n", type=count, help="number of texts (text mode; at most 2**32)")
    p.add_argument("--n-dialogues", type=positive_int, help="number of dialogues (dialogue mode)")
    p.add_argument("--benchmark", default="meld", help="dialogue mode: the ERC benchmark whose labels and "
                   "fitted emotion chain to use (a chain file is shipped for meld; others need --chain)")
    p.add_argument("--chain", help="dialogue mode: a chain file from `python -m model.dialogue fit`")
    p.add_argument("--labels", choices=("matched", "balanced"), default="matched",
                   help="dialogue mode: the benchmark's label distribution, or uniform (Markov structure kept)")
    p.add_argument("--out", required=True, help="results JSONL (appended to, and resumed from, if it exists); "
                   "in dialogue mode a .csv gets MELD's columns and its JSONL beside it")
    p.add_argument("--profile", default="jp", help="profile name (jp, us) or path to a profile JSON")
    p.add_argument("--domain", help="scenario domain name (sns, workplace) or path to a domain JSON")
    p.add_argument("--emotions", default=DEFAULT, help=f"preset ({', '.join(PRESETS)}), an emotion file (.json, see "
                   "model/emotion_sets/README.md) or comma-separated labels")
    p.add_argument("--seed", type=int, default=0, help="root seed of the persona model")


def _connection_options(p) -> None:
    p.add_argument("--base-url", dest="endpoints", action="append", type=parse_endpoint, metavar="URL[=WEIGHT]",
                   help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default: start the embedded "
                   "SmolLM2 llama.cpp server); repeatable (one process, or --ray), WEIGHT (default 1) scaling its "
                   "share of "
                   "requests and its --rpm/--tpm/--concurrency")
    p.add_argument("--model", help="model name at --base-url (every endpoint serves it)")
    add_client_options(p)


def _generation_options(p) -> None:
    """The method, and how personas are validated and texts accepted."""
    p.add_argument("--method", default="personagen", choices=METHODS,
                   help="personagen, or a baseline of the paper's IV.D (see model/baselines.py)")
    p.add_argument("--threshold", type=int, choices=range(1, 6), metavar="{1..5}",
                   help="priorwork: keep texts the LLM scores at least this for their emotion (default 3)")
    p.add_argument("--max-draws", type=positive_int, default=20, help="personas tried per text")
    p.add_argument("--temperature", type=finite_non_negative, default=1.2,
                   help="generation temperature, finite and >= 0 (paper: 1.2)")
    p.add_argument("--no-validate", action="store_true", help="skip the three LLM validation stages")
    p.add_argument("--trust-below", type=open_fraction, metavar="R",
                   help="skip validating personas whose attributable risk is below R (needs a profile with a "
                   "'plausibility' section, from `python -m model.priors learn`)")
    p.add_argument("--audit", type=fraction, metavar="A", help="with --trust-below: validate this fraction of the "
                   f"trusted personas anyway (chosen by hash; default {AUDIT})")
    p.add_argument("--no-label-leak", action="store_true", help="regenerate texts that name their emotion (its "
                   "label, or its words in the texts' language from the emotion file)")
    add_prompt_options(p)


def _run_options(p) -> None:
    """The request cache, the terminal, and Ray."""
    p.add_argument("--cache", help="request cache (default: OUT.cache.sqlite)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary on stderr")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run shards as Ray tasks on the cluster at ADDRESS ('auto': the one `ray start` made; "
                   "none: a new local instance) and merge them into OUT")
    p.add_argument("--shards", type=positive_int, help="with --ray: id-range shards (default: max(CPUs, n/50000))")
    p.add_argument("--format", choices=FORMATS, default="jsonl", help="format of OUT (text mode): jsonl (the "
                   "resumable journal itself), csv or parquet (one column per attribute, written in id order at the "
                   "end from the journal OUT.journal.jsonl)")


def _check_options(p, args) -> None:
    """The combinations of options that do not go together (one `error:` line each); sets `args.base_url`."""
    if args.mode == "text" and (args.n is None or args.n_dialogues is not None):
        p.error("text mode needs --n (and no --n-dialogues)")
    if args.mode == "dialogue" and (args.n_dialogues is None or args.n is not None or args.ray is not None
                                    or args.method != "personagen"):
        p.error("dialogue mode needs --n-dialogues, and takes no --n, --ray or --method")
    args.base_url = args.endpoints[0].url if args.endpoints else None
    if args.ray is None and args.shards:
        p.error("--shards needs --ray (a local instance is fine)")
    if args.mode == "dialogue" and args.format != "jsonl":
        p.error("--format is text mode's (dialogue mode writes MELD's columns to an --out ending in .csv)")
    if args.threshold is not None and args.method != "priorwork":
        p.error("--threshold is priorwork's text filter: it needs --method priorwork")
    if args.audit is not None and args.trust_below is None:
        p.error("--audit needs --trust-below")
    if args.trust_below is not None and (args.no_validate or args.method != "personagen" or args.mode != "text"):
        p.error("--trust-below skips validation: it needs text mode, --method personagen and no --no-validate")
    if (args.base_url is None) != (args.model is None):
        p.error("--base-url and --model go together (without both, the embedded SmolLM2 server is used)")


