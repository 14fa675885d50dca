"""eval.corpus / eval.tables: gold corpora in every accepted format, columns, splits, label ids, multi-label rows."""
import csv

import orjson
import pytest

from eval.corpus import GoldOptions, read_corpus, resolve_splits, stratified_split
from common.errors import UsageError

LABELS = ["sadness", "joy", "love"]  # CARER's preset order
ROWS = [(f"text {i} about {e}", e) for i in range(30) for e in [["love", "joy", "sadness"][i % 3]]]


def write_csv(path, header, rows, delimiter=","):
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_jsonl(path, records):
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def write_parquet(path, columns, metadata=None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns)
    if metadata is not None:
        table = table.replace_schema_metadata({b"huggingface": orjson.dumps(metadata)})
    pq.write_table(table, path)
    return path


def split_folder(root, writer):
    """train and test files of one format: ROWS[:20] / ROWS[20:]."""
    root.mkdir()
    writer(root, "train", ROWS[:20])
    writer(root, "test", ROWS[20:])
    return root


WRITERS = {
    "csv": lambda d, s, rows: write_csv(d / f"{s}.csv", ["id", "Sentence", "Label"],
                                        [(i, *r) for i, r in enumerate(rows)]),
    "tsv": lambda d, s, rows: write_csv(d / f"{s}.tsv", ["text", "emotion"], rows, delimiter="\t"),
    "jsonl": lambda d, s, rows: write_jsonl(d / f"{s}.jsonl", [{"utterance": t, "label": e, "n": 1} for t, e in rows]),
    "parquet": lambda d, s, rows: write_parquet(d / f"{s}-00000-of-00001.parquet",
                                                {"text": [t for t, _ in rows], "label": [e for _, e in rows]}),
    "text;label": lambda d, s, rows: (d / f"{s}.txt").write_text("".join(f"{t};{e}\n" for t, e in rows)),
}


@pytest.mark.parametrize("fmt", WRITERS)
def test_a_folder_of_split_files_in_every_format(tmp_path, fmt):
    gold = read_corpus(split_folder(tmp_path / "gold", WRITERS[fmt]))
    assert gold.train.texts == [t for t, _ in ROWS[:20]] and gold.test.emotions == [e for _, e in ROWS[20:]]
    assert gold.labels == LABELS  # the carer preset's order, not the order of appearance
    assert gold.info["format"] == fmt and gold.info["split"] is None
    assert (gold.info["train"]["split"], gold.info["test"]["split"]) == ("train", "test")


def test_shards_of_a_split_are_joined_and_json_is_read_as_json_lines(tmp_path):
    for k, rows in enumerate((ROWS[:10], ROWS[10:20])):
        write_parquet(tmp_path / f"train-0000{k}-of-00002.parquet", {"text": [t for t, _ in rows],
                                                                     "label": [e for _, e in rows]})
    write_jsonl(tmp_path / "test.json", [{"text": t, "label": e} for t, e in ROWS[20:]])
    gold = read_corpus(tmp_path)
    assert gold.train.texts == [t for t, _ in ROWS[:20]] and len(gold.test) == 10
    assert gold.info["format"] == "jsonl+parquet"


def test_one_file_is_split_seeded_and_stratified(tmp_path):
    path = write_csv(tmp_path / "all.csv", ["text", "label"], ROWS)
    gold = read_corpus(path, GoldOptions(seed=3))
    assert len(gold.train) == 24 and len(gold.test) == 6
    assert sorted(gold.test.emotions) == sorted(LABELS * 2)  # 20 % of each label's 10 texts
    assert not set(gold.train.texts) & set(gold.test.texts)
    assert "seeded stratified 80%/20% split of 'all' (seed 3)" in gold.info["split"]
    assert read_corpus(path, GoldOptions(seed=3)).test.texts == gold.test.texts
    assert read_corpus(path, GoldOptions(seed=4)).test.texts != gold.test.texts


def test_stratified_split_keeps_a_lone_text_in_train():
    train, test = stratified_split(["a"] * 10 + ["b"], seed=0)
    assert len(test) == 2 and 10 in train and len(train) + len(test) == 11


