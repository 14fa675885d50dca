"""Prompt sets as data: the shipped `en` set renders exactly the messages of the engine before prompt sets existed
(tests/prompt_reference.py keeps those builders), the `ja` set writes Japanese, and bad sets are refused at load."""
import re
from pathlib import Path

import pytest

from tests.support import prompt_reference as ref
from common.errors import UsageError
from eval.judge import CRITERIA, judge_messages
from llm.engine import messages as P
from llm.engine.dialogue import DialogueSettings
from llm.engine.dialogue import messages as dialogue_messages
from llm.engine.promptset import FIELDS, KINDS, SETS_DIR, load_prompts, shipped
from model.dialogue import CHAINS_DIR, load_chain, sample_dialogues
from model.profile import load_profile
from model.records import sample_records
from tests.support.paths import REPO

EN = shipped("en")
README = REPO / "llm" / "prompts" / "README.md"


@pytest.mark.parametrize("profile, domain", [("jp", "sns"), ("us", "workplace"), ("jp", None)])
def test_en_renders_todays_text_mode_and_judge_messages(profile, domain):
    prof = load_profile(profile, domain)
    records = sample_records(prof, range(25), 11)
    records.append({**records[0], "stage3": {}})  # a record without a situation
    records.append({"id": 99, "emotion": "fear", "stage1": {"some_attr": "x"}})  # unlabelled, underscored names
    for r in records:
        for stage in (1, 2, 3):
            assert P.validation_messages(EN, r, stage, prof.labels) == ref.validation_messages(r, stage, prof.labels)
        for fmt, context in (("short message", None), ("tweet", "Posting on SNS."), ("utterance", "")):
            for forbid in (False, True):
                assert (P.generation_messages(EN, r, prof.labels, text_format=fmt, context=context,
                                              forbid_label=forbid)
                        == ref.generation_messages(r, prof.labels, text_format=fmt, context=context,
                                                   forbid_label=forbid))
        text = f"Text {r['id']}: so {{this}} is it. Really!"
        assert P.score_messages(EN, text, r["emotion"]) == ref.score_messages(text, r["emotion"])
        assert judge_messages(EN, text, r["emotion"]) == ref.judge_messages(text, r["emotion"], CRITERIA)


@pytest.mark.parametrize("profile", ["jp", "us"])
def test_en_renders_todays_dialogue_messages(profile):
    prof = load_profile(profile, "conversation")
    for d in sample_dialogues(prof, load_chain(CHAINS_DIR / "meld.json"), range(15), 2):
        assert dialogue_messages(DialogueSettings(labels=prof.labels), d) == ref.dialogue_messages(d, prof.labels)


def test_ja_set_writes_japanese_with_japanese_labels_and_definitions():
    ja = shipped("ja")
    prof = load_profile("jp", "sns")
    record = sample_records(prof, [0], 0)[0]
    fmt, context = prof.domain.worded("ja")
    messages = P.generation_messages(ja, record, prof.labels_in("ja"), text_format=fmt, context=context,
                                     definition="良いことがあったときの明るく幸せな気持ち")
    user = messages[1]["content"]
    assert ja.language == "ja" and "年齢層" in user and "age band" not in user
    assert "ツイート" in user and "良いことがあったときの明るく幸せな気持ち" in user and "日本語" in user
    assert ja.hash != EN.hash and ja.cache_tag == f"prompts:{ja.hash}" and EN.cache_tag is None


def test_every_field_of_every_kind_is_documented():
    doc = README.read_text()
    for kind in KINDS:
        assert f"`{kind}`" in doc
        for name in FIELDS[kind]:
            assert f"`{name}`" in doc, (kind, name)


def custom(tmp_path, edit=lambda text: text, name="mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(edit((SETS_DIR / "en.toml").read_text()))
    return path


def test_a_copy_of_en_is_en_and_an_edited_one_is_not(tmp_path):
    same = load_prompts(str(custom(tmp_path)))
    assert same.hash == EN.hash and same.cache_tag is None
    edited = load_prompts(str(custom(tmp_path, lambda t: t.replace("Setting: ", "Where: "), "b.toml")))
    assert edited.hash != EN.hash and edited.cache_tag
    record = {"id": 0, "emotion": "joy", "stage1": {"age": "30"}}
    assert "Where: home" in P.generation_messages(edited, record, {}, context="home")[1]["content"]
    directory = tmp_path / "set"
    directory.mkdir()
    custom(directory, name="prompts.toml")
    assert load_prompts(str(directory)).hash == EN.hash


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("{{ persona }}", "{{ persona }} {{ hobby }}"),
     r"\[generation\]\.user uses unknown field 'hobby'"),
    (lambda t: t.replace("{% if situation %}", "{% if situation %"),
     r"\[generation\]\.user: template syntax error on line"),
    (lambda t: t.replace("{{ described }}", "{{ described", 1), r"\[validation_1\]\.user: template syntax error"),
    (lambda t: t.replace("[score]", "[scores]"), r"unknown table 'scores'"),
    (lambda t: re.sub(r"\[judge\]\nsystem = .*\n", "[judge]\n", t), r"missing \[judge\]\.system"),
    (lambda t: t[: t.index("[dialogue]")], r"missing the \[dialogue\] template"),
    (lambda t: t.replace('language = "en"\n', ""), "needs a 'language'"),
    (lambda t: t + "\n[[broken", "not valid TOML"),
])
def test_bad_sets_are_refused_at_load(tmp_path, edit, message):
    with pytest.raises(UsageError, match=message):
        load_prompts(str(custom(tmp_path, edit)))


