"""eval.data: reading and validating the JSONL under evaluation and a gold directory."""
import pytest

from eval.data import check_classes, check_within, read_gold, read_jsonl
from common.errors import UsageError


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
    ('{"text": "a"}\n', "field 'emotion'"),
    ('{"emotion": "joy"}\n', "field 'text'"),
    ('{"text": "", "emotion": "joy"}\n', "field 'text'"),
    ('{"text": 3, "emotion": "joy"}\n', "field 'text'"),
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


def test_gold_directory(tmp_path, shared_data):
    gold = read_gold(shared_data / "carer_emotion")
    assert len(gold["train"]) == 16000 and len(gold["test"]) == 2000
    assert set(gold["train"].names) == {"sadness", "joy", "love", "anger", "fear", "surprise"}
    write(tmp_path / "train.txt", "a text; with a semicolon;joy\nplain;fear\n")
    write(tmp_path / "test.txt", "no label here\n")
    with pytest.raises(UsageError, match="test.txt:1: expected 'text;label'"):
        read_gold(tmp_path)
    write(tmp_path / "test.txt", "x;joy\n")
    assert read_gold(tmp_path)["train"].texts[0] == "a text; with a semicolon"
    with pytest.raises(UsageError, match="does not exist"):
        read_gold(tmp_path / "missing")

