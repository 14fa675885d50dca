"""Text mode's duplicates, wired from the run's config: the dedup of `--dedup` over a resumed journal (`unique_for`),
the warning of a run without it whose texts repeat each other (`warn_repeats`), and the dataset card's lines on
them (`duplicates_section`)."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from common.errors import UsageError

from common.jsonl import results

from ..engine.resume import Finished
from ..engine.unique import Unique
from .config import RunConfig

REPEATS = 0.10  # the share of exact repeats above which a run without --dedup warns


def unique_for(config: RunConfig, done: Finished, journal: Path) -> Unique | None:
    """The run's dedup (None without --dedup), its index holding the finished texts of `journal` (`done`, read a
    line at a time); refused when those were written under another --dedup rule, or without --dedup, or with it
    when this run has none."""
    unique = Unique(config.dedup_spec, config.dedup_scope or "emotion") if config.dedup else None
    rule = unique.rule if unique else None
    if other := done.dedups - {rule}:
        raise UsageError(f"{journal} holds texts written {_worded(sorted(other, key=str)[0])}, not "
                         f"{_worded(rule)}; give another --out, or the same --dedup and --dedup-scope")
    if unique and len(done):
        unique.prime(results(journal, fields=("id", "text", "emotion")))
    return unique


def _worded(rule: str | None) -> str:
    if rule is None:
        return "without --dedup"
    spec, _, scope = rule.partition("/")
    return f"with --dedup {spec} --dedup-scope {scope}"


def warn_repeats(config: RunConfig, summary: dict) -> None:
    """Without --dedup: a `warning:` line when more than REPEATS of the output's texts repeat an earlier one."""
    output = summary["output"]
    repeats, texts = output["exact_duplicates"], output["results"]
    if config.dedup is None and texts and repeats > REPEATS * texts:
        print(f"warning: {repeats} of {texts} texts ({repeats / texts:.0%}) repeat an earlier text (after NFKC, case "
              "folding and whitespace collapse): the endpoint may be degenerate; --dedup exact (or near) regenerates "
              "them", file=sys.stderr)


def duplicates_section(summary: dict, results: list[dict]) -> list[str]:
    """The dataset card's lines on duplicates: with --dedup, per emotion the texts redrawn as duplicates (over the
    whole output, from the results' `rejected_draws`) and this run's slots that ran out of draws after one;
    without, the exact repeats the output holds (none for dialogues, nor for a Ray run, whose summary has no
    "output")."""
    if not any("text" in r for r in results) or "exact_duplicates" not in summary.get("output", {}):
        return []  # dialogues, or a Ray run's summary (its shards' counters only)
    if "dedup" not in summary:
        repeats = summary.get("output", {}).get("exact_duplicates", 0)
        return ["", "## Duplicates", "", f"No --dedup: {repeats} of {len(results)} texts repeat an earlier text "
                "exactly (after NFKC, case folding and whitespace collapse)."]
    dedup = summary["dedup"]
    redrawn = Counter(r["emotion"] for r in results for d in r.get("rejected_draws", ()) if "duplicate_of" in d)
    emotions = sorted({*redrawn, *dedup["out_of_draws"]})
    spec, _, scope = dedup["rule"].partition("/")
    return ["", "## Duplicates", "", f"`--dedup {spec} --dedup-scope {scope}`: a text that duplicated an accepted one "
            "was regenerated with the slot's next persona draw (the lowest id of a group kept).", "",
            "| emotion | duplicates regenerated | slots out of draws after a duplicate (this run) |", "|---|---|---|",
            *(f"| {e} | {redrawn.get(e, 0)} | {dedup['out_of_draws'].get(e, 0)} |" for e in emotions),
            f"| all | {sum(redrawn.values())} | {sum(dedup['out_of_draws'].values())} |"]
