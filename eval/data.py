"""Labelled text sets and their validation: the set under evaluation (any file `common.tables` reads: the JSONL,
CSV or parquet that `llm.generate` writes, a MELD-style dialogue CSV, ...; a gold corpus: eval.corpus).

A record is one row with a non-empty text and label, in the columns named (case-insensitively) one of
TEXT_COLUMNS and LABEL_COLUMNS (`text` and `emotion` in llm.generate's results, `Utterance` and `Emotion` in a
MELD-style CSV); other columns are kept in the table (eval.view shows them) and ignored by the metrics.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UsageError
from common.tables import ReadOptions, Table, find_column, read_file

TEXT_COLUMNS = ("text", "sentence", "utterance")
LABEL_COLUMNS = ("label", "emotion", "labels")
DATA_HELP = ("the texts: JSONL, CSV/TSV or parquet (llm.generate's results in any format, a MELD-style dialogue CSV, "
             "...) with a text/sentence/utterance and a label/emotion/labels column")


@dataclass(frozen=True)
class Labelled:
    texts: list[str]
    emotions: list[str]

    @property
    def names(self) -> list[str]:
        """The distinct emotions, in order of first appearance."""
        return list(dict.fromkeys(self.emotions))

    def codes(self, names: list[str]) -> np.ndarray:
        index = {name: i for i, name in enumerate(names)}
        return np.array([index[e] for e in self.emotions], dtype=np.int32)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Source:
    """A labelled file as read: its rows (`table`), the text and label columns, and its texts and labels."""
    path: Path
    table: Table
    text_col: str
    label_col: str
    data: Labelled


def read_labelled(path: str | Path, options: ReadOptions = ReadOptions()) -> Source:
    """The texts and labels of a file `common.tables` reads, in columns named (case-insensitively) one of
    TEXT_COLUMNS and LABEL_COLUMNS; UsageError on a missing column, an empty text or label, or no rows."""
    path = Path(path)
    table = read_file(path, options)
    if not table.rows:
        raise UsageError(f"{path}: no records")
    text_col = find_column(table, None, TEXT_COLUMNS, None, str(path))
    label_col = find_column(table, None, LABEL_COLUMNS, None, str(path))
    texts, emotions = [], []
    for n, (text, label) in enumerate(zip(table.columns[text_col], table.columns[label_col]), 1):
        for name, value in ((text_col, text), (label_col, label)):
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{path} row {n}: {name!r} is missing or not a non-empty string")
        texts.append(text)
        emotions.append(label.strip())
    return Source(path, table, text_col, label_col, Labelled(texts, emotions))


def check_classes(data: Labelled, what: str, min_per_class: int = 2) -> None:
    """At least 2 emotions, each with at least `min_per_class` texts."""
    names = data.names
    if len(names) < 2:
        raise UsageError(f"{what} has {len(names)} emotion ({', '.join(names)}); at least 2 are needed")
    counts = dict(zip(*np.unique(np.array(data.emotions), return_counts=True)))
    small = [f"{e} ({counts[e]})" for e in names if counts[e] < min_per_class]
    if small:
        raise UsageError(f"{what}: every emotion needs at least {min_per_class} texts; too few: {', '.join(small)}")


def check_within(data: Labelled, labels: list[str], what: str) -> None:
    """Every emotion of `data` is one of the gold `labels`."""
    known = set(labels)
    unknown = [e for e in data.names if e not in known]
    if unknown:
        hint = ("the gold labels look like ids: name them with --label-names" if all(s.isdigit() for s in labels)
                else "map them with --label-map LABEL=GOLD_LABEL or LABEL=drop")
        raise UsageError(f"{what} has emotions not in the gold label set ({', '.join(labels)}): "
                         f"{', '.join(unknown)}; {hint}")
