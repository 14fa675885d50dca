"""The results file: append-only JSONL that a crash cannot tear, and recovery of what it already holds."""
from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from model.errors import UsageError


def recover(path: str | Path) -> dict[int, dict]:
    """Finished results in `path` by id. A torn last line (a crash mid-write) is cut off the file."""
    path = Path(path)
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        os.truncate(path, end)
    found = {}
    for lineno, line in enumerate(data[:end].splitlines(), 1):
        try:
            result = orjson.loads(line)
            found[result["id"]] = result
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise UsageError(f"{path}:{lineno} is not a result line; give another --out") from None
    return found


class Appender:
    """Appends one whole line per write (a single write(2) on an O_APPEND descriptor), fsyncs at most
    every `sync_every` seconds and on close."""

    def __init__(self, path: str | Path, sync_every: float = 1.0):
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._sync_every = sync_every
        self._synced = time.monotonic()

    def write(self, obj: dict) -> None:
        line = memoryview(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))
        while line:
            line = line[os.write(self._fd, line) :]
        if time.monotonic() - self._synced >= self._sync_every:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


MATCHING = ("profile", "domain", "seed", "emotion")  # what a resumed result must share with its slot


def check_resumable(records: list[dict], done: dict[int, dict], path: str | Path, fields=MATCHING) -> None:
    """Refuse to resume from `path` when a finished result there belongs to another run (differs in `fields`)."""
    for record in records:
        if record["id"] in done and (bad := [k for k in fields if done[record["id"]].get(k) != record[k]]):
            raise UsageError(f"{path} holds text {record['id']} from another run (different {', '.join(bad)}); "
                             "give another --out")
