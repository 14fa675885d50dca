"""The library entry point: `generate_dataset(config) -> Run`, exactly what `python -m llm.generate` runs.

    from llm import RunConfig, generate_dataset

    run = generate_dataset(RunConfig(n=20, domain="sns", endpoints=("http://localhost:8000/v1",), model="m",
                                     out="data.jsonl"))
    run.results  # the results, in id order
    run.summary  # the run's summary (OUT.summary.json)

`agenerate_dataset` is its async twin. With `out` set, the output is the resumable JSONL journal of the run
(rerun to resume), rewritten in id order at the end, with OUT.summary.json and OUT.config.toml (the resolved config:
`python -m llm.generate --config OUT.config.toml` runs it again) beside it; without `out` the run happens in a
temporary directory and only `Run` remains."""
from __future__ import annotations

import asyncio
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from common.errors import UsageError
from common.files import write_bytes
from common.jsonl import locked, recover

from . import config as configs
from .card import card, write_card
from .config import RunConfig
from .engine.resume import check_resumable, finished, refuse_other, resume
from .engine.texts import generate_texts, preview
from .formats import write
from .plan import SAMPLE, cost, plan
from .prompting import Prompting, prompting
from .running import drive, settings_for
from .transport.session import embedded_early


@dataclass(frozen=True)
class Run:
    """A finished run: its config, its results in id order, and its summary (as in OUT.summary.json)."""

    config: RunConfig
    results: list[dict]
    summary: dict

    @property
    def failed(self) -> int:
        """Slots without a result (rerun the same config to retry them)."""
        return self.summary.get("failed", 0)


def generate_dataset(config: RunConfig) -> Run:
    """Run `config` to the end (see the module docstring); raises UsageError for what the command line would
    refuse."""
    return asyncio.run(agenerate_dataset(config))


async def agenerate_dataset(config: RunConfig, *, signals: bool = False) -> Run:
    """`generate_dataset` in a running event loop; `signals`: SIGTERM cancels the run (the command line's)."""
    from .options import check

    check(config)  # what the command line refuses, the library refuses, in the same words
    if config.out is not None:
        return await _generate(config, Path(config.out), signals)
    with tempfile.TemporaryDirectory() as tmp:
        return await _generate(replace(config, out=str(Path(tmp) / "out.jsonl"), quiet=True), None, signals)


async def _generate(config: RunConfig, out: Path | None, signals: bool) -> Run:
    path = Path(config.out)
    if path.is_dir() or not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: {'it is a directory' if path.is_dir() else 'no such directory'}")
    args = config.namespace()
    async with embedded_early(args):  # its start-up runs while the persona model is imported and first sampled
        from model.compilation import enable_compilation_cache

        enable_compilation_cache()
        run = _dialogue if config.mode == "dialogue" else _text
        results, summary, (profile, settings) = await run(args, path, signals)
    if out is not None:
        configs.save(config, f"{out}.config.toml")
        text = card(config, summary, results, profile, settings.definitions, settings.prompts.language)
        if write_card(text, out) is None:
            print(f"warning: {out.parent / 'README.md'} is not a dataset card of ours: left as it is, no card "
                  "written", file=sys.stderr)
    return Run(replace(config, out=None if out is None else config.out), results, summary)


def journal_of(out: Path, fmt: str) -> Path:
    """The append-only JSONL a text run resumes from: `out` itself for JSONL, else OUT.journal.jsonl beside it
    (`out` then written from it, in id order, at the end)."""
    return out if fmt == "jsonl" else Path(f"{out}.journal.jsonl")


def in_id_order(path: Path) -> None:
    """Rewrite the JSONL journal `path` in id order, atomically (left as it is if a line is not a result)."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()] if path.exists() else []
    try:
        keyed = sorted((orjson.loads(line)["id"], line) for line in lines)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return
    write_bytes(path, b"".join(line + b"\n" for _, line in keyed))


def _prepared(args):
    """Text mode's profile, emotion labels and engine settings of the options."""
    from model.baselines import persona_profile
    from model.emotions import load_emotions
    from model.profile import load_profile

    emotion_set = load_emotions(args.emotions)
    profile = persona_profile(load_profile(args.profile, args.domain), args.method)
    if args.trust_below is not None and profile.plausibility is None:
        raise UsageError(f"--trust-below needs a profile with a 'plausibility' section (profile {profile.name!r} has "
                         "none; `python -m model.priors learn` writes one)")
    return profile, emotion_set.labels, settings_for(profile, args, prompting(args, profile, emotion_set))


