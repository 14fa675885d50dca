"""LightGBM emotion classifiers on sentence embeddings: the paper's Table V (80/20 hold-out inside the synthetic
set: per-class and macro precision/recall/F1, confusion matrix) and Table VII (train on one set, test on the
gold test split: accuracy, support-weighted precision/recall/F1 and macro-F1).

Fixed seeds throughout: the stratified split and LightGBM (deterministic mode) use `seed`. LightGBM's defaults
otherwise (100 rounds, 31 leaves), on one thread: its OpenMP workers spin-wait, and on a shared 2-core machine two
threads ran 6-8x slower than one.
"""
from __future__ import annotations

import math

import numpy as np
from lightgbm import LGBMClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from common.errors import UsageError

TEST_SIZE = 0.2


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    model = LGBMClassifier(random_state=seed, deterministic=True, n_jobs=1, verbose=-1)
    return model.fit(x_train, y_train).predict(x_test)


def holdout_minimum(n_classes: int) -> int:
    """The fewest texts a stratified split over n_classes takes: both sides need one text of every class (the
    sides only grow with n, so every larger n works too)."""
    n = 2 * n_classes
    while math.ceil(TEST_SIZE * n) < n_classes or n - math.ceil(TEST_SIZE * n) < n_classes:
        n += 1
    return n


def check_holdout(n: int, n_classes: int) -> None:
    """Both sides of the stratified split need at least one text of every class."""
    if n < holdout_minimum(n_classes):
        raise UsageError(f"{n} texts are too few for a stratified {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} split "
                         f"over {n_classes} emotions")


def holdout(x: np.ndarray, emotions: list[str], names: list[str], seed: int = 0) -> dict:
    """Table V: stratified 80/20 split, LightGBM on the 80 %, scores on the 20 %."""
    y = np.array(emotions, dtype=object)
    check_holdout(len(y), len(names))
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=seed)
    pred = _fit_predict(x_tr, y_tr, x_te, seed)
    p, r, f, s = precision_recall_fscore_support(y_te, pred, labels=names, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_te, pred, labels=names, average="macro", zero_division=0)
    _, _, wf, _ = precision_recall_fscore_support(y_te, pred, labels=names, average="weighted", zero_division=0)
    return {
        "precision": float(mp), "recall": float(mr), "f1": float(mf), "weighted_f1": float(wf),
        "accuracy": float(accuracy_score(y_te, pred)),
        "per_class": {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                             "support": int(s[i])} for i, name in enumerate(names)},
        "confusion": {"labels": names, "matrix": confusion_matrix(y_te, pred, labels=names).tolist()},
        "n_train": len(y_tr), "n_test": len(y_te),
    }


def scores(y_test: list[str], pred, labels: list[str] | None = None) -> dict:
    """Accuracy, support-weighted precision/recall/F1 and macro-F1 over `labels` (default: those of y_test, in
    order of appearance): a label of the set that is never predicted counts with F1 0."""
    labels = labels or list(dict.fromkeys(y_test))
    p, r, f, _ = precision_recall_fscore_support(y_test, pred, labels=labels, average="weighted", zero_division=0)
    _, _, mf, _ = precision_recall_fscore_support(y_test, pred, labels=labels, average="macro", zero_division=0)
    return {"accuracy": float(accuracy_score(y_test, pred)), "precision": float(p), "recall": float(r),
            "f1": float(f), "macro_f1": float(mf), "n_test": len(y_test)}


def transfer(x_train: np.ndarray, y_train: list[str], x_test: np.ndarray, y_test: list[str], seed: int = 0,
             labels: list[str] | None = None) -> dict:
    """Table VII: LightGBM trained on one set, tested on another: accuracy, weighted precision/recall/F1 and
    macro-F1 (`scores`)."""
    pred = _fit_predict(x_train, np.array(y_train, dtype=object), x_test, seed)
    return {**scores(y_test, pred, labels), "n_train": len(y_train)}
