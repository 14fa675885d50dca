"""Sharding a run by index range, and merging the shards back: pure functions, no Ray.

Record i is a pure function of (seed, i, attempt) and a rejected persona's replacement uses attempt + 1, + 2, ...
of the same slot, so any split of `range(n)` into shards yields, merged, the records of one unsplit run.
A shard is a half-open id range `[start, stop)`; its results go to one append-only JSONL file named by that range.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


from common.jsonl import recover
from common.schema import ACCEPTED

from common.formats import write


@dataclass(frozen=True)
class Shard:
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.start:010d}-{self.stop:010d}"

    def path(self, directory: str | Path, suffix: str = ".jsonl") -> Path:
        return Path(directory) / f"{self.name}{suffix}"

    def __len__(self) -> int:
        return self.stop - self.start


def split(n: int, k: int) -> list[Shard]:
    """`range(n)` cut into min(k, n) contiguous shards whose sizes differ by at most one."""
    k = max(1, min(k, n))
    bounds = [n * j // k for j in range(k + 1)]
    return [Shard(a, b) for a, b in zip(bounds, bounds[1:])]


def shard_dir(out: str | Path) -> Path:
    return Path(f"{out}.shards")


def shard_records(shard: Shard, directory: str | Path) -> list[dict]:
    """A shard's finished results in id order: one per id (a resumed shard never writes an id twice, but a
    duplicate would be dropped here, the last one kept), ids outside the shard ignored."""
    found = recover(shard.path(directory))
    return [found[i] for i in sorted(found) if shard.start <= i < shard.stop]


def merge(shards: list[Shard], directory: str | Path, out: str | Path, fmt: str = "jsonl") -> int:
    """Write the shards' results as one file (common.formats) in record order, atomically; returns the number of
    records. Memory holds one shard at a time."""
    return write((shard_records(shard, directory) for shard in shards), out, fmt)


def progress(shards: Iterable[Shard], directory: str | Path, offsets: dict[Shard, int]) -> int:
    """Lines appended to the shards' files since the offsets last seen (updated in place): a cheap progress count."""
    new = 0
    for shard in shards:
        path = shard.path(directory)
        try:
            with open(path, "rb") as f:
                f.seek(offsets.get(shard, 0))
                data = f.read()
        except FileNotFoundError:
            continue
        end = data.rfind(b"\n") + 1
        offsets[shard] = offsets.get(shard, 0) + end
        new += data.count(b"\n", 0, end)
    return new


def _add(total: dict, part: Mapping) -> None:
    for key, value in part.items():
        if isinstance(value, Mapping):
            _add(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("acceptance_rate",
                                                                                              "wall_s"):
            total[key] = total.get(key, 0) + value


def combine(summaries: Iterable[Mapping]) -> dict:
    """Sum shard summaries (`RunStats.summary`): counters add up, failures are merged, rates are recomputed."""
    total: dict = {}
    failures: dict = {}
    for s in summaries:
        failures.update(s.get("failures", {}))
        _add(total, {k: v for k, v in s.items() if k != "failures"})
    total["failures"] = dict(sorted(failures.items(), key=lambda kv: int(kv[0])))
    total["failed"] = len(failures)
    for counts in total.get("validation", {}).values():
        checked = sum(counts.values())
        if checked:
            counts["acceptance_rate"] = round(sum(counts.get(label, 0) for label in ACCEPTED) / checked, 4)
    return total
