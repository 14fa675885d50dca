"""The two modes of a run, wired from its config: text mode (`text_mode`: personas from the profile through
validation and generation, in this process or on Ray) and dialogue mode (`dialogue_mode`: dialogues sampled from a
fitted emotion chain, written through the engine). Each locks its results file, resumes from it, drives the engine
into it (llm.api.loop) and leaves it in id order."""
from __future__ import annotations

from pathlib import Path

import orjson

from common.errors import UsageError
from common.files import write_bytes
from common.formats import write
from common.jsonl import locked, recover

from ..engine.resume import check_resumable, finished, refuse_other, resume
from ..engine.texts import generate_texts, preview
from .config import RunConfig
from .dedup import unique_for, warn_repeats
from .loop import drive
from .plan import SAMPLE, cost, plan
from .wiring import dialogue_settings, text_settings


def journal_of(config: RunConfig, out: Path) -> Path:
    """The append-only JSONL a run resumes from, holding its results: in text mode `out` itself for JSONL, else
    OUT.journal.jsonl beside it (`out` then written from it, in id order, at the end); in dialogue mode the JSONL
    beside an --out ending in .csv (MELD's columns), else `out`."""
    if config.mode == "dialogue":
        return out.with_suffix(".jsonl") if out.suffix == ".csv" else out
    return out if config.output_format == "jsonl" else Path(f"{out}.journal.jsonl")


def in_id_order(path: Path) -> None:
    """Rewrite the JSONL journal `path` in id order, atomically (left as it is if a line is not a result)."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()] if path.exists() else []
    try:
        keyed = sorted((orjson.loads(line)["id"], line) for line in lines)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return
    write_bytes(path, b"".join(line + b"\n" for _, line in keyed))


def prepared(config: RunConfig):
    """Text mode's profile (for its method), emotion set and engine settings."""
    from model.baselines import persona_profile
    from model.emotions import DEFAULT, load_emotions
    from model.profile import load_profile

    emotions = load_emotions(DEFAULT if config.emotions is None else config.emotions)
    profile = persona_profile(load_profile(config.profile, config.domain), config.method)
    if config.trust_below is not None and profile.plausibility is None:
        raise UsageError(f"--trust-below needs a profile with a 'plausibility' section (profile {profile.name!r} has "
                         "none; `python -m model.priors learn` writes one)")
    return profile, emotions, text_settings(config, profile, emotions)


def prompt_of(config: RunConfig, record: dict) -> list[dict]:
    """The generation prompt of a text mode `record` of the run `config` (e.g. OUT.config.toml, loaded with
    `llm.api.config.load`): what a run with `--no-prompts` leaves out of its records."""
    _, _, s = prepared(config)
    if record.get("prompt_set") != s.prompts.hash:
        raise UsageError(f"record {record.get('id')} was written with prompt set {record.get('prompt_set')}, not "
                         f"{s.prompts.name} ({s.prompts.hash})")
    return s.generation(record)


async def text_mode(config: RunConfig, out: Path, signals: bool) -> tuple[list[dict], dict, tuple]:
    """Text mode: personas from the profile through validation and generation; on Ray with `ray`."""
    from model.records import sample_records

    profile, emotion_set, settings = prepared(config)
    emotions = emotion_set.labels
    if config.ray is not None:
        return (*await _ray(config, out, emotions, settings, signals), (profile, settings))
    journal = journal_of(config, out)
    with locked(out):
        done = finished(journal, range(config.n))
        if other := done.methods - {config.method}:
            raise UsageError(f"{journal} holds texts of method {sorted(map(str, other))[0]}; give another --out")
        refuse_other(done, settings.prompts, journal)
        unique = unique_for(config, done, journal)
        first = next(done.ids.missing(range(config.n)), None)
        if first is not None:  # a template that fails on a record fails here, before any request
            preview(settings, sample_records(profile, [first], config.seed, emotions)[0])

        def produce(client, stats):  # called once the endpoint answered: records are sampled after that
            todo, redraw = resume(profile, range(config.n), config.seed, emotions, done, journal)
            return generate_texts(todo, client, settings=settings, redraw=redraw, stats=stats,
                                  workers=_workers(config, config.n - len(done)), unique=unique)

        priced = config.price_in is not None or config.price_out is not None
        expected = plan(sample_records(profile, list(range(min(config.n, SAMPLE))), config.seed, emotions),
                        config.n, settings, profile, config) if priced else None
        summary = await drive(config, out, journal, produce, done, settings.prompts, signals,
                              lambda s: _costed(s, expected, config))
        warn_repeats(config, summary)
        in_id_order(journal)
        results = list(recover(journal).values())
        if journal != out:
            write([results], out, config.output_format)
    return results, summary, (profile, settings)


