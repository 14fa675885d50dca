"""Labelled text sets and their validation: the JSONL under evaluation and a gold `text;label` directory (any other
gold corpus: eval.corpus).

A record is one JSONL line with at least a non-empty string `text` and `emotion` (other fields are ignored;
blank lines are skipped). A gold directory holds `train.txt` and `test.txt` (`val.txt` is not used), one
`text;label` per line, split at the last `;`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UsageError
from common.jsonl import read_objects, read_text

GOLD_SPLITS = ("train", "test")


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


def read_jsonl(path: str | Path) -> Labelled:
    """The records of a JSONL file; raises UsageError on an unreadable line, a missing field or an empty file."""
    path = Path(path)
    texts, emotions = [], []
    for n, rec in read_objects(path):
        for field in ("text", "emotion"):
            if not isinstance(rec.get(field), str) or not rec[field].strip():
                raise UsageError(f"{path}:{n}: field {field!r} is missing or not a non-empty string")
        texts.append(rec["text"])
        emotions.append(rec["emotion"].strip())
    if not texts:
        raise UsageError(f"{path}: no records")
    return Labelled(texts, emotions)


def read_gold_split(path: Path) -> Labelled:
    texts, emotions = [], []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition(";")
        if not sep or not text.strip() or not label.strip():
            raise UsageError(f"{path}:{n}: expected 'text;label'")
        texts.append(text)
        emotions.append(label.strip())
    if not texts:
        raise UsageError(f"{path}: no lines")
    return Labelled(texts, emotions)


def read_gold(directory: str | Path) -> dict[str, Labelled]:
    """{"train": ..., "test": ...} of a gold directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"gold directory {directory} does not exist")
    return {split: read_gold_split(directory / f"{split}.txt") for split in GOLD_SPLITS}


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
