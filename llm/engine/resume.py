"""Resuming a run: which slots of a results file are still to do, and the redraw of text mode's personas.

A results file is the append-only JSONL journal of `common.jsonl` (`Appender`, `results`); a rerun of the same
command finds the finished slots there and does the rest. Nothing here holds the finished results, nor a list of
the slots: `finished` reads the file once, a line at a time (cheap, no sampling), and keeps what a rerun needs of
them (`Finished`: their ids as a `common.idset.IdSet`, the methods and prompt sets they were written with, their
totals); text mode samples its records only once the endpoint answered (`resume`), a chunk at a time, checking the
finished ones against theirs in a second pass over the file. So memory follows the slots in flight, not --n.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UsageError
from common.idset import IdSet
from common.jsonl import results

from .stats import OutputTotals

MATCHING = ("profile", "domain", "seed", "emotion")  # what a resumed result must share with its slot
CHUNK = 4096  # records sampled at a time


@dataclass
class Finished:
    """What a rerun needs of the finished results of a results file, without them."""

    ids: IdSet = field(default_factory=IdSet)
    methods: set = field(default_factory=set)  # their `method` fields (None: a result without one)
    prompt_sets: set = field(default_factory=set)  # their prompt sets' hashes (None: from before prompt sets)
    dedups: set = field(default_factory=set)  # their --dedup rules (None: written without one)
    totals: OutputTotals = field(default_factory=lambda: OutputTotals(of=0))  # their tokens and persona draws

    def __contains__(self, i: int) -> bool:
        return i in self.ids

    def __len__(self) -> int:
        return len(self.ids)


def finished(path: str | Path, ids: Container[int] | None = None, fields=MATCHING) -> Finished:
    """The finished results of the results file `path`: every line a result with `fields`, with `ids` its id in
    them and not repeated (else UsageError naming the line; see `common.jsonl.recover`)."""
    done = Finished()
    for result in results(path, ids, ("id", *fields), seen=done.ids):
        done.methods.add(result.get("method"))
        done.prompt_sets.add(result.get("prompt_set"))
        done.dedups.add(result.get("dedup"))
        done.totals.add(result)
    return done


def check_resumable(records_of: Callable[[list[int]], Iterable[dict]], path: str | Path, fields=MATCHING) -> None:
    """Refuse to resume from `path` when a finished result there belongs to another run (differs in `fields` from
    its record; `records_of(ids)` gives the records of ids, in that order). Reads `path` a chunk at a time."""
    found = results(path, fields=("id", *fields))
    while chunk := list(itertools.islice(found, CHUNK)):
        for result, record in zip(chunk, records_of([r["id"] for r in chunk])):
            if bad := [k for k in fields if result.get(k) != record[k]]:
                raise UsageError(f"{path} holds text {record['id']} from another run (different {', '.join(bad)}); "
                                 "give another --out")


def refuse_other(done: Finished, prompts, path: str | Path) -> None:
    """Refuse to resume from `path` when a finished result there was written with another prompt set than
    `prompts` (a result from before prompt sets existed was written with the shipped `en`)."""
    from .promptset import DEFAULT, shipped

    old = shipped(DEFAULT).hash
    if other := {old if h is None else h for h in done.prompt_sets} - {prompts.hash}:
        raise UsageError(f"{path} holds results written with another prompt set ({sorted(other)[0][:12]}, not "
                         f"{prompts.name!r} {prompts.hash[:12]}); give another --out or the same --prompts")


def resume(profile, ids: range, seed: int, emotions: list[str], done: Finished, path: Path
           ) -> tuple[Iterator[dict], Callable]:
    """Text mode's records of `ids` still to do given the finished results `done` of the results file `path`
    (checked against their records, a chunk at a time), sampled lazily; and the redraw for rejected personas,
    its sampler compiled now rather than in the middle of the event loop."""
    from model.records import sample_records

    def records_of(wanted: list[int]) -> list[dict]:
        return sample_records(profile, wanted, seed, emotions)

    if len(done):
        check_resumable(records_of, path)
    missing = done.ids.missing(ids)
    todo = (record for chunk in iter(lambda: list(itertools.islice(missing, CHUNK)), [])
            for record in records_of(chunk))

    def redraw(record: dict, attempt: int) -> dict:
        return sample_records(profile, [record["id"]], seed, emotions, attempt=attempt)[0]

    first = next(todo, None)
    if first is None:
        return iter(()), redraw
    redraw(first, 1)
    return itertools.chain([first], todo), redraw
