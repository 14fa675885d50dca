"""The fewest texts each metric of `eval.report` needs. A metric below its minimum is not computed: report.json
holds `null` for it and `not_computed["<its path>"]` the reason ("needs at least N ..."); report.md says
"not computed: needs at least N ...". The report itself needs 2 emotions (with fewer there is nothing to compare).

| metric | needs at least |
| --- | --- |
| MCD (Table IV) | 2 texts of the emotion (the "all texts" row: always there) |
| CE (Table IV) | 2 texts of the emotion; from fewer than k = 5 texts it is at most ln n |
| CD (Table IV) | 2 emotions |
| Table V (hold-out) | 2 texts of every emotion, and `holdout_minimum(C)` texts for C emotions (5C - 4: 31 for 7) |
| FID (Table VI) | 2 texts on each side; below 384 (the embedding dimension) it comes with a warning |
| PRD-F8/F1/8, KL, HC (Table VI) | 20 texts on each side (k = 20 clusters) |
| Table VII (each training set) | 2 emotions |
"""
from __future__ import annotations

from eval.classify import TEST_SIZE, holdout_minimum
from eval.metrics import CE_MIN, FID_MIN, HISTOGRAM_METRICS, MCD_MIN, PRD_MIN

TRANSFER_MIN = 2  # emotions a classifier is trained on


def needs(have: int, minimum: int, what: str) -> str | None:
    return f"needs at least {minimum} {what} (has {have})" if have < minimum else None


def diversity_gaps(counts: dict[str, int]) -> dict[str, str]:
    """Reasons for the per-emotion Table IV cells below their minimum (all texts together always have 2)."""
    gaps = {}
    for e, n in counts.items():
        for key, minimum in (("mcd", MCD_MIN), ("ce", CE_MIN)):
            if reason := needs(n, minimum, f"texts of {e!r}"):
                gaps[f"diversity.{e}.{key}"] = reason
    return gaps


def holdout_gap(counts: dict[str, int]) -> str | None:
    """Why the stratified hold-out (Table V) can't be run on texts with these emotion counts, if it can't."""
    fewest = min(counts, key=counts.get)
    split = f"{1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} split"
    if counts[fewest] < 2:
        return f"needs at least 2 texts of every emotion for a stratified {split} (has {counts[fewest]} of {fewest!r})"
    return (needs(sum(counts.values()), holdout_minimum(len(counts)),
                     f"texts for a stratified {split} over {len(counts)} emotions"))


def transfer_gap(emotions: list[str], what: str) -> str | None:
    return needs(len(set(emotions)), TRANSFER_MIN, f"emotions in {what} to train a classifier")


def similarity_gaps(path: str, n_a: int, n_b: int) -> dict[str, str]:
    """Reasons for the Table VI metrics of a row comparing n_a with n_b texts, below their minimum."""
    m = min(n_a, n_b)
    gaps = {f"{path}.fid": reason} if (reason := needs(m, FID_MIN, "texts on each side")) else {}
    if reason := needs(m, PRD_MIN, "texts on each side (one per cluster)"):
        gaps.update({f"{path}.{key}": reason for key in HISTOGRAM_METRICS})
    return gaps


def fid_warning(n_a: int, n_b: int, dim: int) -> str | None:
    m = min(n_a, n_b)
    if m >= dim or m < FID_MIN:
        return None
    return (f"FID from {m} texts in {dim} dimensions: with fewer texts than dimensions the covariance is singular "
            "and FID is biased upwards; compare it only with rows of the same size (the real-vs-real row)")
