"""eval.report against any gold corpus: label map, reference rows, small inputs, fixed class order, bad input.
A 16-d hashed embedder stands in for MiniLM (test_eval_report runs the real model), so these runs take seconds."""
import csv

import orjson
import pytest

from eval import report
from tests.support.embedders import HashEmbedder

PAPER = ["joy", "anger", "sadness", "pleasure", "surprise", "fear", "neutral"]
CARER = ["sadness", "joy", "love", "anger", "fear", "surprise"]
TEST_COUNTS = {"sadness": 4, "joy": 12, "love": 4, "anger": 4, "fear": 4, "surprise": 4}


@pytest.fixture(autouse=True)
def hashed(monkeypatch):
    monkeypatch.setattr(report, "Embedder", HashEmbedder)


def synthetic(path, per_emotion, emotions=PAPER):
    path.write_bytes(b"".join(orjson.dumps({"text": f"a {e} text number {i}", "emotion": e}) + b"\n"
                              for i in range(per_emotion) for e in emotions))
    return path


def write_csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture
def gold(tmp_path):
    """A CARER-shaped corpus as a folder of CSVs: 20 train texts per label, a test split where joy is the largest."""
    root = tmp_path / "gold"
    root.mkdir()
    write_csv(root / "train.csv", ["sentence", "label"], [(f"gold {e} {i}", e) for i in range(20) for e in CARER])
    write_csv(root / "test.csv", ["sentence", "label"], [(f"test {e} {i}", e) for e, n in TEST_COUNTS.items()
                                                         for i in range(n)])
    return root


def run(*args):
    return report.main([*map(str, args)])


def load(out):
    return orjson.loads((out / "report.json").read_bytes()), (out / "report.md").read_text(encoding="utf-8")


def test_quick_start_size_gives_diversity_only(tmp_path):
    out = tmp_path / "out"
    assert run(synthetic(tmp_path / "seven.jsonl", 1), "--out", out) == 0
    r, md = load(out)
    assert r["classification"] is None and r["figures"] == {"tsne": "tsne.png"} and (out / "tsne.png").exists()
    assert r["not_computed"]["classification"].startswith("needs at least 2 texts of every emotion")
    assert r["diversity_overall"]["mcd"] > 0 and r["diversity_overall"]["ce"] > 0 and r["diversity_overall"]["cd"] > 0
    assert r["diversity"]["joy"]["mcd"] is None
    assert r["not_computed"]["diversity.joy.mcd"].startswith("needs at least 2")
    assert "not computed: needs at least 2 texts of every emotion" in md
    assert "`diversity.joy.ce` not computed: needs at least 2 texts of 'joy' (has 1)" in md


def test_fourteen_texts_state_the_minimum_for_table_v(tmp_path):
    out = tmp_path / "out"
    assert run(synthetic(tmp_path / "fourteen.jsonl", 2), "--out", out) == 0
    r, md = load(out)
    reason = "needs at least 31 texts for a stratified 80%/20% split over 7 emotions (has 14)"
    assert r["not_computed"]["classification"] == reason and f"not computed: {reason}" in md
    assert all(m["mcd"] is not None and m["ce"] is not None for m in r["diversity"].values())


