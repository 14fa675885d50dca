"""eval.data: reading and validating the set under evaluation; CARER's `text;label` files."""
import pytest

from common.errors import UsageError
from common.tables import read_file
from eval.data import check_classes, check_within, read_labelled


def read_jsonl(path):
    return read_labelled(path).data


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_records_ignoring_extra_fields_and_blank_lines(tmp_path):
    p = write(tmp_path / "d.jsonl", '{"text": "i feel great", "emotion": "joy", "id": 3}\n\n'
                                    '{"text": "so scared", "emotion": " fear ", "persona": {"age": 30}}\n')
    d = read_jsonl(p)
    assert d.texts == ["i feel great", "so scared"] and d.emotions == ["joy", "fear"]
    assert d.names == ["joy", "fear"] and d.codes(["fear", "joy"]).tolist() == [1, 0]


@pytest.mark.parametrize("content, message", [
    ("", "no records"),
    ("\n  \n", "no records"),
    ('{"text": "a"}\n', r"no column named label/emotion/labels \(columns: text\)"),
    ('{"emotion": "joy"}\n', "no column named text/sentence/utterance"),
    ('{"text": "a", "emotion": "joy"}\n{"text": "b"}\n', "row 2: 'emotion' is missing"),
    ('{"text": "", "emotion": "joy"}\n', "row 1: 'text' is missing or not a non-empty string"),
    ('{"text": 3, "emotion": "joy"}\n', "row 1: 'text' is missing or not a non-empty string"),
    ('{"text": "a", "emotion": "joy"}\n{oops\n', ":2: not valid JSON"),
    ('["a", "joy"]\n', "expected a JSON object"),
])
def test_bad_jsonl_is_a_usage_error(tmp_path, content, message):
    with pytest.raises(UsageError, match=message):
        read_jsonl(write(tmp_path / "d.jsonl", content))


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "b.jsonl").write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match="not UTF-8"):
        read_jsonl(tmp_path / "b.jsonl")


def test_class_checks(tmp_path):
    one = read_jsonl(write(tmp_path / "one.jsonl", '{"text": "a", "emotion": "joy"}\n' * 3))
    with pytest.raises(UsageError, match="at least 2 are needed"):
        check_classes(one, "one.jsonl")
    lonely = read_jsonl(write(tmp_path / "l.jsonl", '{"text": "a", "emotion": "joy"}\n' * 3
                              + '{"text": "b", "emotion": "fear"}\n'))
    with pytest.raises(UsageError, match=r"too few: fear \(1\)"):
        check_classes(lonely, "l.jsonl")
    with pytest.raises(UsageError, match="not in the gold label set.*fear"):
        check_within(lonely, ["joy", "sadness"], "l.jsonl")
    check_within(lonely, ["joy", "fear", "love"], "l.jsonl")


def test_carer_text_label_files(tmp_path, shared_data):
    train = read_file(shared_data / "carer_emotion" / "train.txt")
    assert len(train.columns["text"]) == 16000
    assert set(train.columns["label"]) == {"sadness", "joy", "love", "anger", "fear", "surprise"}
    t = read_file(write(tmp_path / "train.txt", "a text; with a semicolon;joy\nplain;fear\n"))
    assert t.columns == {"text": ["a text; with a semicolon", "plain"], "label": ["joy", "fear"]}
    with pytest.raises(UsageError, match="test.txt:1: expected 'text;label'"):
        read_file(write(tmp_path / "test.txt", "no label here\n"))
