"""A gold corpus for `eval.report --gold`: any labelled text corpus, read into a train and a test split.

`--gold PATH` is one file (CSV, TSV, JSON Lines, parquet, or `text;label` lines), a folder of split files (the
split is the leading word of the name: `train.txt`, `test_sent_emo.csv`, `train-00000-of-00001.parquet`; several
files of one split are its shards), or a `datasets` `save_to_disk` folder. Delimited text has its separator
sniffed (or given: `read.sep`) and a header row, or none (`read.header` False: columns named "0", "1", ...).
- Columns: `text_col` / `label_col`, or detected when exactly one column is named (case-insensitively) one of
  TEXT_COLUMNS / LABEL_COLUMNS; none or several is an error naming the columns or the candidates.
- Splits: `train` (default `train`, or the only split there is) and `test` (default `test`). Without a test split
  the train split is cut in two by `stratified_split` (seeded; `info["split"]` says so).
- Labels: integer ids (or digit strings) become names by `label_names` or the file's ClassLabel feature; a value
  outside those names is an error. A multi-label row (a list, or a CSV/TSV cell `a,b`) is dropped or keeps its
  first label (`multi_label`); the dropped counts are in `info`, and a split left empty is an error. So a
  GoEmotions-style cell of several ids, "3,7", is a multi-label row: dropped by default, its first id with `first`.
- Size: with `max_rows`, each split keeps a seeded stratified sample of at most that many rows
  (`stratified_sample`; `info["sample"]` says how many of how many).
- The label set is in a fixed order (`eval.labels.label_order`), so runs over the same corpus compare.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UsageError
from common.tables import (SUFFIXES, ReadOptions, Table, find_column, is_datasets_folder, read_datasets_folder,
                           read_file, split_name)
from eval.data import LABEL_COLUMNS, TEXT_COLUMNS, Labelled
from eval.labels import label_order

MULTI_LABEL = ("drop", "first")
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class GoldOptions:
    text_col: str | None = None
    label_col: str | None = None
    train: str | None = None
    test: str | None = None
    label_names: list[str] | None = None
    multi_label: str = "drop"
    seed: int = 0
    read: ReadOptions = ReadOptions()  # a delimited file's separator and header
    max_rows: int | None = None  # a seeded stratified sample of at most this many rows per split


@dataclass(frozen=True)
class Gold:
    train: Labelled
    test: Labelled
    labels: list[str]  # the label set, in its fixed order
    info: dict  # for report.json: source, format, columns, splits, label names, multi-label rows dropped


def _sources(path: Path) -> tuple[str, dict]:
    """(format, {split: [files]} or {split: Table} for a `datasets` folder)."""
    if is_datasets_folder(path):
        return "datasets", read_datasets_folder(path)
    if path.is_file():
        return SUFFIXES.get(path.suffix.lower(), path.suffix), {split_name(path): [path]}
    if not path.is_dir():
        raise UsageError(f"gold corpus {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise UsageError(f"{path}: no corpus files ({', '.join(sorted(SUFFIXES))}) and no `datasets` "
                         "save_to_disk folder")
    splits: dict[str, list[Path]] = {}
    for p in files:
        splits.setdefault(split_name(p), []).append(p)
    kinds = sorted({SUFFIXES[p.suffix.lower()] for p in files})
    return "+".join(kinds), splits


def _load(source, options: ReadOptions) -> Table:
    if isinstance(source, Table):
        return source
    table = read_file(source[0], options)
    for shard in source[1:]:
        table.extend(read_file(shard, options))
    return table


def resolve_splits(available: list[str], train: str | None, test: str | None) -> tuple[str, str | None]:
    """(train split, test split or None when the train split is to be cut in two)."""
    for option, name in (("--gold-train", train), ("--gold-test", test)):
        if name is not None and name not in available:
            raise UsageError(f"{option}: the gold corpus has no split {name!r} (splits: {', '.join(available)})")
    train = train or ("train" if "train" in available else available[0] if len(available) == 1 else None)
    if train is None:
        raise UsageError(f"the gold corpus has no 'train' split; name one with --gold-train "
                         f"(splits: {', '.join(available)})")
    test = test or ("test" if "test" in available and train != "test" else None)
    if test == train:
        raise UsageError(f"the gold train and test splits are both {train!r}; name another with --gold-train")
    return train, test


def _label(value, names: list[str] | None, names_from: str, where: str) -> list[str]:
    """A row's labels (a list: several for a multi-label row) as names."""
    if isinstance(value, (list, tuple)) or isinstance(value, str) and "," in value:
        labels = [one for v in (value.split(",") if isinstance(value, str) else value)
                  for one in _label(v, names, names_from, where)]
        if not labels:
            raise UsageError(f"{where}: empty label list")
        return labels
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = "" if value is None else str(value).strip()
    if not text:
        raise UsageError(f"{where}: empty label")
    if names is None or text in names:
        return [text]
    if text.isdigit() and int(text) < len(names):
        return [names[int(text)]]
    raise UsageError(f"{where}: label {text!r} is outside {names_from} ({', '.join(names)})")


