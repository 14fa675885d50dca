"""common.tables / common.delimited: the separator sniffed or given, files without a header row, column choice and
its errors."""
import pytest

from common.delimited import SEPARATORS, separator, sniff
from common.errors import UsageError
from common.tables import ReadOptions, find_column, read_file

TEXTS = ["I love it, really; truly", "so sad | today", "what, a, day", "fine"]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("sep", SEPARATORS)
def test_the_separator_is_sniffed_whatever_the_texts_hold(tmp_path, sep):
    """Texts holding the other separators (quoted where they hold this one) are one field each."""
    quote = lambda t: f'"{t}"' if sep in t else t  # noqa: E731
    lines = [sep.join(["text", "label", "id"])] + [sep.join([quote(t), "joy", str(i)]) for i, t in enumerate(TEXTS)]
    table = read_file(write(tmp_path / "data.csv", "\n".join(lines) + "\n"))
    assert table.separator == sep and list(table.columns) == ["text", "label", "id"]
    assert table.columns["text"] == TEXTS and table.columns["id"] == ["0", "1", "2", "3"]


def test_a_pipe_separated_csv_with_a_header_is_read_as_columns(tmp_path):
    """It was read as one column named `text|label`."""
    path = write(tmp_path / "pipes.csv", "text|label\nhello, world|joy\nbye, then|sadness\n")
    table = read_file(path)
    assert table.columns == {"text": ["hello, world", "bye, then"], "label": ["joy", "sadness"]}
    assert find_column(table, None, ("text",), "--text-col", "x") == "text"


def test_sep_overrides_the_sniffed_separator_and_names_are_accepted(tmp_path):
    path = write(tmp_path / "d.csv", "a;b,c\n1;2,3\n")
    assert list(read_file(path).columns) == ["a;b", "c"]  # a tie between , and ; goes to the .csv's own comma
    assert list(read_file(path, ReadOptions(sep=";")).columns) == ["a", "b,c"]
    assert separator("tab") == separator("\\t") == "\t" and separator("|") == "|"
    with pytest.raises(Exception, match="expected one character"):
        separator("ab")
    assert sniff("one\ntwo\n", "\t") == "\t"  # one column: the file's own separator


def test_a_headerless_tsv_with_integer_ids_reads_by_column_number(tmp_path):
    """GoEmotions' layout: text, label ids (several joined by commas), row id; no header row."""
    path = write(tmp_path / "train.tsv", "I am so happy\t17\tid1\nugh, whatever\t3,7\tid2\nwow\t26\tid3\n")
    table = read_file(path, ReadOptions(header=False))
    assert table.columns == {"0": ["I am so happy", "ugh, whatever", "wow"], "1": ["17", "3,7", "26"],
                             "2": ["id1", "id2", "id3"]}
    assert [find_column(table, c, (), "--text-col", "x") for c in ("0", "1")] == ["0", "1"]
    with pytest.raises(UsageError, match=r"without a header row, name the text column by number with --text-col "
                                         r"\(first row: 0='I am so happy', 1='17', 2='id1'\)"):
        find_column(table, None, ("text",), "--text-col", "x")
    with pytest.raises(UsageError, match="no column '5'.*numbered 0 to 2"):
        find_column(table, "5", (), "--text-col", "x")


def test_a_headerless_file_read_with_a_header_says_to_add_no_header(tmp_path):
    """It used to list the first data row as the columns, and `--text-col 0` said only "no column '0'"."""
    table = read_file(write(tmp_path / "train.tsv", "I am so happy\t17\tid1\nwow\t26\tid3\n"))
    with pytest.raises(UsageError, match="no column named text.*add --no-header and name the columns by number"):
        find_column(table, None, ("text",), "--text-col", "x")
    with pytest.raises(UsageError, match="no column '0'.*add --no-header"):
        find_column(table, "0", (), "--text-col", "x")


def test_bom_repeated_and_empty_header_names_and_ragged_rows(tmp_path):
    table = read_file(write(tmp_path / "d.csv", "\ufefftext,label,label,\na,b,c,d\ne,f\n"))
    assert list(table.columns) == ["text", "label", "label.1", "3"]
    assert table.columns["label.1"] == ["c", None]  # a short row is padded
    with pytest.raises(UsageError, match=r"row 2: 3 fields, the header has 2"):
        read_file(write(tmp_path / "r.csv", "text,label\na,b\nc,d,e\n"))
    (tmp_path / "latin.csv").write_bytes(b"text,label\ncaf\xe9,joy\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        read_file(tmp_path / "latin.csv")
    with pytest.raises(UsageError, match="empty file"):
        read_file(write(tmp_path / "e.csv", ""))


def test_a_text_holding_unicode_line_separators_is_one_row(tmp_path):
    """orjson writes U+2028 and U+0085 unescaped: a JSON Lines or text;label line holding one is still one line."""
    import orjson

    text = "one\u2028two\x85three\u2029four"
    path = tmp_path / "d.jsonl"
    path.write_bytes(orjson.dumps({"text": text, "label": "joy"}) + b"\r\n" + orjson.dumps({"text": "b", "label": "x"}))
    assert read_file(path).columns == {"text": [text, "b"], "label": ["joy", "x"]}
    assert read_file(write(tmp_path / "t.txt", f"{text};joy\n")).columns == {"text": [text], "label": ["joy"]}