def test_label_map_and_reference_rows(tmp_path, gold):
    out = tmp_path / "out"
    data = synthetic(tmp_path / "paper.jsonl", 10)
    assert run(data, "--gold", gold, "--label-map", "pleasure=joy,neutral=drop", "--out", out) == 0
    r, md = load(out)
    refs = r["references"]
    assert refs["majority"]["label"] == "joy" and refs["majority"]["accuracy"] == pytest.approx(12 / 32)
    assert refs["gold_size_matched"]["n_train"] == 60 == r["tstr"]["n_train"] == r["gold"]["n_synthetic"]
    assert r["gold_trained"]["n_train"] == 120 and all("macro_f1" in r[k] for k in ("tstr", "gold_trained"))
    assert refs["real_vs_real"]["n_a"] == 60 and refs["real_vs_real"]["n_b"] == 32 == refs["synthetic_vs_test"]["n_b"]
    assert r["labels"]["dropped"] == {"neutral": 10} and r["labels"]["gold_without_synthetic"] == ["love"]
    assert r["labels"]["synthetic"]["joy"] == 20 and r["gold_corpus"]["train"]["text_column"] == "sentence"
    assert r["classification"]["confusion"]["labels"] == PAPER  # Table V: the synthetic labels, unmapped
    for row in ("| Majority class (joy) | 0.375 |", "| Gold data, size-matched |", "| real vs real: gold train sample",
                "| paper vs gold test |", "gold labels without synthetic texts: love", "neutral (10)"):
        assert row in md


def test_without_a_label_map_the_emotion_files_mapping_is_the_default(tmp_path, gold):
    given, default = tmp_path / "given", tmp_path / "default"
    data = synthetic(tmp_path / "paper.jsonl", 10)
    assert run(data, "--gold", gold, "--label-map", "pleasure=joy,neutral=drop", "--out", given) == 0
    assert run(data, "--gold", gold, "--out", default) == 0
    (a, _), (b, md) = load(given), load(default)
    assert b["labels"]["map"] == {"pleasure": "joy", "neutral": "drop"}
    assert b["labels"]["map_source"] == "model/emotion_sets/paper.json (maps to carer)"
    assert a["labels"]["map_source"] == "--label-map"
    assert b["tstr"] == a["tstr"] and b["references"] == a["references"]
    assert "Label map: pleasure=joy, neutral=drop (from model/emotion_sets/paper.json (maps to carer))." in md


def test_labels_no_emotion_file_maps_are_still_refused(tmp_path, gold, capsys):
    data = synthetic(tmp_path / "odd.jsonl", 10, emotions=["joy", "bliss"])
    assert run(data, "--gold", gold, "--out", tmp_path / "out") == 2
    assert "not in the gold label set" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_small_sets_against_gold_compute_what_they_can(tmp_path, gold):
    out = tmp_path / "out"
    assert run(synthetic(tmp_path / "seven.jsonl", 1), "--gold", gold, "--label-map", "pleasure=joy,neutral=drop",
               "--out", out) == 0
    r, md = load(out)
    assert r["gold"]["fid"] > 0 and r["gold"]["prd_f8"] is None
    assert r["gold"]["warning"].startswith("FID from 6 texts in 16 dimensions")
    assert r["not_computed"]["gold.kl"] == "needs at least 20 texts on each side (one per cluster) (has 6)"
    assert r["tstr"]["n_train"] == 6 and r["references"]["gold_size_matched"]["n_train"] == 6
    assert "`gold.hc` not computed: needs at least 20 texts" in md and "Warning: FID from 6 texts" in md


def test_the_confusion_matrix_keeps_the_label_set_order(tmp_path):
    data = synthetic(tmp_path / "a.jsonl", 6, ["fear", "neutral", "joy"])
    lines = data.read_bytes().splitlines(keepends=True)
    (tmp_path / "b.jsonl").write_bytes(b"".join(reversed(lines)))
    orders = []
    for name in ("a", "b"):
        assert run(tmp_path / f"{name}.jsonl", "--out", tmp_path / name) == 0
        orders.append(load(tmp_path / name)[0]["classification"]["confusion"]["labels"])
    assert orders == [["joy", "fear", "neutral"]] * 2