def plan_dataset(config: RunConfig) -> dict:
    """The plan of a text run (llm.plan): requests, tokens, wall time, redraws and cost; sends no request."""
    from model.records import sample_records

    if config.mode != "text":
        raise UsageError("a plan is text mode's")
    args = config.namespace()
    profile, emotions, settings = _prepared(args)
    records = sample_records(profile, list(range(min(config.n, SAMPLE))), config.seed, emotions)
    previous = Path(f"{config.out}.summary.json") if config.out else None
    try:
        last = orjson.loads(previous.read_bytes()) if previous is not None and previous.is_file() else None
    except orjson.JSONDecodeError:
        last = None  # not a summary of ours: no default from it
    return plan(records, config.n, settings, profile, args, last)


async def _text(args, out: Path, signals: bool) -> tuple[list[dict], dict, tuple]:
    """Text mode: personas from the profile through validation and generation; on Ray with `ray`."""
    from model.records import sample_records

    profile, emotions, settings = _prepared(args)
    priced = args.price_in is not None or args.price_out is not None
    if args.ray is not None:
        return (*await asyncio.to_thread(_ray, args, out, emotions, settings), (profile, settings))
    journal = journal_of(out, args.format)
    with locked(out):
        done = finished(journal, range(args.n))
        if other := {r.get("method") for r in done.values()} - {args.method}:
            raise UsageError(f"{journal} holds texts of method {sorted(map(str, other))[0]}; give another --out")
        refuse_other(done, settings.prompts, journal)
        first = next((i for i in range(args.n) if i not in done), None)
        if first is not None:  # a template that fails on a record fails here, before any request
            preview(settings, sample_records(profile, [first], args.seed, emotions)[0])

        def produce(client, stats):  # called once the endpoint answered: records are sampled after that
            todo, redraw = resume(profile, range(args.n), args.seed, emotions, done, journal)
            return generate_texts(todo, client, settings=settings, redraw=redraw, stats=stats)

        expected = plan(sample_records(profile, list(range(min(args.n, SAMPLE))), args.seed, emotions), args.n,
                        settings, profile, args) if priced else None
        summary = await drive(args, out, journal, produce, args.n, done, "text", settings.prompts, signals,
                              lambda s: _costed(s, expected, args))
        in_id_order(journal)
        results = list(recover(journal).values())
        if journal != out:
            write([results], out, args.format)
    return results, summary, (profile, settings)


def _costed(summary: dict, expected: dict | None, args) -> dict:
    """The summary's `cost` (this invocation's tokens at the prices) and the `plan` beside it, with prices."""
    if expected is None:
        return {}
    return {"cost": round(cost(summary["prompt_tokens"], summary["completion_tokens"], args), 6), "plan": expected}


def _ray(args, out: Path, emotions, settings) -> tuple[list[dict], dict]:
    from .scale.cli import main_ray

    with locked(out):
        main_ray(args, out, emotions, settings)
    results = sorted(recover(out).values(), key=lambda r: r["id"]) if args.format == "jsonl" else []
    return results, orjson.loads(Path(f"{out}.summary.json").read_bytes())


async def _dialogue(args, out: Path, signals: bool) -> tuple[list[dict], dict, tuple]:
    """Dialogue mode: sample dialogues from the fitted chain, write them through the engine."""
    from model.dialogue import CHAINS_DIR, load_chain
    from model.emotions import load_emotions
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
        summary, settings = await _dialogues(args, out, results, profile, chain, words, signals)
        in_id_order(results)
    return list(recover(results).values()), summary, (profile, settings)


async def _dialogues(args, out: Path, results: Path, profile, chain, words: Prompting, signals: bool) -> tuple:
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

    summary = await drive(args, out, results, produce, args.n_dialogues, done, "dialogue", settings.prompts, signals)
    if out != results and not summary["failed"]:
        write_bytes(out, meld_csv(sorted(recover(results).values(), key=lambda r: r["id"])))
    return summary, settings
