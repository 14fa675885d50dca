"""eval.classify: the LightGBM hold-out (Table V) and train-on-one-test-on-another (Table VII)."""
import numpy as np
import pytest

from eval.classify import check_holdout, holdout, transfer
from common.errors import UsageError

NAMES = ["joy", "fear", "anger"]


def sets(seed, n=40, noise=0.1):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n)
    x = np.eye(3, 8)[y] + noise * rng.normal(size=(3 * n, 8))
    return x.astype(np.float32), [NAMES[i] for i in y]


def test_holdout_on_separable_classes_is_perfect_and_deterministic():
    x, y = sets(0)
    r = holdout(x, y, NAMES, seed=0)
    assert r["n_train"] == 96 and r["n_test"] == 24
    assert r["precision"] == r["recall"] == r["f1"] == r["accuracy"] == 1.0
    assert r["confusion"]["matrix"] == [[8, 0, 0], [0, 8, 0], [0, 0, 8]]
    assert r == holdout(x, y, NAMES, seed=0)


def test_holdout_reports_confusions():
    x, y = sets(1, noise=3.0)
    r = holdout(x, y, NAMES)
    assert r["accuracy"] < 0.9
    assert r["per_class"]["fear"]["support"] == 8 and sum(map(sum, r["confusion"]["matrix"])) == 24


def test_transfer_scores_the_other_set():
    x, y = sets(2)
    xt, yt = sets(3)
    assert transfer(x, y, xt, yt)["accuracy"] == 1.0
    flipped = transfer(x, y, xt, yt[::-1])
    assert flipped["accuracy"] < 0.5 and flipped["n_test"] == 120


def test_too_small_for_the_split():
    check_holdout(10, 2)
    with pytest.raises(UsageError, match="too few for a stratified 80%/20% split over 3 emotions"):
        check_holdout(9, 3)
