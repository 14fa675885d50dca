"""Reading input files (UTF-8 text, JSONL): one JSON object per line (blank lines skipped), anything else one clear UsageError."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from model.errors import UsageError


def read_text(path: Path) -> str:
    """A UTF-8 text file's contents; UsageError when it is missing or not UTF-8."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of `path`."""
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
