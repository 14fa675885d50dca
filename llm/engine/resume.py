"""Resuming a run: which slots of a results file are still to do, and the redraw of text mode's personas.

A results file is the append-only JSONL journal of `common.jsonl` (`Appender`, `recover`); a rerun of the same
command finds the finished slots there and does the rest.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from common.errors import UsageError
from common.jsonl import recover

MATCHING = ("profile", "domain", "seed", "emotion")  # what a resumed result must share with its slot


def check_resumable(records: list[dict], done: dict[int, dict], path: str | Path, fields=MATCHING) -> None:
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


def pending(slots: list[dict], path: str | Path, fields=MATCHING) -> tuple[list[dict], dict[int, dict]]:
    """The slots not finished in the results file `path` (whose finished lines must belong to this run, see
    `check_resumable`), and the finished results by id."""
    done = recover(path)
    check_resumable(slots, done, path, fields)
    return [s for s in slots if s["id"] not in done], done


def resume(profile, ids: Iterable[int], seed: int, emotions: list[str], path: Path
           ) -> tuple[list[dict], dict[int, dict], Callable]:
    """Text mode's slots of `ids` still to do given the results file `path`, the finished results by id, and the
    redraw for rejected personas, its sampler compiled now rather than in the middle of the event loop."""
    from model.records import sample_records

    todo, done = pending(sample_records(profile, ids, seed, emotions), path)

    def redraw(record: dict, attempt: int) -> dict:
        return sample_records(profile, [record["id"]], seed, emotions, attempt=attempt)[0]

    if todo:
        redraw(todo[0], 1)
    return todo, done, redraw