def test_language_must_match_the_set_and_unknown_sets_are_named():
    with pytest.raises(UsageError, match="prompt set 'en' has no templates for language 'ja'"):
        load_prompts("en", "ja")
    with pytest.raises(UsageError, match="no shipped prompt set for language 'fr'"):
        load_prompts(None, "fr")
    with pytest.raises(UsageError, match="unknown prompt set 'klingon'"):
        load_prompts("klingon")
    assert load_prompts(None, "ja").name == "ja" and load_prompts(None).name == "en"


def test_a_field_used_wrongly_fails_at_render_as_a_usage_error(tmp_path):
    bad = load_prompts(str(custom(tmp_path, lambda t: t.replace("{{ persona }}", "{{ persona.nothing }}"))))
    with pytest.raises(UsageError, match=r"\[generation\]\.user"):
        P.generation_messages(bad, {"id": 0, "emotion": "joy", "stage1": {"a": "b"}}, {})


# ---- issue 26: a template bounded in time, size and depth --------------------------------------------------------

BOMBS = {  # name: (what goes before the [generation] user template, what the error says)
    "nested-loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                     "rendering takes more than 2 s"),
    "exponential-macro": ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
                          "rendering takes more than 2 s"),
    "recursive-macro": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion too deep"),
    "string-times-huge": ('{{ "x" * 10 ** 12 }}', "a text of 1,000,000,000,000 characters"),
    "string-times-big": ('{{ "x" * 1000000 }}', "a text of 1,000,000 characters"),
    "doubling": ('{% set a = "x" * 60000 %}{{ a + a }}', "a text of 120,000 characters"),
    "long-output": ("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}", "characters (at most 100,000)"),
    "replace": ('{{ ("x" * 90000) | replace("x", "y" * 90000) }}', "characters (at most 100,000)"),
    "join": ('{{ range(90000) | join("x" * 90000) }}', "characters (at most 100,000)"),
    "indent": ('{{ ("x\\n" * 40000) | indent(90000) }}', "characters (at most 100,000)"),
    "center": ('{{ "x" | center(10 ** 9) }}', "a text of 1,000,000,000 characters"),
    "printf": ('{{ "%099999999d" % 1 }}', "a text of 99,999,999 characters"),
    "power": ("{{ 10 ** (10 ** 10) }}", "an exponent of 10000000000"),
    "string-method": ('{{ "x".ljust(50000) }}', "unsafe"),
}


def with_bomb(text: str, bomb: str) -> str:
    start = text.index("[generation]")
    user = text.index("user = '''", start) + len("user = '''")
    return text[:user] + bomb + text[user:]


@pytest.mark.parametrize("bomb, said", BOMBS.values(), ids=BOMBS.keys())
def test_a_template_past_its_time_size_or_depth_bound_fails_its_render_naming_it(tmp_path, bomb, said):
    bombed = load_prompts(str(custom(tmp_path, lambda t: with_bomb(t, bomb))))  # loads: it is valid Jinja2
    record = {"id": 0, "emotion": "joy", "stage1": {"age": "30"}}
    with pytest.raises(UsageError, match=r"^prompt set 'en': \[generation\]\.user: ") as refused:
        P.generation_messages(bombed, record, {})
    assert said in str(refused.value)


def test_a_bounded_template_still_renders_what_a_prompt_needs(tmp_path):
    fine = ("{% for i in range(1000) %}{% if loop.last %}{{ loop.length }} {% endif %}{% endfor %}"
            '{{ ("ab" * 100) | replace("a", "x") | length }} {{ [1, 2, 3] | join(", ") }} {{ "%5.1f" % 2.25 }}')
    rendered = load_prompts(str(custom(tmp_path, lambda t: with_bomb(t, fine))))
    text = P.generation_messages(rendered, {"id": 0, "emotion": "joy", "stage1": {"age": "30"}}, {})[1]["content"]
    assert text.startswith("1000 200 1, 2, 3   2.2")


def test_a_bombed_template_stops_the_run_before_any_request(tmp_path):
    from common.cli import run
    from llm.generate import main
    from llm.testing.faults import Faults, fetch, spawned

    prompts = custom(tmp_path, lambda t: with_bomb(t, BOMBS["nested-loops"][0]))
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        code = run(main, ["--n", "2", "--out", str(out), "--domain", "sns", "--base-url", url, "--model",
                          "test-model", "--quiet", "--prompts", str(prompts)])
        sent = fetch(url)["arrivals"]
    assert code == 2 and sent == 0 and not out.exists()