@pytest.mark.parametrize("extra, message", [
    (["--text-col", "body"], "no column 'body' (columns: sentence, label)"),
    (["--label-names", "sadness,joy"], "is outside --label-names (sadness, joy)"),
    (["--label-map", "pleasure=happiness,neutral=drop"], "--label-map maps to labels the gold set lacks"),
    (["--label-map", "neutral=drop"], "has emotions not in the gold label set"),
    (["--gold-test", "validation"], "--gold-test: the gold corpus has no split 'validation' (splits: test, train)"),
    (["--multi-label", "all"], "argument --multi-label: invalid choice"),
])
def test_bad_gold_input_is_one_line_exit_2_and_no_report(tmp_path, gold, capsys, extra, message):
    assert run(synthetic(tmp_path / "d.jsonl", 10), "--gold", gold, *extra, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, content, message", [
    ("gold.xlsx", "PK", "can't read this format"),
    ("gold.jsonl", '{"text": "a", "labels": ["joy", "fear"]}\n', "no texts left after dropping 1 multi-label rows"),
    ("gold.csv", "text,sentence,label\na,b,joy\n", "ambiguous text-col: candidates text, sentence"),
])
def test_bad_gold_files_are_one_line_exit_2(tmp_path, capsys, name, content, message):
    (tmp_path / name).write_text(content, encoding="utf-8")
    assert run(synthetic(tmp_path / "d.jsonl", 10), "--gold", tmp_path / name, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_gold_options_need_gold(tmp_path, capsys):
    assert run(synthetic(tmp_path / "d.jsonl", 10), "--label-map", "a=b", "--out", tmp_path / "out") == 2
    assert "error: --label-map needs --gold" in capsys.readouterr().err


def test_tstr_has_a_confusion_matrix_on_the_gold_test_split(tmp_path, gold):
    out = tmp_path / "out"
    assert run(synthetic(tmp_path / "carer.jsonl", 10, CARER), "--gold", gold, "--out", out) == 0
    r, md = load(out)
    c = r["tstr"]["confusion"]
    assert c["labels"] == CARER and sum(map(sum, c["matrix"])) == 32 == r["tstr"]["n_test"]
    assert [sum(row) for row in c["matrix"]] == [TEST_COUNTS[e] for e in CARER]  # rows: the gold test labels
    assert r["figures"]["tstr_confusion"] == "confusion_tstr.png" and (out / "confusion_tstr.png").stat().st_size
    assert "![TSTR confusion matrix](confusion_tstr.png)" in md


def test_degenerate_rows_are_warned_on_stderr_and_in_the_report(tmp_path, gold, capsys):
    """One text with six labels: every classifier trained on it can only predict one class, and the gold
    size-matched sample (six texts) scores below always predicting joy."""
    data = tmp_path / "same.jsonl"
    data.write_bytes(b"".join(orjson.dumps({"text": "the same text", "emotion": e}) + b"\n" for e in CARER))
    out = tmp_path / "out"
    assert run(data, "--gold", gold, "--out", out) == 0
    r, md = load(out)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert [f"warning: {w}" for w in r["warnings"]] == err
    assert any(w.startswith("`tstr`: the classifier predicts") and "for all 32 test texts" in w for w in r["warnings"])
    below = [w for w in r["warnings"] if w.startswith("`references.gold_size_matched`: accuracy")]
    assert r["references"]["gold_size_matched"]["accuracy"] < 12 / 32
    assert below and "below the majority-class row's 0.375 (always 'joy')" in below[0]
    assert "## Warnings" in md and f"- {r['warnings'][0]}." in md


class LabelEmbedder(HashEmbedder):
    """The hashed vector plus a large step along the axis of the CARER label the text names: texts of one label
    cluster, so every classifier learns."""

    def __call__(self, texts):
        x = super().__call__(texts)
        for row, text in zip(x, texts):
            row[[i for i, e in enumerate(CARER) if e in text.split()][0]] += 4.0
        return x


def test_a_sound_report_has_no_warnings(tmp_path, gold, capsys, monkeypatch):
    monkeypatch.setattr(report, "Embedder", LabelEmbedder)
    out = tmp_path / "out"
    assert run(synthetic(tmp_path / "carer.jsonl", 10, CARER), "--gold", gold, "--out", out) == 0
    r, md = load(out)
    assert r["warnings"] == [] and "warning:" not in capsys.readouterr().err and "## Warnings" not in md
