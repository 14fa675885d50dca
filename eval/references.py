"""Reference rows that make the gold numbers readable (Tables VI and VII; `report.json` "references").

- `majority`: always predicting the gold test split's largest class (ties: the first in label order), scored as
  every classifier is: its accuracy is that class's share of the test split.
- `gold_size_matched`: the classifier trained on exactly as many gold train texts as the synthetic set has, with
  its class counts (seeded draw without replacement), so the synthetic row is compared at equal size and balance.
- `synthetic_vs_test` and `real_vs_real`: Table VI's metrics of the synthetic set and of a seeded sample of as many
  gold train texts, both against the gold test split: the real-vs-real row is what real data of that size scores.
The full-train `gold_trained` row is Table VII's classic gold row.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from eval.classify import scores, transfer
from eval.data import Labelled
from eval.metrics import gold_similarity
from eval.minimums import fid_warning, needs, similarity_gaps, transfer_gap


def majority(test: Labelled, labels: list[str]) -> dict:
    """The constant prediction of the test split's largest class, scored over the test split's labels."""
    counts = Counter(test.emotions)
    present = [label for label in labels if label in counts]
    top = max(present, key=lambda label: counts[label])  # max keeps the first of equal counts
    return {**scores(test.emotions, [top] * len(test), present), "label": top, "n_train": 0}


def size_matched_rows(train: Labelled, counts: dict[str, int], seed: int = 0) -> tuple[np.ndarray | None, str | None]:
    """Row indices of the gold train split with exactly counts[label] texts of each label (seeded), or why not."""
    rng = np.random.default_rng(seed)
    y = np.array(train.emotions, dtype=object)
    rows = []
    for label, n in counts.items():
        pool = np.flatnonzero(y == label)
        if reason := needs(len(pool), n, f"{label!r} texts in the gold train split for the size-matched row"):
            return None, reason
        rows.append(rng.choice(pool, n, replace=False))
    return np.sort(np.concatenate(rows)), None


def similarity_row(a: np.ndarray, b: np.ndarray, path: str, gaps: dict, seed: int = 0) -> dict:
    """Table VI's metrics of a against b, their sizes, a FID warning when there are fewer texts than dimensions;
    the reasons for the metrics not computed go into `gaps`."""
    gaps.update(similarity_gaps(path, len(a), len(b)))
    row = {**gold_similarity(a, b, seed=seed), "n_a": len(a), "n_b": len(b)}
    if warning := fid_warning(len(a), len(b), a.shape[1]):
        row["warning"] = warning
    return row


def transfer_row(x_train, train: Labelled, x_test, test: Labelled, labels: list[str], path: str, gaps: dict,
                 seed: int = 0, cache_dir=None) -> dict | None:
    """`transfer` of a classifier trained on `train` (its result kept in `cache_dir`, if given), or None (the
    reason in `gaps`) with too few emotions."""
    if reason := transfer_gap(train.emotions, "the training set"):
        gaps[path] = reason
        return None
    return transfer(x_train, train.emotions, x_test, test.emotions, seed=seed, labels=labels, cache_dir=cache_dir)


def reference_cells(x_syn, synthetic: Labelled, x_train, train: Labelled, x_test, test: Labelled,
                    labels: list[str], seed: int = 0) -> dict[str, Callable[[dict], dict | None]]:
    """The reference rows as independent pieces, name -> piece(gaps): each computes its row (None, with the reason
    in `gaps`, when it cannot), so a caller can run them side by side (eval.parallel)."""
    test_labels = [label for label in labels if label in set(test.emotions)]
    counts = Counter(synthetic.emotions)

    def size_matched(gaps: dict) -> dict | None:
        rows, reason = size_matched_rows(train, {label: counts[label] for label in labels if label in counts}, seed)
        if reason:
            gaps["references.gold_size_matched"] = reason
            return None
        matched = Labelled([train.texts[i] for i in rows], [train.emotions[i] for i in rows])
        return transfer_row(x_train[rows], matched, x_test, test, test_labels, "references.gold_size_matched",
                            gaps, seed)

    def real_vs_real(gaps: dict) -> dict | None:
        if reason := needs(len(train), len(synthetic), "gold train texts for the real-vs-real row"):
            gaps["references.real_vs_real"] = reason
            return None
        sample = np.sort(np.random.default_rng(seed).choice(len(train), len(synthetic), replace=False))
        return similarity_row(x_train[sample], x_test, "references.real_vs_real", gaps, seed)

    return {"majority": lambda gaps: majority(test, labels), "gold_size_matched": size_matched,
            "synthetic_vs_test": lambda gaps: similarity_row(x_syn, x_test, "references.synthetic_vs_test", gaps,
                                                             seed),
            "real_vs_real": real_vs_real}


def reference_rows(x_syn, synthetic: Labelled, x_train, train: Labelled, x_test, test: Labelled, labels: list[str],
                   gaps: dict, seed: int = 0) -> dict:
    """report["references"]: majority, gold_size_matched, synthetic_vs_test, real_vs_real (see the module doc),
    one after the other."""
    cells = reference_cells(x_syn, synthetic, x_train, train, x_test, test, labels, seed)
    return {name: cell(gaps) for name, cell in cells.items()}