def _costed(summary: dict, expected: dict | None, config: RunConfig) -> dict:
    """The summary's `cost` (this invocation's tokens at the prices) and the `plan` beside it, with prices."""
    if expected is None:
        return {}
    return {"cost": summary.get("cost", round(cost(summary["prompt_tokens"], summary["completion_tokens"], config), 6)),
            "plan": expected}


def _workers(config: RunConfig, open_slots: int) -> int | None:
    """Slots in flight: every open one in batch mode (a round holds the next request of each), else the default."""
    return max(1, open_slots) if config.batching else None


async def _ray(config: RunConfig, out: Path, emotions: list[str], settings, signals: bool
               ) -> tuple[list[dict], dict]:
    from ..scale.driver import main_ray

    with locked(out):
        await main_ray(config, out, emotions, settings, signals)
    results = sorted(recover(out).values(), key=lambda r: r["id"]) if config.output_format == "jsonl" else []
    return results, orjson.loads(Path(f"{out}.summary.json").read_bytes())


async def dialogue_mode(config: RunConfig, out: Path, signals: bool) -> tuple[list[dict], dict, tuple]:
    """Dialogue mode: sample dialogues from the fitted chain, write them through the engine."""
    from model.dialogue import CHAINS_DIR, load_chain
    from model.profile import load_profile

    chain_path = Path(config.chain) if config.chain else CHAINS_DIR / f"{config.benchmark}.json"
    if not config.chain and not chain_path.is_file():
        raise UsageError(f"no fitted chain is shipped for benchmark {config.benchmark!r}; fit one with "
                         "`python -m model.dialogue fit` and pass --chain")
    chain = load_chain(chain_path)
    if chain.benchmark != config.benchmark:
        raise UsageError(f"chain {chain_path} is for {chain.benchmark!r}, not --benchmark {config.benchmark!r}")
    profile = load_profile(config.profile, config.domain or "conversation")
    settings = dialogue_settings(config, profile, _dialogue_emotions(config, chain))
    results = journal_of(config, out)
    with locked(results):
        summary = await _dialogues(config, out, results, profile, chain, settings, signals)
        in_id_order(results)
    return list(recover(results).values()), summary, (profile, settings)


def _dialogue_emotions(config: RunConfig, chain):
    """The emotion set of a dialogue run: --emotions, which must hold the chain's labels, else the benchmark's."""
    from model.emotions import load_emotions

    if config.emotions is None:
        return load_emotions(config.benchmark)
    emotions = load_emotions(config.emotions)
    if missing := [label for label in chain.labels if emotions.get(label) is None]:
        raise UsageError(f"--emotions {config.emotions} lacks {', '.join(missing)}: the chain of --benchmark "
                         f"{config.benchmark} writes {', '.join(chain.labels)} (leave out --emotions to use its set)")
    return emotions


async def _dialogues(config: RunConfig, out: Path, results: Path, profile, chain, settings, signals: bool) -> dict:
    """Dialogue mode with the results file locked."""
    from model.dialogue import sample_dialogues
    from model.dialogue.corpus import meld_csv

    from ..engine.dialogue import MATCHING, generate_dialogues, messages

    def sample(ids, attempt: int = 0) -> list[dict]:
        return sample_dialogues(profile, chain, ids, config.seed, labels=config.labels, attempt=attempt)

    done = finished(results, range(config.n_dialogues), MATCHING)
    refuse_other(done, settings.prompts, results)
    first = next(done.ids.missing(range(config.n_dialogues)), None)
    if first is not None:  # a template that fails on a dialogue fails here, before any request
        messages(settings, sample([first])[0])

    def redraw(dialogue: dict, attempt: int) -> dict:
        return sample([dialogue["id"]], attempt)[0]

    def produce(client, stats):  # called once the endpoint answered: the dialogues are sampled after that
        dialogues = sample(range(config.n_dialogues))
        check_resumable(lambda ids: [dialogues[i] for i in ids], results, MATCHING)
        todo = [d for d in dialogues if d["id"] not in done]
        return generate_dialogues(todo, client, settings=settings, emotions=list(chain.labels), redraw=redraw,
                                  stats=stats, workers=_workers(config, len(todo)))

    summary = await drive(config, out, results, produce, done, settings.prompts, signals)
    if out != results and not summary["failed"]:
        write_bytes(out, meld_csv(sorted(recover(results).values(), key=lambda r: r["id"])))
    return summary
