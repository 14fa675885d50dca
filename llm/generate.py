"""`python -m llm.generate --n 3500 --out data.jsonl`: personas from the model, validated by an LLM in three
stages, each turned into a short text expressing its emotion. Rerun the same command to resume.

`--mode dialogue --benchmark meld --labels balanced --n-dialogues 500 --out d.csv`: emotion-labelled dialogues
(model.dialogue) in MELD's CSV columns, plus the same dialogues as JSONL beside it (d.jsonl, the resumable file)."""
from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from tqdm import tqdm

from common.cli import Parser, Terminated, fraction, non_negative, open_fraction, positive_int, run
from common.errors import UsageError
from common.files import write_bytes
from common.jsonl import Appender, locked, recover
from model.baselines import METHODS
from model.emotions import load_emotions

from .engine.resume import check_resumable, finished, refuse_other, resume
from .engine.stats import OutputTotals, RunStats, publish
from .engine.texts import Settings, generate_texts, preview
from .prompting import Prompting, add_prompt_options, prompting
from .scale.cli import main_ray
from .scale.shards import parse_endpoint
from .transport.cache import CacheDamaged
from .transport.session import add_client_options, connect

AUDIT = 0.05  # default --audit


def temperature(text: str) -> float:
    """A finite number >= 0 (inf would be sent as JSON null)."""
    value = non_negative(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def parse(argv: list[str] | None):
    p = Parser(prog="python -m llm.generate", description=__doc__)
    _what_options(p)
    _connection_options(p)
    _generation_options(p)
    _run_options(p)
    args = p.parse_args(argv)
    _check_options(p, args)
    return args


def _what_options(p) -> None:
    """What to generate, how many, from which persona model, and where to."""
    from model.emotions import DEFAULT, PRESETS

    p.add_argument("--mode", choices=("text", "dialogue"), default="text", help="short texts, or dialogues")
    p.add_argument("--n", type=positive_int, help="number of texts (text mode)")
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
                   "SmolLM2 llama.cpp server); with --ray repeatable, WEIGHT (default 1) scaling its share of "
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
    p.add_argument("--temperature", type=temperature, default=1.2,
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
    p.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="with --ray: format of OUT")


def _check_options(p, args) -> None:
    """The combinations of options that do not go together (one `error:` line each); sets `args.base_url`."""
    if args.mode == "text" and (args.n is None or args.n_dialogues is not None):
        p.error("text mode needs --n (and no --n-dialogues)")
    if args.mode == "dialogue" and (args.n_dialogues is None or args.n is not None or args.ray is not None
                                    or args.method != "personagen"):
        p.error("dialogue mode needs --n-dialogues, and takes no --n, --ray or --method")
    args.base_url = args.endpoints[0].url if args.endpoints else None
    if args.ray is None and (len(args.endpoints or ()) > 1 or any(e.weight != 1 for e in args.endpoints or ())):
        p.error("several --base-url, or URL=WEIGHT, need --ray")
    if args.ray is None and (args.shards or args.format != "jsonl"):
        p.error(f"{'--shards' if args.shards else '--format parquet'} needs --ray (a local instance is fine)")
    if args.threshold is not None and args.method != "priorwork":
        p.error("--threshold is priorwork's text filter: it needs --method priorwork")
    if args.audit is not None and args.trust_below is None:
        p.error("--audit needs --trust-below")
    if args.trust_below is not None and (args.no_validate or args.method != "personagen" or args.mode != "text"):
        p.error("--trust-below skips validation: it needs text mode, --method personagen and no --no-validate")
    if (args.base_url is None) != (args.model is None):
        p.error("--base-url and --model go together (without both, the embedded SmolLM2 server is used)")


def settings_for(profile, args, words: Prompting | None = None) -> Settings:
    """The engine's settings of the options; `words` (`llm.prompting`) says in which prompt set and language."""
    words = words or prompting(args, profile, load_emotions(args.emotions))
    return Settings(
        labels=words.labels,
        text_format=words.text_format,
        context=words.context,
        prompts=words.prompts,
        definitions=words.definitions,
        leak_words=words.leak_words,
        temperature=args.temperature,
        method=args.method,
        validate=args.method == "personagen" and not args.no_validate,
        trust_below=args.trust_below,
        audit=AUDIT if args.audit is None else args.audit,
        trusted_drop=profile.plausibility.baseline if args.trust_below is not None else 0.0,
        min_score=(args.threshold or 3) if args.method == "priorwork" else None,
        forbid_label=args.no_label_leak,
        max_draws=args.max_draws,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: {'it is a directory' if out.is_dir() else 'no such directory'}")

    from model.compilation import enable_compilation_cache

    enable_compilation_cache()
    return (_main_dialogue if args.mode == "dialogue" else _main_text)(args, out)


def _main_text(args, out: Path) -> int:
    """Text mode: personas from the profile through validation and generation; on Ray with --ray."""
    from model.baselines import persona_profile
    from model.profile import load_profile
    from model.records import sample_records

    emotion_set = load_emotions(args.emotions)
    emotions = emotion_set.labels
    profile = persona_profile(load_profile(args.profile, args.domain), args.method)
    if args.trust_below is not None and profile.plausibility is None:
        raise UsageError(f"--trust-below needs a profile with a 'plausibility' section (profile {profile.name!r} has "
                         "none; `python -m model.priors learn` writes one)")
    settings = settings_for(profile, args, prompting(args, profile, emotion_set))
    if args.ray is not None:
        with locked(out):
            return main_ray(args, out, emotions, settings)
    with locked(out):
        done = finished(out, range(args.n))
        if other := {r.get("method") for r in done.values()} - {args.method}:
            raise UsageError(f"{out} holds texts of method {sorted(map(str, other))[0]}; give another --out")
        refuse_other(done, settings.prompts, out)
        first = next((i for i in range(args.n) if i not in done), None)
        if first is not None:  # a template that fails on a record fails here, before any request
            preview(settings, sample_records(profile, [first], args.seed, emotions)[0])

        def produce(client, stats):  # called once the endpoint answered: records are sampled after that
            todo, redraw = resume(profile, range(args.n), args.seed, emotions, done, out)
            return generate_texts(todo, client, settings=settings, redraw=redraw, stats=stats)

        return _run(args, out, out, produce, args.n, done, "text", settings.prompts)


def _main_dialogue(args, out: Path) -> int:
    """Dialogue mode: sample dialogues from the fitted chain, write them through the engine."""
    from model.dialogue import CHAINS_DIR, load_chain
    from model.profile import load_profile

    chain_path = Path(args.chain) if args.chain else CHAINS_DIR / f"{args.benchmark}.json"
    if not args.chain and not chain_path.is_file():
        raise UsageError(f"no fitted chain is shipped for benchmark {args.benchmark!r}; fit one with "
                         "`python -m model.dialogue fit` and pass --chain")
    chain = load_chain(chain_path)
    if chain.benchmark != args.benchmark:
        raise UsageError(f"chain {chain_path} is for {chain.benchmark!r}, not --benchmark {args.benchmark!r}")
    profile = load_profile(args.profile, args.domain or "conversation")
    words = prompting(args, profile, load_emotions(args.benchmark))
    results = out.with_suffix(".jsonl") if out.suffix == ".csv" else out
    with locked(results):
        return _dialogues(args, out, results, profile, chain, words)


def _dialogues(args, out: Path, results: Path, profile, chain, words: Prompting) -> int:
    """Dialogue mode with the results file locked."""
    from model.dialogue import sample_dialogues
    from model.dialogue.corpus import meld_csv

    from .engine.dialogue import MATCHING, DialogueSettings, generate_dialogues, messages

    def sample(ids, attempt: int = 0) -> list[dict]:
        return sample_dialogues(profile, chain, ids, args.seed, labels=args.labels, attempt=attempt)

    done = finished(results, range(args.n_dialogues), MATCHING)
    refuse_other(done, words.prompts, results)
    settings = DialogueSettings(labels=words.labels, temperature=args.temperature, prompts=words.prompts,
                                definitions=words.definitions)
    first = next((i for i in range(args.n_dialogues) if i not in done), None)
    if first is not None:  # a template that fails on a dialogue fails here, before any request
        messages(settings.prompts, sample([first])[0], settings.labels, settings.definitions)

    def redraw(dialogue: dict, attempt: int) -> dict:
        return sample([dialogue["id"]], attempt)[0]

    def produce(client, stats):  # called once the endpoint answered: the dialogues are sampled after that
        dialogues = sample(range(args.n_dialogues))
        check_resumable(dialogues, done, results, MATCHING)
        todo = [d for d in dialogues if d["id"] not in done]
        return generate_dialogues(todo, client, settings=settings, emotions=list(chain.labels), redraw=redraw,
                                  stats=stats)

    code = _run(args, out, results, produce, args.n_dialogues, done, "dialogue", settings.prompts)
    if out != results and code == 0:
        write_bytes(out, meld_csv(list(recover(results).values())))
    return code


@asynccontextmanager
async def _connected(args, out: Path, prompts):
    """`connect` with the request cache of --cache (default OUT.cache.sqlite) under the prompt set's tag, a damaged
    cache worded with its way out."""
    cache = args.cache or f"{out}.cache.sqlite"
    try:
        async with connect(args, cache, prompts.cache_tag) as client:
            yield client
    except CacheDamaged as exc:
        raise UsageError(f"{exc}: give another --cache NEW, or delete {cache} (its answers are then asked "
                         "again)") from None


def _run(args, out: Path, results: Path, produce, total: int, done: dict[int, dict], unit: str, prompts) -> int:
    try:
        return asyncio.run(_generate(args, out, results, produce, total, done, unit, prompts))
    except asyncio.CancelledError:  # SIGTERM (the event loop's handler cancels the run)
        raise Terminated from None


async def _generate(args, out: Path, results: Path, produce, total: int, done: dict[int, dict], unit: str,
                    prompts) -> int:
    """Drive `produce(client, stats)` (an async iterator of results, cache flushed before each: see
    llm.engine.runner) into the append-only `results` file holding the finished results `done`, with a progress
    bar; write the summary (this invocation's counters, the whole output's under "output") beside `out`."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    stats, totals = RunStats(resumed=len(done)), OutputTotals(of=total)
    for result in done.values():
        totals.add(result)
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(_connected(args, out, prompts))
        writer = stack.enter_context(Appender(results))
        bar = stack.enter_context(tqdm(total=total, initial=len(done), unit=unit,
                                       disable=args.quiet, file=sys.stderr, dynamic_ncols=True))
        async for result in produce(client, stats):
            writer.write(result)
            totals.add(result)
            bar.update()
            s = client.stats
            bar.set_postfix(tokens=s.prompt_tokens + s.completion_tokens, retries=s.retries, refresh=False)
    publish({**stats.summary(client.stats), "prompt_set": prompts.provenance(), "output": totals.summary()}, out,
            args.quiet)
    if stats.failures:
        print(f"error: {len(stats.failures)} of {total} {unit}s failed (see {out}.summary.json); "
              "rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