def _labelled(table: Table, where: str, text_col: str, label_col: str, names: list[str] | None, names_from: str,
              multi_label: str) -> tuple[Labelled, int]:
    """The split's texts and labels, and how many multi-label rows `multi_label` dropped."""
    texts, emotions, dropped = [], [], 0
    for row, (text, value) in enumerate(zip(table.columns[text_col], table.columns[label_col]), 1):
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"{where} row {row}: empty or missing text in column {text_col!r}")
        labels = _label(value, names, names_from, f"{where} row {row}")
        if len(labels) > 1 and multi_label == "drop":
            dropped += 1
            continue
        texts.append(text)
        emotions.append(labels[0])
    if not texts:
        raise UsageError(f"{where}: no texts left after dropping {dropped} multi-label rows"
                         if dropped else f"{where}: no rows")
    return Labelled(texts, emotions), dropped


def stratified_split(labels: list[str], seed: int, fraction: float = TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified (train, test) row indices: round(fraction x n) of each label's n rows go to test."""
    y = np.array(labels, dtype=object)
    rng = np.random.default_rng(seed)
    test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == label))[:round(fraction * (y == label).sum())]
                                   for label in sorted(set(labels))]))
    return np.setdiff1d(np.arange(len(y)), test), test


def stratified_sample(labels: list[str], n: int, seed: int) -> np.ndarray:
    """Sorted seeded row indices of at most `n` rows, each label's share kept: every label keeps one row (when n
    allows), the rest is shared out in proportion to the rows each label has left (largest remainders, ties to
    the first label in sorted order). All rows when there are no more than n."""
    y = np.array(labels, dtype=object)
    if len(y) <= n:
        return np.arange(len(y))
    names, counts = np.unique(y, return_counts=True)
    take = np.full(len(names), 1 if n >= len(names) else 0)
    quota = (counts - take) * (n - take.sum()) / (len(y) - take.sum())
    take += np.floor(quota).astype(int)
    left = n - take.sum()
    take[np.argsort(-(quota - np.floor(quota)), kind="stable")[:left]] += 1
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == name))[:k] for name, k in zip(names, take)]))


def _capped(data: Labelled, info: dict, n: int, seed: int) -> tuple[Labelled, dict]:
    """The split cut to a stratified sample of at most n rows, and what the report says of it."""
    rows = stratified_sample(data.emotions, n, seed)
    info.update(n=len(rows))
    return _subset(data, rows), {"from": len(data), "kept": len(rows)}


def _subset(data: Labelled, rows: np.ndarray) -> Labelled:
    return Labelled([data.texts[i] for i in rows], [data.emotions[i] for i in rows])


def _read_split(path: Path, split: str, source, options: GoldOptions) -> tuple[Labelled, dict, list[str] | None]:
    """The split's texts and labels, what report.json records of it, and the label names it declares."""
    table = _load(source, options.read)
    where = f"{path} split {split!r}"
    text_col = find_column(table, options.text_col, TEXT_COLUMNS, "--text-col", where)
    label_col = find_column(table, options.label_col, LABEL_COLUMNS, "--label-col", where)
    names, names_from = options.label_names, "--label-names"
    if names is None and label_col in table.class_names:
        names, names_from = table.class_names[label_col], f"the ClassLabel names of {label_col!r}"
    data, dropped = _labelled(table, where, text_col, label_col, names, names_from, options.multi_label)
    return data, {"split": split, "n": len(data), "text_column": text_col, "label_column": label_col,
                  "label_names": names_from if names is not None else None, "multi_label_dropped": dropped,
                  "separator": table.separator, "header": table.header}, names


def read_corpus(path: str | Path, options: GoldOptions = GoldOptions()) -> Gold:
    """The train and test splits of a gold corpus (see the module doc)."""
    path = Path(path)
    if options.multi_label not in MULTI_LABEL:
        raise UsageError(f"--multi-label must be one of {', '.join(MULTI_LABEL)}, got {options.multi_label!r}")
    fmt, sources = _sources(path)
    train_name, test_name = resolve_splits(sorted(sources), options.train, options.test)
    train, train_info, declared = _read_split(path, train_name, sources[train_name], options)
    if test_name is None:
        rows_train, rows_test = stratified_split(train.emotions, options.seed)
        if not len(rows_test):
            raise UsageError(f"{path}: {len(train)} texts are too few to split off a {TEST_FRACTION:.0%} test split")
        train, test = _subset(train, rows_train), _subset(train, rows_test)
        split = (f"seeded stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} split of {train_name!r} "
                 f"(seed {options.seed}): the corpus has no test split")
        test_info = {**train_info, "split": f"{train_name} ({TEST_FRACTION:.0%})", "n": len(test)}
        train_info.update(split=f"{train_name} ({1 - TEST_FRACTION:.0%})", n=len(train))
    else:
        test, test_info, _ = _read_split(path, test_name, sources[test_name], options)
        split = None
    sample = None
    if options.max_rows is not None:
        train, kept_train = _capped(train, train_info, options.max_rows, options.seed)
        test, kept_test = _capped(test, test_info, options.max_rows, options.seed + 1)
        sample = {"max_rows": options.max_rows, "seed": options.seed, "train": kept_train, "test": kept_test}
    labels = label_order(train.emotions + test.emotions, declared)
    info = {"path": str(path), "format": fmt, "train": train_info, "test": test_info, "split": split,
            "multi_label": options.multi_label, "labels": labels, "sample": sample}
    return Gold(train, test, labels, info)
