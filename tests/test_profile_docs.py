"""Domains with any profile: the custom profile of model/profiles/README.md loads and samples with the shipped sns
domain, a profile lacking what a domain restricts is told what the domain expects, and a profile's `language` and
per-language `labels` are read (and checked)."""
import json
import re
from pathlib import Path

import pytest

from common.errors import UsageError
from model.profile import PROFILES_DIR, compile_profile, load_profile
from model.records import sample_records
from model.sample import main as sample_main

DOC = PROFILES_DIR / "README.md"


def doc_profile(tmp_path: Path) -> Path:
    section = DOC.read_text().split("## A complete small custom profile", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "tiny.json"
    path.write_text(block)
    return path


def test_the_documented_custom_profile_samples_with_the_shipped_sns_domain(tmp_path, capsys):
    path = doc_profile(tmp_path)
    profile = load_profile(str(path), "sns")
    records = sample_records(profile, range(200), 3)
    assert {r["stage3"]["activity"] for r in records} == {"SNS posting"}
    assert not any(r["stage1"]["age"] == "50+" and r["stage3"]["style"] == "youth slang" for r in records)
    assert profile.labels_in("ja")["age"] == "年齢層" and profile.labels_in("fr")["age"] == "age band"
    assert sample_main(["--n", "5", "--profile", str(path), "--domain", "sns"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_a_profile_lacking_a_restricted_attribute_is_told_what_the_domain_expects(tmp_path):
    data = json.loads(doc_profile(tmp_path).read_text())
    del data["attributes"]["medium"]
    with pytest.raises(UsageError, match="domain 'sns' restricts attribute 'medium', which profile 'tiny' lacks: "
                                         "the domain expects attribute 'medium' with the categories 'SNS'"):
        load_profile(_write(tmp_path, data), "sns")
    with pytest.raises(UsageError, match="unknown category 'working' for attribute 'activity' of profile 'tiny': "
                                         "the domain expects attribute 'activity' with the categories 'working', "):
        load_profile(str(doc_profile(tmp_path)), "workplace")


def _write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_the_jp_profile_has_japanese_labels_for_every_attribute_and_stays_english_by_default():
    jp = load_profile("jp", "sns")
    assert jp.language == "en" and jp.domain.worded("ja")[0] == "ツイート" and jp.domain.worded("en")[0] == "tweet"
    ja = jp.labels_in("ja")
    assert all(ja[name] != a.label and not ja[name].isascii() for name, a in jp.attributes.items())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(language=""), "'language' must be a language code"),
    (lambda d: d["attributes"]["age"].update(labels={"ja": ""}), "attribute 'age': 'labels' must map"),
    (lambda d: d["attributes"]["age"].update(labels=["年齢"]), "attribute 'age': 'labels' must map"),
])
def test_bad_language_or_labels_are_refused(tmp_path, edit, message):
    data = json.loads(doc_profile(tmp_path).read_text())
    edit(data)
    with pytest.raises(UsageError, match=message):
        compile_profile(data)
