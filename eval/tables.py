"""Reading the files of a labelled corpus into columns: CSV, TSV, JSON Lines, parquet, CARER's `text;label` lines
and a `datasets` `save_to_disk` folder (the optional `datasets` package, imported only for such a folder).

A `Table` holds one split's columns as lists (one value per row) and, per column, the class names that the file
declares for integer labels (a `datasets` ClassLabel feature, also read from a parquet file's `huggingface` schema
metadata). Anything unreadable is a UsageError naming the file.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from eval.data import read_gold_split
from common.errors import UsageError
from common.jsonl import read_objects

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".txt": "text;label"}
DATASETS_MARKERS = ("dataset_dict.json", "state.json")  # what `save_to_disk` writes for a DatasetDict / a Dataset


@dataclass
class Table:
    columns: dict[str, list]
    class_names: dict[str, list[str]] = field(default_factory=dict)

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


def read_file(path: Path) -> Table:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{path}: can't read this format (known: {', '.join(sorted(SUFFIXES))}, or a `datasets` "
                         "save_to_disk folder)")
    if kind == "text;label":
        data = read_gold_split(path)
        return Table({"text": data.texts, "label": data.emotions})
    return {"csv": _delimited, "tsv": _delimited, "jsonl": _jsonl, "parquet": _parquet}[kind](path)


def _delimited(path: Path) -> Table:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            if not reader.fieldnames:
                raise UsageError(f"{path}: empty file (a header row is needed)")
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise UsageError(f"{path}: not readable as {path.suffix[1:].upper()} ({e})") from None
    return Table({name: [row.get(name) for row in rows] for name in reader.fieldnames})


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
