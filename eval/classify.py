"""LightGBM emotion classifiers on sentence embeddings: the paper's Table V (80/20 hold-out inside the synthetic
set: per-class and macro precision/recall/F1, confusion matrix) and Table VII (train on one set, test on the
gold test split: accuracy, support-weighted precision/recall/F1 and macro-F1).

Fixed seeds throughout: the stratified split and LightGBM (deterministic mode) use `seed`. LightGBM (`PARAMS`):
31 leaves and learning rate 0.1 as its defaults; 63 histogram bins instead of 255 and half the 384 features per tree
(`colsample_bytree`), which cut training on CARER's 16,000 texts from about 60 s to 25 s; up to 300 rounds, stopped
after 20 without improvement on a stratified 10 % of the training set held out for it (`VALID_SIZE`; a training set
too small to hold out one text of every class trains 100 rounds on all of it, LightGBM's default). Accuracy on the
CARER test split went from 0.6735 (defaults, 100 rounds) to 0.6865 (docs/benchmarks.md; 0.6775 and 0.6795 on the
embeddings computed at batch 32 since). One thread: its OpenMP workers spin-wait, and on a shared 2-core machine
two threads ran 6-8x slower than one.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import lightgbm
import numpy as np
import orjson
from lightgbm import LGBMClassifier, early_stopping
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from common.errors import UsageError
from common.files import write_json
from common.hashing import canonical

TEST_SIZE = 0.2
VALID_SIZE = 0.1  # of the training set, for early stopping
PARAMS = {"n_estimators": 300, "max_bin": 63, "colsample_bytree": 0.5, "n_jobs": 1, "deterministic": True,
          "verbose": -1}
PATIENCE = 20  # rounds without improvement on the held-out part before training stops
FALLBACK_ROUNDS = 100  # without a held-out part
RESULT_FORMAT = 2  # what a cached `transfer` result holds (2: its confusion matrix too), part of the cache key


def _validation_split(y: np.ndarray, seed: int):
    """Stratified (fit, held-out) row indices of the training set, or None when some class has fewer than 2 texts
    or the held-out part could not hold one text of every class."""
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2 or math.floor(VALID_SIZE * len(y)) < len(classes):
        return None
    return train_test_split(np.arange(len(y)), test_size=VALID_SIZE, stratify=y, random_state=seed)


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    classes, codes = np.unique(y_train, return_inverse=True)  # LightGBM gets class codes, we give back labels
    split = _validation_split(y_train, seed)
    if split is None:
        model = LGBMClassifier(**{**PARAMS, "n_estimators": FALLBACK_ROUNDS}, random_state=seed)
        return classes[model.fit(x_train, codes).predict(x_test)]
    fit, held = split
    model = LGBMClassifier(**PARAMS, random_state=seed)
    model.fit(x_train[fit], codes[fit], eval_X=x_train[held], eval_y=codes[held],
              callbacks=[early_stopping(PATIENCE, verbose=False)])
    return classes[model.predict(x_test)]


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
        "confusion": confusion(y_te, pred, names),
        "n_train": len(y_tr), "n_test": len(y_te),
    }


def confusion(y_test, pred, labels: list[str]) -> dict:
    """{"labels", "matrix"} (rows: true label, columns: predicted) over `labels` and, after them in sorted order,
    any label predicted that is not among them (a class of the training set the test set lacks)."""
    labels = list(labels) + sorted(set(pred) - set(labels))
    return {"labels": labels, "matrix": confusion_matrix(y_test, pred, labels=labels).tolist()}


def scores(y_test: list[str], pred, labels: list[str] | None = None) -> dict:
    """Accuracy, support-weighted precision/recall/F1 and macro-F1 over `labels` (default: those of y_test, in
    order of appearance): a label of the set that is never predicted counts with F1 0."""
    labels = labels or list(dict.fromkeys(y_test))
    p, r, f, _ = precision_recall_fscore_support(y_test, pred, labels=labels, average="weighted", zero_division=0)
    _, _, mf, _ = precision_recall_fscore_support(y_test, pred, labels=labels, average="macro", zero_division=0)
    return {"accuracy": float(accuracy_score(y_test, pred)), "precision": float(p), "recall": float(r),
            "f1": float(f), "macro_f1": float(mf), "n_test": len(y_test)}


def transfer(x_train: np.ndarray, y_train: list[str], x_test: np.ndarray, y_test: list[str], seed: int = 0,
             labels: list[str] | None = None, cache_dir: Path | None = None) -> dict:
    """Table VII: LightGBM trained on one set, tested on another: accuracy, weighted precision/recall/F1 and
    macro-F1 (`scores`), and the confusion matrix over `labels` (`confusion`). With `cache_dir`, the result is kept
    there under the hash of everything it depends on (both sets, labels, seed, settings, LightGBM's version) and
    found again by the next report on the same sets."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"transfer-{_key(x_train, y_train, x_test, y_test, seed, labels)}.json"
        try:
            return orjson.loads(path.read_bytes())
        except (OSError, ValueError):  # absent or unreadable: computed again and rewritten
            pass
    pred = _fit_predict(x_train, np.array(y_train, dtype=object), x_test, seed)
    result = {**scores(y_test, pred, labels), "n_train": len(y_train),
              "confusion": confusion(y_test, pred, labels or list(dict.fromkeys(y_test)))}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, result)
    return result


def _key(x_train: np.ndarray, y_train: list[str], x_test: np.ndarray, y_test: list[str], seed: int,
         labels: list[str] | None) -> str:
    h = hashlib.sha256(canonical({"y_train": list(y_train), "y_test": list(y_test), "labels": labels, "seed": seed,
                                  "params": PARAMS, "patience": PATIENCE, "valid": VALID_SIZE,
                                  "fallback": FALLBACK_ROUNDS, "lightgbm": lightgbm.__version__,
                                  "result": RESULT_FORMAT,
                                  "shapes": [x_train.shape, x_test.shape, x_train.dtype.str, x_test.dtype.str]}))
    h.update(np.ascontiguousarray(x_train).data)
    h.update(np.ascontiguousarray(x_test).data)
    return h.hexdigest()[:40]
