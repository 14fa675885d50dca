"""Warnings about classifier rows that measure nothing (report["warnings"], `warning:` lines on stderr, report.md):
- a classifier that predicts one class for every test text (its scores are that class's share, whatever it
  learned): Table V's hold-out and every trained row of Table VII;
- a gold reference row (the full gold train split, or its size-matched sample) less accurate than always predicting
  the test split's largest class: too few or too unbalanced gold texts to train on, so the row is no reference.
"""
from __future__ import annotations

import numpy as np

TRAINED = ("classification", "tstr", "gold_trained", "references.gold_size_matched")
REFERENCES = ("gold_trained", "references.gold_size_matched")


def _row(report: dict, path: str) -> dict | None:
    row = report
    for key in path.split("."):
        row = row.get(key) if isinstance(row, dict) else None
    return row


def predicted(confusion: dict) -> list[str]:
    """The labels a confusion matrix's classifier predicted at least once."""
    counts = np.asarray(confusion["matrix"]).sum(axis=0)
    return [label for label, n in zip(confusion["labels"], counts) if n]


def row_warnings(report: dict) -> list[str]:
    """The report's degenerate rows, one sentence each (module doc)."""
    out = []
    for path in TRAINED:
        row = _row(report, path)
        if row is not None and "confusion" in row and len(classes := predicted(row["confusion"])) == 1:
            out.append(f"`{path}`: the classifier predicts {classes[0]!r} for all {row.get('n_test')} test texts; "
                       "its scores are that class's share, not what it learned")
    majority = _row(report, "references.majority")
    for path in REFERENCES:
        row = _row(report, path)
        if majority is not None and row is not None and row["accuracy"] < majority["accuracy"]:
            out.append(f"`{path}`: accuracy {row['accuracy']:.3f} is below the majority-class row's "
                       f"{majority['accuracy']:.3f} (always {majority['label']!r}): {row['n_train']} training texts "
                       "are too few to learn from, and the row is no reference")
    return out
