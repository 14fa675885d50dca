"""Inputs that parsers accept silently and we refuse: a key named twice in a profile or chain file, an emotion
label with a control character, a command run without its arguments; and (issue 26) a user's file that is a
device, a FIFO, a directory, a symlink loop or too large, and an output that is a FIFO or a device."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from common.cli import run
from common.userfile import MAX_INPUT_BYTES
from eval import report
from llm.generate import main as generate
from model.sample import main as sample
from tests.support.paths import REPO, TOY_PROFILE

TOY = TOY_PROFILE


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


# ---- issue 26: special files, links and sizes where a user's file is read or written ----------------------------

def one_line(capsys, *parts: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, err


def _bomb_profile(path: Path) -> None:
    """Eight attributes of 30 categories, the last with the seven others as parents: 30**8 cells in one table."""
    names = [f"a{i}" for i in range(8)]
    cats = [f"c{j}" for j in range(30)]
    attributes = {name: {"stage": 1, "categories": cats, "weights": dict.fromkeys(cats, 1)} for name in names[:-1]}
    attributes[names[-1]] = {"stage": 1, "categories": cats, "parents": names[:-1],
                             "table": [{"when": {}, "weights": dict.fromkeys(cats, 1)}]}
    path.write_text(json.dumps({"name": "bomb", "attributes": attributes}))


@pytest.mark.parametrize("make, said", [
    (lambda p: p.symlink_to("/dev/zero"), "is a character device, not a regular file"),
    (lambda p: p.symlink_to(p.name), "Too many levels of symbolic links"),
    (lambda p: p.mkdir(), "is a directory, not a regular file"),
    (lambda p: os.mkfifo(p), "is a FIFO, not a regular file"),
    (lambda p: p.write_bytes(b" " * (MAX_INPUT_BYTES + 1) + b"{}"), "is larger than 16 MiB"),
    (_bomb_profile, "would hold 656,100,000,000 cells"),
], ids=["dev-zero", "self-link", "directory", "fifo", "16MiB", "table-too-large"])
def test_a_profile_that_is_no_file_or_too_big_is_one_line(tmp_path, capsys, make, said):
    profile = tmp_path / "profile.json"
    make(profile)
    assert run(sample, ["--n", "5", "--profile", str(profile), "--out", str(tmp_path / "out.jsonl")]) == 2
    one_line(capsys, said)
    assert not (tmp_path / "out.jsonl").exists()


def test_a_device_named_as_a_profile_is_refused_as_one(capsys):
    assert run(sample, ["--n", "5", "--profile", "/dev/zero"]) == 2
    one_line(capsys, "profile file /dev/zero is a character device")


@pytest.mark.parametrize("flag", ["--emotions", "--chain"])
def test_an_emotion_set_or_chain_that_is_a_directory_is_one_line(tmp_path, capsys, flag):
    (tmp_path / "set.json").mkdir()
    mode = ["--mode", "dialogue", "--n-dialogues", "2"] if flag == "--chain" else ["--n", "2"]
    code = run(generate, [*mode, "--out", str(tmp_path / "out.jsonl"), "--base-url", "http://127.0.0.1:9/v1",
                          "--model", "m", flag, str(tmp_path / "set.json"), "--quiet"])
    assert code == 2
    one_line(capsys, "set.json is a directory, not a regular file")


@pytest.mark.slow
@pytest.mark.parametrize("node", ["fifo", "device"])
def test_a_results_journal_that_is_a_fifo_or_a_device_is_refused_at_once(tmp_path, node):
    out = tmp_path / "out"
    if node == "fifo":
        os.mkfifo(out)
    else:
        out.symlink_to("/dev/null")
    done = subprocess.run([sys.executable, "-m", "llm.generate", "--n", "2", "--out", str(out), "--base-url",
                           "http://127.0.0.1:9/v1", "--model", "m", "--quiet"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # a hang is a failure, not a stuck suite
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "a results journal must be a regular file" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.slow
def test_model_sample_into_a_fifo_writes_to_its_reader_or_refuses_one_without(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    alone = subprocess.run([sys.executable, "-m", "model.sample", "--n", "5", "--out", str(fifo)], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and alone.stderr.count("\n") == 1
    assert alone.stderr.startswith(f"error: {fifo} is a FIFO with no reader (waited ")
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    read = subprocess.run([sys.executable, "-m", "model.sample", "--n", "5", "--out", str(fifo)], cwd=REPO,
                          capture_output=True, timeout=120)
    reader.join(60)
    assert read.returncode == 0 and got[0].count(b"\n") == 5
