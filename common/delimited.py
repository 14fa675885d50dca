"""Delimited text files (CSV, TSV and their kin): the separator sniffed among SEPARATORS, or given; a header row,
or none (columns named by number: "0", "1", ...).

Sniffing parses the first SNIFF_ROWS rows with each separator and takes the one that splits them most
consistently into two or more fields: the largest share of rows with the commonest field count, then the
file's own separator (`,` for .csv, tab for .tsv), then the most fields. Quoted fields are parsed as CSV
quotes them, so a text holding the separator or a line break is one field.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
from collections import Counter
from pathlib import Path

from common.errors import UsageError

SEPARATORS = (",", ";", "\t", "|")
SNIFF_ROWS = 50
NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def separator(text: str) -> str:
    """`--sep`: one character, or `tab` / `\\t` (also comma, semicolon, pipe)."""
    sep = NAMES.get(text.lower(), text)
    if len(sep) != 1 or sep in "\r\n\"":
        raise argparse.ArgumentTypeError(f"expected one character (or tab, comma, semicolon, pipe), got {text!r}")
    return sep


def _rows(text: str, sep: str):
    return (row for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep) if row)


def sniff(text: str, preferred: str = ",") -> str:
    """The separator among SEPARATORS that splits the first rows of `text` most consistently (module doc);
    `preferred` when none splits them into two fields or more."""
    def score(sep: str) -> tuple:
        try:
            counts = [len(row) for row in itertools.islice(_rows(text, sep), SNIFF_ROWS)]
        except csv.Error:
            return (0.0, False, 0)
        if not counts:
            return (0.0, False, 0)
        fields, rows = Counter(counts).most_common(1)[0]
        return (rows / len(counts), sep == preferred, fields) if fields > 1 else (0.0, False, 0)

    best = max(SEPARATORS, key=score)
    return best if score(best)[0] > 0 else preferred


def read_delimited(path: Path, sep: str | None = None, header: bool = True) -> tuple[dict[str, list], str]:
    """({column: values}, the separator used) of a delimited file. Without a header the columns are "0", "1", ...
    A row with more fields than the header is an error naming it; a shorter one is padded with None."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    sep = sep or sniff(text, "\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        rows = list(_rows(text, sep))
    except csv.Error as e:
        raise UsageError(f"{path}: not readable with separator {sep!r} ({e})") from None
    if not rows:
        raise UsageError(f"{path}: empty file")
    width = max(map(len, rows)) if not header else len(rows[0])
    names = _unique(rows[0]) if header else [str(i) for i in range(width)]
    body = rows[1:] if header else rows
    for n, row in enumerate(body, 1):
        if len(row) > width:
            raise UsageError(f"{path} row {n}: {len(row)} fields, the header has {width} (separator {sep!r}; "
                             "give another with --sep)")
    return {name: [row[i] if i < len(row) else None for row in body] for i, name in enumerate(names)}, sep


def _unique(header: list[str]) -> list[str]:
    """Header names made unique: a repeated name gets `.1`, `.2`, ...; an empty one is named by its number."""
    seen: Counter = Counter()
    names = []
    for i, name in enumerate(header):
        name = name.strip() or str(i)
        names.append(f"{name}.{seen[name]}" if seen[name] else name)
        seen[name] += 1
    return names
