"""eval.classify's LightGBM settings (fewer bins, half the features per tree, early stopping on a held-out 10 %)
against LightGBM's defaults on a fixed slice of CARER, and the classifier results kept by content hash and reused
across reports."""
import hashlib
import re

import numpy as np
import pytest
from lightgbm import LGBMClassifier

from eval import classify, report
from eval.classify import _validation_split, transfer
from eval.corpus import GoldOptions, read_corpus
from tests.eval.test_report_gold import CARER, HashEmbedder, synthetic, write_csv

DIM = 384
WORD = re.compile(r"[a-z']+")


def hashed_words(texts: list[str]) -> np.ndarray:
    """Dense 384-d bag of hashed words, unit rows: a cheap deterministic stand-in for MiniLM with real signal."""
    x = np.zeros((len(texts), DIM), np.float32)
    for i, text in enumerate(texts):
        for word in WORD.findall(text.lower()):
            h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            x[i, h % DIM] += 1.0 if (h >> 32) & 1 else -1.0
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


@pytest.fixture(scope="module")
def carer_slice(shared_data):
    gold = read_corpus(shared_data / "carer_emotion", GoldOptions())
    train, test = slice(0, 3000), slice(0, 1000)
    return (hashed_words(gold.train.texts[train]), gold.train.emotions[train],
            hashed_words(gold.test.texts[test]), gold.test.emotions[test], gold.labels)


def test_the_settings_score_as_lightgbm_defaults_on_a_fixed_carer_slice(carer_slice):
    x_train, y_train, x_test, y_test, labels = carer_slice
    ours = transfer(x_train, y_train, x_test, y_test, seed=0, labels=labels)
    defaults = LGBMClassifier(random_state=0, deterministic=True, n_jobs=1, verbose=-1)
    before = classify.scores(y_test, defaults.fit(x_train, np.array(y_train, dtype=object)).predict(x_test), labels)
    assert ours["n_train"] == 3000 and ours["n_test"] == 1000
    assert ours["accuracy"] > 0.45  # above the majority class (joy, 0.35): the comparison means something
    assert ours["accuracy"] >= before["accuracy"] - 0.02
    assert ours["macro_f1"] >= before["macro_f1"] - 0.03
    assert ours == transfer(x_train, y_train, x_test, y_test, seed=0, labels=labels)  # deterministic


def test_early_stopping_needs_a_held_out_text_of_every_class():
    y = np.array(["a"] * 30 + ["b"] * 30, dtype=object)
    fit, held = _validation_split(y, 0)
    assert len(held) == 6 and set(y[held]) == {"a", "b"} and not set(fit) & set(held)
    assert _validation_split(np.array(["a"] * 30 + ["b"], dtype=object), 0) is None  # a class of one text
    assert _validation_split(np.array(["a", "b", "c"] * 6, dtype=object), 0) is None  # 1 held-out text, 3 classes


def test_a_tiny_training_set_still_trains(monkeypatch):
    x = np.eye(2, 8, dtype=np.float32)[[0, 0, 1, 1]]
    assert transfer(x, ["a", "a", "b", "b"], x, ["a", "a", "b", "b"])["n_train"] == 4


def test_results_are_kept_by_content_and_found_again(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    y = ["a", "b"] * 40
    x = (np.eye(2, 8)[[0, 1] * 40] + 0.1 * rng.normal(size=(80, 8))).astype(np.float32)
    first = transfer(x, y, x, y, cache_dir=tmp_path)
    assert first["accuracy"] == 1.0 and len(list(tmp_path.glob("transfer-*.json"))) == 1

    def untrained(*args):
        raise AssertionError("trained again")

    monkeypatch.setattr(classify, "_fit_predict", untrained)
    assert transfer(x, y, x, y, cache_dir=tmp_path) == first
    with pytest.raises(AssertionError, match="trained again"):  # other labels, seed or vectors: another entry
        transfer(x, y, x, y, seed=1, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="trained again"):
        transfer(x + 0.01, y, x, y, cache_dir=tmp_path)
    next(tmp_path.glob("transfer-*.json")).write_bytes(b"{not json")
    with pytest.raises(AssertionError, match="trained again"):  # a broken entry is computed again
        transfer(x, y, x, y, cache_dir=tmp_path)


def test_two_reports_against_one_gold_corpus_train_the_gold_classifier_once(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "Embedder", HashEmbedder)
    root = tmp_path / "gold"
    root.mkdir()
    write_csv(root / "train.csv", ["sentence", "label"], [(f"gold {e} {i}", e) for i in range(20) for e in CARER])
    write_csv(root / "test.csv", ["sentence", "label"], [(f"test {e} {i}", e) for e in CARER for i in range(6)])
    trained = []
    fit_predict = classify._fit_predict
    monkeypatch.setattr(classify, "_fit_predict", lambda x, y, *a: trained.append(len(y)) or fit_predict(x, y, *a))
    cache = tmp_path / "cache"
    for name in ("one", "two"):
        data = synthetic(tmp_path / f"{name}.jsonl", 10 if name == "one" else 12, CARER)
        assert report.main([str(data), "--gold", str(root), "--out", str(tmp_path / name),
                            "--cache-dir", str(cache)]) == 0
    n_gold = 20 * len(CARER)
    assert trained.count(n_gold) == 1  # the gold-trained row: trained by the first report, found by the second
    assert len(list((cache / "classifiers").glob("transfer-*.json"))) == 1