def test_splits_are_named_by_the_leading_word_and_chosen_by_option(tmp_path):
    root = tmp_path / "meld"
    root.mkdir()
    for split, rows in (("train", ROWS[:10]), ("dev", ROWS[10:20]), ("test", ROWS[20:])):
        write_csv(root / f"{split}_sent_emo.csv", ["Utterance", "Emotion"], rows)
    gold = read_corpus(root, GoldOptions(train="dev"))
    assert gold.train.texts == [t for t, _ in ROWS[10:20]] and gold.info["test"]["split"] == "test"
    assert len(read_corpus(root, GoldOptions(train="train", test="dev")).test) == 10
    with pytest.raises(UsageError, match=r"--gold-test: .* no split 'validation' \(splits: dev, test, train\)"):
        read_corpus(root, GoldOptions(test="validation"))
    assert resolve_splits(["train", "validation"], None, None) == ("train", None)
    with pytest.raises(UsageError, match="no 'train' split; name one with --gold-train"):
        resolve_splits(["a", "b"], None, None)
    with pytest.raises(UsageError, match="both 'test'"):
        resolve_splits(["test"], None, "test")


def test_label_ids_take_names_from_the_option_or_the_classlabel_feature(tmp_path):
    ids = write_jsonl(tmp_path / "ids.jsonl", [{"text": t, "label": LABELS.index(e)} for t, e in ROWS])
    gold = read_corpus(ids, GoldOptions(label_names=LABELS))
    assert set(gold.train.emotions) == set(LABELS) and gold.info["train"]["label_names"] == "--label-names"
    assert read_corpus(ids).labels == ["0", "1", "2"]
    meta = {"info": {"features": {"label": {"names": ["love", "joy", "sadness"], "_type": "ClassLabel"}}}}
    pq = write_parquet(tmp_path / "data.parquet", {"text": [t for t, _ in ROWS],
                                                   "label": [LABELS.index(e) for _, e in ROWS]}, meta)
    gold = read_corpus(pq)
    assert gold.labels == ["love", "joy", "sadness"]  # the feature's order
    assert gold.train.emotions[gold.train.texts.index(ROWS[2][0])] == "love"  # id 0 ("sadness" above) is "love" here
    with pytest.raises(UsageError, match=r"label '3' is outside --label-names \(a, b, c\)"):
        read_corpus(write_jsonl(tmp_path / "bad.jsonl", [{"text": "x", "label": 3}]),
                    GoldOptions(label_names=["a", "b", "c"]))
    with pytest.raises(UsageError, match="label 'anger' is outside --label-names"):
        read_corpus(write_csv(tmp_path / "bad.csv", ["text", "label"], [("x", "anger")]),
                    GoldOptions(label_names=LABELS))


def test_multi_label_rows_are_dropped_or_keep_their_first_label(tmp_path):
    records = [{"text": f"t{i}", "labels": [LABELS[i % 3]] if i % 4 else [LABELS[i % 3], "joy"]} for i in range(40)]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    write_jsonl(tmp_path / "test.jsonl", records[:8])
    dropped = read_corpus(tmp_path)
    assert len(dropped.train) == 30 and dropped.info["train"]["multi_label_dropped"] == 10
    assert dropped.info["test"]["multi_label_dropped"] == 2 and dropped.info["multi_label"] == "drop"
    first = read_corpus(tmp_path, GoldOptions(multi_label="first"))
    assert len(first.train) == 40 and first.train.emotions[0] == "sadness" and first.train.emotions[4] == "joy"
    cells = [("a", "joy,fear")] + [(f"b{i}", "joy" if i % 2 else "fear") for i in range(20)]
    go = read_corpus(write_csv(tmp_path / "go.tsv", ["text", "labels"], cells, "\t"), GoldOptions(train="go"))
    assert go.info["train"]["multi_label_dropped"] == 1 and len(go.train) + len(go.test) == 20
    write_jsonl(path, [{"text": "t", "labels": ["joy", "fear"]}])
    with pytest.raises(UsageError, match="no texts left after dropping 1 multi-label rows"):
        read_corpus(tmp_path)


