"""eval.report on the files people have: a headerless TSV gold with integer label ids, a `|`-separated gold CSV,
llm.generate's results in each of its formats and a MELD-style dialogue CSV as DATA, --gold-max-rows.
The 16-d hashed embedder of test_eval_report_gold stands in for MiniLM."""
import csv

import orjson
import pytest

from eval import report
from common.formats import write as write_results
from tests.eval.test_report_gold import CARER, HashEmbedder, load, run, synthetic

RESULT = {"id": 0, "seed": 0, "attempt": 0, "profile": "jp", "domain": None,
          "stage1": {"age": "30s", "gender": "woman"}, "stage2": {"region": "Tokyo"}, "stage3": {"style": "terse"},
          "emotion": "joy", "log_prob": -3.2, "method": "persona", "text": "t",
          "validation": {"stage1": {"label": "natural", "reason": "ok"}}, "prompt": [{"role": "user", "content": "p"}],
          "usage": {"prompt_tokens": 3}, "rejected_draws": []}


@pytest.fixture(autouse=True)
def hashed(monkeypatch):
    monkeypatch.setattr(report, "Embedder", HashEmbedder)


def results(n_per_emotion: int) -> list[dict]:
    return [{**RESULT, "id": i, "emotion": e, "text": f"a {e} text number {i}"}
            for i, e in enumerate(e for _ in range(n_per_emotion) for e in CARER)]


def headerless_tsv(path, rows_per_label: int):
    """GoEmotions' layout: text, label id(s), row id; every fifth row has two ids ("3,1")."""
    lines = [f"gold {e} {i}\t{k}{',1' if i % 5 == 4 else ''}\tr{k}-{i}"
             for i in range(rows_per_label) for k, e in enumerate(CARER)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_headerless_tsv_gold_with_integer_ids(tmp_path):
    out = tmp_path / "out"
    gold = headerless_tsv(tmp_path / "train.tsv", 25)
    assert run(synthetic(tmp_path / "s.jsonl", 8, CARER), "--gold", gold, "--no-header", "--text-col", "0",
               "--label-col", "1", "--label-names", ",".join(CARER), "--out", out) == 0
    r, md = load(out)
    g = r["gold_corpus"]
    assert g["labels"] == CARER and g["train"]["separator"] == "\t" and g["train"]["header"] is False
    assert g["train"]["multi_label_dropped"] == 30  # the "k,1" rows of the one file, before its 80/20 cut
    assert g["train"]["n"] + g["test"]["n"] == 120 and r["tstr"]["n_test"] == g["test"]["n"]
    assert "(tsv, tab-separated, no header row)" in md and "label ids named by --label-names" in md


def test_a_headerless_tsv_gold_without_no_header_is_one_line_with_the_way_out(tmp_path, capsys):
    gold = headerless_tsv(tmp_path / "train.tsv", 5)
    assert run(synthetic(tmp_path / "s.jsonl", 8, CARER), "--gold", gold, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add --no-header and name the columns by number" in err
    assert run(synthetic(tmp_path / "s.jsonl", 8, CARER), "--no-header", "--out", tmp_path / "out") == 2
    assert "--no-header needs --gold" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_pipe_separated_gold_csv(tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("id|text|label\n" + "".join(f"{i}|gold, {e}, {i}|{e}\n" for i in range(20) for e in CARER),
                    encoding="utf-8")
    assert run(synthetic(tmp_path / "s.jsonl", 8, CARER), "--gold", gold, "--out", tmp_path / "out") == 0
    r, md = load(tmp_path / "out")
    assert r["gold_corpus"]["train"]["text_column"] == "text" and r["gold_corpus"]["labels"] == CARER
    assert "(csv, pipe-separated)" in md


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_llm_generate_results_in_every_format(tmp_path, fmt):
    """The flat CSV and parquet (nested values as JSON strings) give the JSONL's numbers."""
    data = tmp_path / f"results.{fmt}"
    assert write_results([results(4)], data, fmt) == 24
    assert run(data, "--out", tmp_path / "out") == 0
    r, _ = load(tmp_path / "out")
    jsonl = tmp_path / "results.jsonl"
    write_results([results(4)], jsonl, "jsonl")
    assert run(jsonl, "--out", tmp_path / "ref") == 0
    ref, _ = load(tmp_path / "ref")
    assert r["input"]["n"] == 24 and r["input"]["method"] == "results"
    assert (r["diversity"], r["classification"]) == (ref["diversity"], ref["classification"])


def test_a_meld_style_dialogue_csv(tmp_path):
    """MELD's own columns (Sr No., Utterance, Speaker, Emotion, Dialogue_ID, Utterance_ID, Season, Episode, ...)."""
    header = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
              "Episode"]
    emotions = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
    rows = [[i + 1, f"line {i}, said", "Ross", emotions[i % 7], "neutral", i // 4, i % 4, 3, 7] for i in range(42)]
    with (tmp_path / "dialogues.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    assert run(tmp_path / "dialogues.csv", "--out", tmp_path / "out") == 0
    r, _ = load(tmp_path / "out")
    assert r["input"]["n"] == 42 and set(r["input"]["emotions"]) == set(emotions)


def test_gold_max_rows_is_a_stated_seeded_stratified_sample(tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("text,label\n" + "".join(f"gold {e} {i},{e}\n" for e in CARER for i in range(30 if e == "joy"
                                                                                                  else 10)),
                    encoding="utf-8")
    args = (synthetic(tmp_path / "s.jsonl", 8, CARER), "--gold", gold, "--gold-max-rows", "20")
    assert run(*args, "--out", tmp_path / "a") == 0 and run(*args, "--out", tmp_path / "b") == 0
    r, md = load(tmp_path / "a")
    sample = r["gold_corpus"]["sample"]
    assert sample == {"max_rows": 20, "seed": 0, "train": {"from": 64, "kept": 20}, "test": {"from": 16, "kept": 16}}
    assert r["gold_corpus"]["train"]["n"] == 20 and r["tstr"]["n_test"] == 16
    assert ("Sample (--gold-max-rows 20): a seeded stratified sample (seed 0, each label's share kept): 20 of 64 "
            "texts of the train split, 16 of 16 texts of the test split.") in md
    assert (tmp_path / "a" / "report.json").read_bytes() == (tmp_path / "b" / "report.json").read_bytes()
    assert orjson.loads((tmp_path / "a" / "report.json").read_bytes())["gold_corpus"]["train"]["n"] == 20
