"""Reading a table from the files people have, in one place for every command that reads a corpus or an output
(eval.report's DATA and --gold, eval.view, eval.judge, eval.erc's and model.dialogue's dialogues): delimited text
(CSV, TSV, `;`- or `|`-separated: the separator sniffed or given, with a header row or without one), JSON Lines,
parquet, CARER's `text;label` lines and a `datasets` `save_to_disk` folder (the optional `datasets` package,
imported only for such a folder).

A `Table` holds one split's columns as lists (one value per row) and, per column, the class names that the file
declares for integer labels (a `datasets` ClassLabel feature, also read from a parquet file's `huggingface` schema
metadata). Nested JSON values stay as they are (dicts, lists). Anything unreadable is a UsageError naming the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from common.delimited import read_delimited, separator
from common.errors import UsageError
from common.jsonl import lines, read_objects, read_text

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".txt": "text;label"}
DATASETS_MARKERS = ("dataset_dict.json", "state.json")  # what `save_to_disk` writes for a DatasetDict / a Dataset


@dataclass(frozen=True)
class ReadOptions:
    sep: str | None = None  # a delimited file's separator; None: sniffed (common.delimited)
    header: bool = True  # False: the first row is data, and the columns are named by number ("0", "1", ...)


@dataclass
class Table:
    columns: dict[str, list]
    class_names: dict[str, list[str]] = field(default_factory=dict)
    separator: str | None = None  # a delimited file's separator, None for other formats
    header: bool = True  # whether a header row named the columns

    def extend(self, other: Table) -> None:
        """Append the rows of another shard of the same split (columns absent from one side are padded)."""
        n, m = self.rows, other.rows
        for name in list(self.columns) + [c for c in other.columns if c not in self.columns]:
            self.columns[name] = self.columns.get(name, [None] * n) + other.columns.get(name, [None] * m)
        self.class_names = {**other.class_names, **self.class_names}

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()), []))


def split_name(path: Path) -> str:
    """The split a file holds: the leading word of its name (`train_sent_emo.csv`, `train-00000-of-00001.parquet`
    and `train.txt` all hold `train`)."""
    match = re.match(r"[A-Za-z0-9]+", path.name)
    return match.group(0).lower() if match else path.stem


def is_datasets_folder(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in DATASETS_MARKERS)


def read_file(path: str | Path, options: ReadOptions = ReadOptions()) -> Table:
    """One file as a Table, its format from its suffix (SUFFIXES)."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{path}: can't read this format (known: {', '.join(sorted(SUFFIXES))}, or a `datasets` "
                         "save_to_disk folder)")
    if kind in ("csv", "tsv"):
        columns, sep = read_delimited(path, options.sep, options.header)
        return Table(columns, separator=sep, header=options.header)
    return {"text;label": _text_label, "jsonl": _jsonl, "parquet": _parquet}[kind](path)


def _text_label(path: Path) -> Table:
    """CARER's lines: `text;label`, split at the last `;`; blank lines skipped."""
    texts, labels = [], []
    for n, line in enumerate(lines(read_text(path)), 1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition(";")
        if not sep or not text.strip() or not label.strip():
            raise UsageError(f"{path}:{n}: expected 'text;label'")
        texts.append(text)
        labels.append(label.strip())
    if not texts:
        raise UsageError(f"{path}: no lines")
    return Table({"text": texts, "label": labels})


def _jsonl(path: Path) -> Table:
    records = [rec for _, rec in read_objects(path)]
    names = list(dict.fromkeys(key for rec in records for key in rec))
    return Table({name: [rec.get(name) for rec in records] for name in names})


def _parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise UsageError(f"{path}: not a readable parquet file ({e})") from None
    meta = (table.schema.metadata or {}).get(b"huggingface")
    features = orjson.loads(meta).get("info", {}).get("features", {}) if meta else {}
    return Table(table.to_pydict(), {name: names for name, f in features.items() if (names := _class_names(f))})


def _class_names(feature) -> list[str] | None:
    """The names of a ClassLabel feature, or of a list-of-ClassLabel feature (multi-label), as `datasets` objects
    or as their JSON form in parquet metadata."""
    for f in (feature, feature.get("feature") if isinstance(feature, dict) else getattr(feature, "feature", None)):
        names = f.get("names") if isinstance(f, dict) else getattr(f, "names", None)
        if names:
            return list(names)
    return None


def read_datasets_folder(path: Path) -> dict[str, Table]:
    """The splits of a `save_to_disk` folder: a DatasetDict's, or one Dataset's under its split name (else `data`)."""
    try:
        import datasets
    except ImportError:
        raise UsageError(f"{path} is a `datasets` folder; reading it needs the optional dependency: "
                         "pip install datasets") from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable `datasets` folder ({e})") from None
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(str(loaded.split or "data"), loaded)]
    return {str(name).lower(): Table(ds.to_dict(), {c: n for c, f in ds.features.items() if (n := _class_names(f))})
            for name, ds in parts}


def _shown(names: list[str], limit: int = 30) -> str:
    return ", ".join(name if len(name) <= limit else name[:limit - 1] + "…" for name in names)


def header_hint(table: Table) -> str:
    """What to try when a delimited file's columns are not the ones wanted: --no-header for a file whose first
    row is data, column numbers for one read without a header."""
    if table.separator is None:
        return ""
    if not table.header:
        return f"; without a header row the columns are numbered 0 to {len(table.columns) - 1}"
    return "; if the first row is data, not a header, add --no-header and name the columns by number (0, 1, ...)"


def find_column(table: Table, given: str | None, candidates: tuple[str, ...], option: str | None, where: str) -> str:
    """The column `given` (by name, or by number without a header), else the one column named (case-insensitively)
    one of `candidates`; UsageError naming the columns when there is none or several (`option` names the option
    that chooses one)."""
    columns = list(table.columns)
    if given is not None:
        if given not in table.columns:
            raise UsageError(f"{where}: no column {given!r} (columns: {_shown(columns)}){header_hint(table)}")
        return given
    found = [c for c in columns if c.strip().lower() in candidates]
    name_it = f"; name it with {option}" if option else ""
    if len(found) > 1:
        what = f"{option[2:]}: candidates {', '.join(found)}; name one with {option}" if option else \
            f"{'/'.join(candidates)} column: candidates {', '.join(found)}"
        raise UsageError(f"{where}: ambiguous {what}")
    if not found:
        if not table.header:
            first = ", ".join(f"{c}={v!r}" for c, v in zip(columns, (table.columns[c][0] for c in columns)))
            raise UsageError(f"{where}: without a header row, name the {'/'.join(candidates)} column by number"
                             f"{' with ' + option if option else ''} (first row: {_shown([first], 200)})")
        raise UsageError(f"{where}: no column named {'/'.join(candidates)}{name_it} (columns: {_shown(columns)})"
                         f"{header_hint(table)}")
    return found[0]


def add_reader_options(p, what: str = "the input") -> None:
    """--sep and --no-header, for `what`."""
    p.add_argument("--sep", type=separator, help=f"the separator of {what} when it is delimited text: one "
                   "character, or tab (default: sniffed among , ; tab |)")
    p.add_argument("--no-header", dest="header", action="store_false",
                   help=f"{what} has no header row: its columns are numbered from 0 (e.g. --text-col 0 --label-col 1)")


def read_options(args) -> ReadOptions:
    return ReadOptions(args.sep, args.header)
