"""eval.references and eval.minimums: the reference rows' numbers, and what each metric needs."""
from collections import Counter

import numpy as np
import pytest

from eval.classify import check_holdout, holdout_minimum
from eval.data import Labelled
from eval.minimums import diversity_gaps, fid_warning, holdout_gap, similarity_gaps
from eval.references import majority, reference_rows, size_matched_rows

LABELS = ["sadness", "joy", "love", "anger"]


def labelled(counts: dict[str, int], prefix: str = "t") -> Labelled:
    emotions = [e for e, n in counts.items() for _ in range(n)]
    return Labelled([f"{prefix}{i}" for i in range(len(emotions))], emotions)


def embed(data: Labelled, seed: int, dim: int = 8) -> np.ndarray:
    """Class-dependent toy embeddings: one-hot of the label plus noise."""
    rng = np.random.default_rng(seed)
    x = np.eye(len(LABELS), dim)[[LABELS.index(e) for e in data.emotions]] + 0.5 * rng.normal(size=(len(data), dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_majority_is_the_largest_class_share_of_the_test_split():
    test = labelled({"sadness": 5, "joy": 17, "love": 8})
    m = majority(test, LABELS)
    p = 17 / 30
    assert m["label"] == "joy" and m["accuracy"] == pytest.approx(p) and m["recall"] == pytest.approx(p)
    f1_joy = 2 * p / (1 + p)
    assert m["macro_f1"] == pytest.approx(f1_joy / 3)  # over the 3 labels the test split has
    assert m["f1"] == pytest.approx(p * f1_joy) and m["n_train"] == 0
    assert majority(labelled({"love": 3, "sadness": 3}), LABELS)["label"] == "sadness"  # a tie: label order


def test_size_matched_rows_have_exactly_the_synthetic_counts():
    train = labelled({"sadness": 50, "joy": 80, "love": 20, "anger": 10})
    want = {"sadness": 7, "joy": 7, "love": 20}
    rows, reason = size_matched_rows(train, want, seed=1)
    assert reason is None and len(rows) == 34 and len(set(rows)) == 34
    assert Counter(train.emotions[i] for i in rows) == want
    again, _ = size_matched_rows(train, want, seed=1)
    other, _ = size_matched_rows(train, want, seed=2)
    assert (again == rows).all() and not (other == rows).all()
    rows, reason = size_matched_rows(train, {"anger": 11}, seed=1)
    assert rows is None
    assert reason == "needs at least 11 'anger' texts in the gold train split for the size-matched row (has 10)"


def test_reference_rows_on_toy_embeddings():
    train = labelled({"sadness": 60, "joy": 60, "love": 30}, "g")
    test = labelled({"sadness": 10, "joy": 25, "love": 5}, "h")
    synthetic = labelled({"sadness": 12, "joy": 12, "love": 6}, "s")
    gaps = {}
    refs = reference_rows(embed(synthetic, 0), synthetic, embed(train, 1), train, embed(test, 2), test, LABELS, gaps)
    assert refs["majority"]["accuracy"] == pytest.approx(25 / 40) and refs["majority"]["label"] == "joy"
    assert refs["gold_size_matched"]["n_train"] == 30 and refs["gold_size_matched"]["n_test"] == 40
    assert refs["real_vs_real"]["n_a"] == 30 and refs["real_vs_real"]["n_b"] == 40
    assert refs["synthetic_vs_test"]["n_a"] == 30 and refs["synthetic_vs_test"]["fid"] > 0
    assert all(0 <= refs["real_vs_real"][k] <= 1 for k in ("prd_f8", "hc")) and gaps == {}
    few = labelled({"sadness": 3, "joy": 3}, "f")
    refs = reference_rows(embed(few, 3), few, embed(train, 1), train, embed(test, 2), test, LABELS, gaps)
    assert refs["real_vs_real"]["prd_f8"] is None and refs["real_vs_real"]["fid"] is not None
    assert gaps["references.real_vs_real.prd_f8"] == "needs at least 20 texts on each side (one per cluster) (has 6)"
    assert refs["real_vs_real"]["warning"].startswith("FID from 6 texts in 8 dimensions")


def test_holdout_minimum_and_the_reasons():
    assert [holdout_minimum(c) for c in (2, 3, 6, 7)] == [6, 11, 26, 31]
    for c in (2, 3, 6, 7):
        check_holdout(holdout_minimum(c), c)
        with pytest.raises(Exception, match="too few"):
            check_holdout(holdout_minimum(c) - 1, c)
    seven = dict.fromkeys(["joy", "anger", "sadness", "pleasure", "surprise", "fear", "neutral"], 2)
    assert holdout_gap(seven) == "needs at least 31 texts for a stratified 80%/20% split over 7 emotions (has 14)"
    assert holdout_gap({**seven, "joy": 1}) == ("needs at least 2 texts of every emotion for a stratified 80%/20% "
                                                "split (has 1 of 'joy')")
    assert holdout_gap(dict.fromkeys(seven, 5)) is None


def test_diversity_and_similarity_gaps_and_the_fid_warning():
    gaps = diversity_gaps({"joy": 1, "fear": 2, "anger": 5})
    assert gaps == {"diversity.joy.mcd": "needs at least 2 texts of 'joy' (has 1)",
                    "diversity.joy.ce": "needs at least 2 texts of 'joy' (has 1)"}
    assert diversity_gaps({"joy": 1, "fear": 1}) == {f"diversity.{e}.{m}": f"needs at least 2 texts of {e!r} (has 1)"
                                                     for e in ("joy", "fear") for m in ("mcd", "ce")}
    assert set(similarity_gaps("gold", 1, 500)) == {"gold.fid", "gold.prd_f8", "gold.prd_f1_8", "gold.kl", "gold.hc"}
    assert set(similarity_gaps("gold", 19, 500)) == {"gold.prd_f8", "gold.prd_f1_8", "gold.kl", "gold.hc"}
    assert similarity_gaps("gold", 20, 20) == {}
    assert fid_warning(48, 2000, 384).startswith("FID from 48 texts in 384 dimensions")
    assert fid_warning(384, 2000, 384) is None and fid_warning(1, 2000, 384) is None
