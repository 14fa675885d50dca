"""eval.erc: features with context, F1 and the paired permutation test, and the CLI on small slices of MELD."""
import csv

import numpy as np
import orjson
import pytest
from sklearn.metrics import f1_score

from eval.erc import f1_scores, features, main, permutation_test, subsample
from common.cli import run
from model.dialogue.corpus import benchmark_labels, read_split

MELD = benchmark_labels("meld")


def fake_embedder(texts):
    """Deterministic 4-d 'embeddings': the text's length in the first coordinate."""
    return np.array([[len(t), 1.0, 0.0, 0.0] for t in texts], np.float32)


def test_features_concatenate_the_mean_of_previous_utterances():
    dialogues = [{"id": "a", "turns": [{"text": "x", "emotion": "joy"}, {"text": "xxx", "emotion": "fear"},
                                       {"text": "xxxxx", "emotion": "joy"}]},
                 {"id": "b", "turns": [{"text": "xx", "emotion": "anger"}]}]
    x, emotions, dialogue_of = features(dialogues, fake_embedder, context=1)
    assert x.shape == (4, 8) and emotions == ["joy", "fear", "joy", "anger"]
    assert dialogue_of.tolist() == [0, 0, 0, 1]
    assert x[:, 4].tolist() == [0, 1, 3, 0]  # previous utterance's length; none at a dialogue's start
    x2, _, _ = features(dialogues, fake_embedder, context=2)
    assert x2[2, 4] == 2.0  # mean of lengths 1 and 3


def test_f1_scores_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    pred = np.where(rng.random((3, 300)) < 0.6, y, rng.integers(0, 5, (3, 300)))
    per_class, weighted = f1_scores(y, pred, 5)
    for s in range(3):
        assert np.allclose(per_class[s], f1_score(y, pred[s], labels=range(5), average=None, zero_division=0))
        assert np.isclose(weighted[s], f1_score(y, pred[s], average="weighted", zero_division=0))


def test_permutation_test_p_values():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    noisy = np.where(rng.random((2, 400)) < 0.4, y, rng.integers(0, 3, (2, 400)))
    better = np.where(rng.random((2, 400)) < 0.8, y, rng.integers(0, 3, (2, 400)))
    assert permutation_test(y, noisy, noisy, 3, rounds=200) == (0.0, 1.0)
    diff, p = permutation_test(y, noisy, better, 3, rounds=200)
    assert diff > 0.2 and p == 1 / 201


def test_subsample_is_per_dialogue_and_seeded():
    d = np.repeat(np.arange(200), 3)
    m = subsample(d, 4, 0)
    assert (m.reshape(200, 3) == m.reshape(200, 3)[:, :1]).all() and 0.8 < m.mean() < 0.97
    assert (subsample(d, 4, 0) == m).all() and not (subsample(d, 5, 0) == m).all()


@pytest.fixture(scope="module")
def meld_slice(shared_data, tmp_path_factory):
    """The first 12 dialogues of MELD train and test as a MELD directory, plus a synthetic JSONL whose turns
    reuse MELD dev utterances (stand-in text) with balanced labels."""
    root = tmp_path_factory.mktemp("meld")
    for split in ("train", "test"):
        with (shared_data / "meld" / f"{split}_sent_emo.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        keep = sorted({r["Dialogue_ID"] for r in rows}, key=int)[:12]
        with (root / f"{split}_sent_emo.csv").open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(r for r in rows if r["Dialogue_ID"] in keep)
    dev = [t for d in read_split(shared_data / "meld", "dev", MELD)[:40] for t in d["turns"]]
    by_emotion = {e: [t["text"] for t in dev if t["emotion"] == e] for e in MELD}
    assert all(by_emotion.values())
    lines = [orjson.dumps({"id": i, "turns": [{"speaker": j % 2, "emotion": e,
                                               "text": by_emotion[e][i % len(by_emotion[e])]}
                                              for j, e in enumerate(MELD[i % 7:] + MELD[:i % 7])]})
             for i in range(10)]
    (root / "synthetic.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return root


def erc(argv, capsys):
    code = run(main, argv)
    return code, capsys.readouterr().err


def test_cli_on_a_slice_writes_report_and_p_value(meld_slice, tmp_path, capsys, tmp_path_factory):
    out = tmp_path / "erc"
    cache = tmp_path_factory.getbasetemp() / "embed-cache"
    code, err = erc(["--train", str(meld_slice), "--synthetic", str(meld_slice / "synthetic.jsonl"), "--seeds", "2",
                     "--rounds", "100", "--out", str(out), "--cache-dir", str(cache)], capsys)
    assert code == 0, err
    report = orjson.loads((out / "report.json").read_bytes())
    base = f"{meld_slice.name} train"  # the folder given, by its name
    assert report["corpus"] == {"train": base, "test": f"{meld_slice.name} test"}
    assert list(report["conditions"]) == [base, f"{base} + synthetic"]
    test = report["tests"][f"{base} + synthetic"]
    assert 0 < test["p_value"] <= 1 and len(test["per_seed_difference"]) == 2
    assert set(report["conditions"][base]["per_class"]) == set(MELD)
    md = (out / "report.md").read_text()
    assert md.startswith(f"# ERC on {meld_slice.name} test with") and "MELD" not in md
    assert (out / "imbalance.png").stat().st_size > 1000 and "p-value" in md


@pytest.mark.parametrize("content, message", [
    ('{"id": 1, "turns": [{"speaker": 0, "emotion": "joy"}]}\n', "needs 'speaker' and non-empty string"),
    ('{"id": 1, "turns": [{"speaker": 0, "emotion": "happy", "text": "hi"}]}\n', "'happy' is not in the label set"),
    ('{"id": 1}\n', "non-empty 'turns' list"),
    ("not json\n", "not valid JSON"),
])
def test_bad_synthetic_input_is_one_line_exit_2(content, message, meld_slice, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    code, err = erc(["--train", str(meld_slice), "--synthetic", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "o").exists()


def test_unknown_benchmark_and_bad_csv_exit_2(meld_slice, tmp_path, capsys):
    code, err = erc(["--train", str(meld_slice), "--benchmark", "friends"], capsys)
    assert code == 2 and "unknown benchmark 'friends'" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("Utterance,Speaker,Emotion,Dialogue_ID\nhi,A,joy,0\n")
    code, err = erc(["--train", str(meld_slice), "--synthetic", str(bad)], capsys)
    assert code == 2 and "missing column(s) Utterance_ID" in err
