"""Inputs that parsers accept silently and we refuse: a key named twice in a profile or chain file, an emotion
label with a control character, a command run without its arguments."""
from pathlib import Path

from common.cli import run
from eval import report
from model.sample import main as sample

TOY = Path(__file__).parent / "profiles" / "toy.json"


def test_a_profile_naming_a_key_twice_is_refused(tmp_path, capsys):
    text = TOY.read_text()
    first = text.index('"stage"')
    twice = text[:first] + '"stage": 3, ' + text[first:]  # the later value would win silently
    path = tmp_path / "twice.json"
    path.write_text(twice)
    out = tmp_path / "out.jsonl"
    code = run(sample, ["--n", "5", "--profile", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"profile file {path}: key 'stage' appears twice in one object" in err
    assert not out.exists()


def test_the_shipped_files_name_no_key_twice(capsys):
    for profile in ("jp", "us"):
        for domain in ("sns", "workplace", "conversation"):
            assert run(sample, ["--n", "1", "--profile", profile, "--domain", domain]) == 0
    capsys.readouterr()


def test_an_emotion_label_with_a_newline_is_refused(capsys):
    code = run(sample, ["--n", "5", "--emotions", "joy,ang\ner"])
    err = capsys.readouterr().err
    assert code == 2 and err == "error: emotion label 'ang\\ner' holds a newline or another control character\n"


def test_eval_report_without_arguments_is_one_line(tmp_path, capsys):
    assert report.main([]) == 2
    assert capsys.readouterr().err == "error: the following arguments are required: data\n"
