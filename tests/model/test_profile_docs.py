"""Domains with any profile: the custom profile of model/profiles/README.md loads and samples with the shipped sns
domain, a profile lacking what a domain restricts is told what the domain expects, and a profile's `language` and
per-language `labels` and `value_labels` are read (and checked, errors naming the file)."""
import json
import re
from pathlib import Path

import pytest

from common.errors import UsageError
from model.dialogue.sampler import RELATIONSHIPS, relationship_labels
from model.profile import DOMAINS_DIR, PROFILES_DIR, compile_profile, load_profile
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
    assert profile.value_labels_in("ja") == {"gender": {"male": "男性", "female": "女性"},
                                             "region": {"city": "都市部", "countryside": "地方"}}
    assert profile.value_labels_in("fr") == {}
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


def test_the_jp_profile_shows_every_value_in_japanese_but_mbti_codes():
    jp = load_profile("jp")
    shown = jp.value_labels_in("ja")
    assert set(shown) == set(jp.attributes) - {"mbti"}
    for name, labels in shown.items():
        assert list(labels) == list(jp.attributes[name].categories), name  # every category, in order
        assert all(not label.isascii() for label in labels.values() if label != "SNS"), name
    assert shown["region"]["Tokyo"] == "東京都" and shown["region"]["Osaka"] == "大阪府"
    assert shown["region"]["Hokkaido"] == "北海道" and shown["region"]["Kyoto"] == "京都府"
    assert all(label[-1] in "都道府県" for label in shown["region"].values())
    for domain in DOMAINS_DIR.glob("*.json"):  # what a domain lets through is a category of the profile, shown too
        for attr, values in json.loads(domain.read_text())["restrict"].items():
            assert set(values) <= set(shown[attr]), (domain.name, attr)
    assert set(relationship_labels("ja")) == set(RELATIONSHIPS["categories"]) and relationship_labels("en") == {}


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["attributes"]["gender"].update(value_labels={"ja": {"man": "男性"}}),
     "attribute 'gender': value_labels.ja: unknown category 'man' (categories: male, female)"),
    (lambda d: d["attributes"]["gender"].update(value_labels={"ja": {"male": 1}}),
     "attribute 'gender': value_labels.ja.male: expected a non-empty string, got 1"),
    (lambda d: d["attributes"]["gender"].update(value_labels={"ja": {"male": " "}}),
     "attribute 'gender': value_labels.ja.male: expected a non-empty string, got ' '"),
    (lambda d: d["attributes"]["gender"].update(value_labels={"ja": ["男性"]}),
     "attribute 'gender': value_labels.ja must be an object of category -> label"),
    (lambda d: d["attributes"]["gender"].update(value_labels=["男性"]),
     "attribute 'gender': 'value_labels' must map language codes to {category: label} objects"),
    (lambda d: d["attributes"]["region"].update(value_labels={"ja": {"city": "都会", "countryside": "都会"}}),
     "attribute 'region': value_labels.ja: 'city' and 'countryside' are both shown as '都会'"),
])
def test_bad_value_labels_are_one_error_naming_the_file_attribute_language_and_value(tmp_path, edit, message):
    data = json.loads(doc_profile(tmp_path).read_text())
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(UsageError) as raised:
        load_profile(path, "sns")
    assert str(raised.value) == f"profile {path}: {message}"