def test_column_detection_and_its_errors(tmp_path):
    both = write_csv(tmp_path / "both.csv", ["text", "Sentence", "label"], [("a", "b", "joy")])
    with pytest.raises(UsageError, match="ambiguous text-col: candidates text, Sentence; name one with --text-col"):
        read_corpus(both)
    with pytest.raises(UsageError, match=r"no column 'body' \(columns: text, Sentence, label\)"):
        read_corpus(both, GoldOptions(text_col="body"))
    none = write_csv(tmp_path / "none.csv", ["body", "label"], [("a", "joy")])
    with pytest.raises(UsageError, match=r"no column named text/sentence/utterance; name it with --text-col "
                                         r"\(columns: body, label\)"):
        read_corpus(none)
    rows = [(f"t{i}", "joy" if i % 2 else "fear") for i in range(10)]
    path = write_csv(tmp_path / "named.csv", ["body", "Sentiment", "Emotion"], [(t, "x", e) for t, e in rows])
    named = read_corpus(path, GoldOptions(text_col="body"))
    assert named.info["train"]["text_column"] == "body" and named.info["train"]["label_column"] == "Emotion"


@pytest.mark.parametrize("name, content, message", [
    ("data.xlsx", b"PK", "can't read this format"),
    ("data.parquet", b"not parquet", "not a readable parquet file"),
    ("data.jsonl", b'{"text": "a", "label": "joy"}\n{oops\n', ":2: not valid JSON"),
    ("data.csv", b"text,label\n\xff,joy\n", "not UTF-8"),
    ("data.csv", b"text,label\n,joy\n", "row 1: empty or missing text"),
    ("data.csv", b"text,label\nhello,\n", "row 1: empty label"),
])
def test_unreadable_files_are_usage_errors(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UsageError, match=message):
        read_corpus(tmp_path / name)


def test_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        read_corpus(tmp_path / "nope")
    with pytest.raises(UsageError, match="no corpus files"):
        read_corpus(tmp_path)
    with pytest.raises(UsageError, match="--multi-label must be one of drop, first"):
        read_corpus(tmp_path, GoldOptions(multi_label="all"))


def test_a_datasets_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=LABELS)})
    parts = {split: datasets.Dataset.from_dict({"text": [t for t, _ in rows],
                                                "label": [LABELS.index(e) for _, e in rows]}, features=features)
             for split, rows in (("train", ROWS[:20]), ("validation", ROWS[20:25]), ("test", ROWS[25:]))}
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "dd"))
    gold = read_corpus(tmp_path / "dd")
    assert gold.info["format"] == "datasets" and len(gold.train) == 20 and len(gold.test) == 5
    assert gold.train.emotions[:3] == ["love", "joy", "sadness"]
    assert gold.info["train"]["label_names"] == "the ClassLabel names of 'label'"
    multi = datasets.Features({"text": datasets.Value("string"),
                               "labels": datasets.Sequence(datasets.ClassLabel(names=LABELS))})
    one = datasets.Dataset.from_dict({"text": [t for t, _ in ROWS], "labels": [[i % 3] if i % 5 else [0, 1]
                                                                                for i in range(30)]}, features=multi)
    one.save_to_disk(str(tmp_path / "one"))
    gold = read_corpus(tmp_path / "one")
    assert gold.info["split"] and len(gold.train) + len(gold.test) == 24
    assert gold.info["train"]["multi_label_dropped"] == 6


def test_meld_train_as_one_gold_file(shared_data, tmp_path):
    """The first 300 utterances of MELD train as one CSV: Utterance and Emotion are detected."""
    lines = (shared_data / "meld" / "train_sent_emo.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    rows = list(csv.reader(lines))[:301]
    path = write_csv(tmp_path / "meld.csv", rows[0], rows[1:])
    gold = read_corpus(path, GoldOptions(text_col="Utterance", label_col="Emotion"))
    assert len(gold.train) + len(gold.test) == 300 and "neutral" in gold.labels
    assert set(gold.labels) <= {"neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"}
    assert read_corpus(path).info["train"]["label_column"] == "Emotion"
