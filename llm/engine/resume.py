"""Resuming a run: which slots of a results file are still to do, and the redraw of text mode's personas.

A results file is the append-only JSONL journal of `common.jsonl` (`Appender`, `recover`); a rerun of the same
command finds the finished slots there and does the rest. Text mode reads the file first (`finished`: cheap, no
sampling) and samples its records only once the endpoint answered (`resume`), lazily, a chunk at a time.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Container, Iterable, Iterator
from pathlib import Path

from common.errors import UsageError
from common.jsonl import recover

MATCHING = ("profile", "domain", "seed", "emotion")  # what a resumed result must share with its slot
CHUNK = 4096  # records sampled at a time


def finished(path: str | Path, ids: Container[int], fields=MATCHING) -> dict[int, dict]:
    """The finished results of the results file `path` by id: every line a result with `fields`, its id in `ids`
    and not repeated (else UsageError naming the line; see `common.jsonl.recover`)."""
    return recover(path, ids=ids, fields=("id", *fields))


def check_resumable(records: Iterable[dict], done: dict[int, dict], path: str | Path, fields=MATCHING) -> None:
    """Refuse to resume from `path` when a finished result there belongs to another run (differs in `fields`)."""
    for record in records:
        if record["id"] in done and (bad := [k for k in fields if done[record["id"]].get(k) != record[k]]):
            raise UsageError(f"{path} holds text {record['id']} from another run (different {', '.join(bad)}); "
                             "give another --out")


def refuse_other(done: dict[int, dict], prompts, path: str | Path) -> None:
    """Refuse to resume from `path` when a finished result there was written with another prompt set than
    `prompts` (a result from before prompt sets existed was written with the shipped `en`)."""
    from .promptset import DEFAULT, shipped

    old = shipped(DEFAULT).hash
    if other := {r.get("prompt_set", old) for r in done.values()} - {prompts.hash}:
        raise UsageError(f"{path} holds results written with another prompt set ({sorted(other)[0][:12]}, not "
                         f"{prompts.name!r} {prompts.hash[:12]}); give another --out or the same --prompts")


def resume(profile, ids: Iterable[int], seed: int, emotions: list[str], done: dict[int, dict], path: Path
           ) -> tuple[Iterator[dict], Callable]:
    """Text mode's records of `ids` still to do given the finished results `done` of the results file `path`
    (checked against their records, a chunk at a time), sampled lazily; and the redraw for rejected personas,
    its sampler compiled now rather than in the middle of the event loop."""
    from model.records import sample_records

    def sampled(wanted: list[int]) -> Iterator[dict]:
        for start in range(0, len(wanted), CHUNK):
            yield from sample_records(profile, wanted[start:start + CHUNK], seed, emotions)

    check_resumable(sampled(sorted(done)), done, path)
    todo = sampled([i for i in ids if i not in done])

    def redraw(record: dict, attempt: int) -> dict:
        return sample_records(profile, [record["id"]], seed, emotions, attempt=attempt)[0]

    first = next(todo, None)
    if first is None:
        return iter(()), redraw
    redraw(first, 1)
    return itertools.chain([first], todo), redraw
