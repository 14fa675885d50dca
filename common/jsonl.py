"""JSON Lines: one reader for every input file, and the append-only results journal with torn-line recovery."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from common.errors import UsageError


def read_text(path: Path) -> str:
    """A UTF-8 text file's contents; UsageError when it is missing or not UTF-8."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of `path`; UsageError for a line that is not an object."""
    path = Path(path)
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise UsageError(f"{path}:{n}: not valid JSON") from None
        if not isinstance(obj, dict):
            raise UsageError(f"{path}:{n}: expected a JSON object")
        yield n, obj


def recover(path: str | Path) -> dict[int, dict]:
    """Finished results in the journal `path` by id. A torn last line (a crash mid-write) is cut off the file."""
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
