"""The command line of the test server (`python -m llm.testserver`): a flag for every field of `Faults`, each with
its help, then the server on 127.0.0.1, its URL printed as {"url": ...} on stdout."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

import orjson

from common.cli import first_paragraph

from .batches import add_arguments, from_arguments
from .faults import FaultServer, Faults

HELP = {  # each Faults field's flag
    "p429": "share of requests answered 429 Too Many Requests",
    "retry_after": "Retry-After seconds on those injected 429s (default: no header)",
    "p500": "share answered 500", "p503": "share answered 503",
    "p_slow": "share answered only after --slow-s seconds", "slow_s": "the delay of a slow answer (seconds)",
    "p_drop": "share whose connection is dropped without an answer",
    "p_malformed": "share answered 200 with a body that is not JSON",
    "p_garbled": "share answered 200 with a message that is not the JSON asked for",
    "latency": "every answer waits a uniform number of seconds in [LOW, HIGH]",
    "implausible": "share of validation prompts answered 'implausible' (by a hash of the prompt)",
    "implausible_marker": "also answer 'implausible' to every validation prompt containing this text",
    "low_score_marker": "score requests whose prompt contains this text get the lowest score",
    "wrong_turns": "share of dialogue answers (by a hash of the request) with one turn's emotion wrong",
    "language": "language of the texts: en or ja",
    "text_answers": "the n-th text request of a prompt gets the n-th of these texts (then the last)",
    "rpm": "requests per --window the server accepts before answering 429 (default: unlimited)",
    "tpm": "tokens per --window the server accepts before answering 429 (default: unlimited)",
    "window": "the length of the server's limit window (seconds)",
    "burst": "also enforce --rpm and --tpm over short periods: buckets of this many seconds' worth (default: off)",
    "api_key": "the API key the server requires (default: none)",
    "models": "the model ids GET /models lists",
    "owned_by": "owned_by of the models; 'me' imitates llama-cpp-python, which refuses json_schema formats",
    "seed": "seed of the fault draws",
    "duplicate_rate": "share of text requests (by a hash of the request) answered with one of a few repeated texts; "
                      "the other answers vary (llm.testing.varied)",
}


GROUPS = {  # each Faults field's help group (the rest: "answers")
    "server": ("seed", "models", "owned_by", "api_key"), "limits": ("rpm", "tpm", "window", "burst"),
    "faults": ("p429", "retry_after", "p500", "p503", "p_slow", "slow_s", "p_drop", "p_malformed", "p_garbled",
               "latency"),
}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llm.testserver", description=first_paragraph(__doc__))
    groups = {title: parser.add_argument_group(title) for title in ("server", "faults", "answers", "limits")}
    group_of = {name: title for title, names in GROUPS.items() for name in names}
    groups["server"].add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    for f in dataclasses.fields(Faults):
        group, flag = groups[group_of.get(f.name, "answers")], "--" + f.name.replace("_", "-")
        if f.name == "latency":
            group.add_argument(flag, type=float, nargs=2, default=f.default, metavar=("LOW", "HIGH"), help=HELP[f.name])
        elif f.name in ("models", "text_answers"):
            group.add_argument(flag, nargs="+" if f.name == "models" else "*", default=list(f.default),
                               help=HELP[f.name])
        else:
            kind = float if f.type in ("float", "float | None") else int if "int" in f.type else str
            group.add_argument(flag, type=kind, default=f.default, help=HELP[f.name])
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = vars(parser().parse_args(argv))
    port, batch = args.pop("port"), from_arguments(args)
    faults = Faults(**{**args, "latency": tuple(args["latency"]), "models": tuple(args["models"]),
                       "text_answers": tuple(args["text_answers"])})

    async def serve() -> None:
        async with FaultServer(faults, port, batch) as server:
            print(orjson.dumps({"url": server.url}).decode(), flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)
