"""`python -m model.export` and `python -m llm.prompts`: the shipped data files written out byte for byte, to stdout
or a file, whatever the install; an unknown name is one line, exit 2, nothing written."""
import subprocess
import sys

import pytest

from llm.engine.promptset import SETS_DIR, load_prompts
from model.dialogue.chain import CHAINS_DIR
from model.emotions import SETS_DIR as EMOTIONS_DIR, load_emotions
from model.profile import DOMAINS_DIR, PROFILES_DIR, load_profile


def command(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, cwd=cwd)


@pytest.mark.parametrize("kind, name, source", [("profile", "us", PROFILES_DIR / "us.json"),
                                                 ("domain", "workplace", DOMAINS_DIR / "workplace.json"),
                                                 ("emotions", "carer", EMOTIONS_DIR / "carer.json"),
                                                 ("chain", "meld", CHAINS_DIR / "meld.json")])
def test_model_export_writes_the_shipped_file(tmp_path, kind, name, source):
    out = tmp_path / f"mine-{name}.json"
    proc = command("model.export", kind, name, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == source.read_bytes() == command("model.export", kind, name).stdout


def test_exported_files_load_back_by_path(tmp_path):
    for kind, name in [("profile", "jp"), ("emotions", "paper")]:
        assert command("model.export", kind, name, "--out", str(tmp_path / f"{name}.json")).returncode == 0
    assert load_profile(str(tmp_path / "jp.json")).name == load_profile("jp").name
    assert load_emotions(str(tmp_path / "paper.json")).labels == load_emotions("paper").labels
    assert command("llm.prompts", "export", "ja", "--out", str(tmp_path / "ja.toml")).returncode == 0
    assert (tmp_path / "ja.toml").read_bytes() == (SETS_DIR / "ja.toml").read_bytes()
    assert load_prompts(str(tmp_path / "ja.toml")).hash == load_prompts("ja").hash


@pytest.mark.parametrize("argv, message", [(["model.export", "profile", "fr"], "no shipped profile 'fr' (shipped: jp, us)"),
                                           (["llm.prompts", "export", "de"], "no shipped prompt set 'de' (shipped: en, ja)")])
def test_an_unknown_name_is_one_line_and_nothing_written(tmp_path, argv, message):
    proc = command(*argv, "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and proc.stderr.decode() == f"error: {message}\n" and not list(tmp_path.iterdir())


def test_the_prompt_sets_are_listed():
    assert command("llm.prompts", "list").stdout.decode().split() == ["en", "ja"]
