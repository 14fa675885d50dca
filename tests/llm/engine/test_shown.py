"""Japanese end to end: `llm.generate --profile jp --language ja` against the test server shows every attribute
value, relationship and emotion in Japanese in every request it sends (validation, generation, score, dialogue; the
judge too), no English value where a Japanese label exists, while the results keep the canonical values and labels
with what the prompts showed under `shown`; `en` runs carry no `shown`; the dialogue's answers use the shown names
and its results the labels; the card, the flat formats and eval's readers take the new key; bad label files are one
`error:` line."""
import csv
import io
import json
import re
from pathlib import Path

import orjson
import pytest

from common.cli import run
from common.tables import read_file
from eval.browse import browse
from eval.data import read_labelled
from eval.judge import main as judge_main
from llm.engine.dialogue import check
from llm.generate import main
from llm.testing.faults import Faults, fetch, spawned
from model.dialogue.corpus import speaker_name
from model.dialogue.sampler import RELATIONSHIPS, relationship_labels
from model.emotions import PRESETS, SETS_DIR
from model.profile import PROFILES_DIR, load_profile

JP = load_profile("jp")
LABELS = JP.labels_in("ja")  # attribute -> its Japanese name
VALUES = JP.value_labels_in("ja")  # attribute -> category -> its Japanese label
ATTRIBUTE = {label: name for name, label in LABELS.items()}
ENGLISH = {c for labels in VALUES.values() for c, shown in labels.items() if c != shown}
NAMES = {e.label: e.named("ja") for e in PRESETS["paper"].emotions}
LINE = re.compile(r"^- (.+?): (.+)$", re.MULTILINE)
GROUPS = ("stage1", "stage2", "stage3")


def cli(url, out: Path, n: int, *extra: str) -> list[str]:
    return ["--n", str(n), "--out", str(out), "--profile", "jp", "--domain", "sns", "--base-url", url,
            "--model", "test-model", "--concurrency", "4", "--quiet", *extra]


def lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def user(body: dict) -> str:
    return body["messages"][1]["content"]


def kind(body: dict) -> str:
    """"validation", "score", "dialogue" or "text": what the request's answer format asks for."""
    fmt = json.dumps(body.get("response_format", {}))
    return next((k for k, key in (("validation", '"label"'), ("score", '"score"'), ("dialogue", '"turns"'))
                 if key in fmt), "text")


def shown_lines(content: str) -> list[tuple[str, str]]:
    """(attribute, value) of every "- label: value" line of a prompt."""
    return [(ATTRIBUTE[label], value) for label, value in LINE.findall(content)]


def assert_japanese_values(content: str) -> None:
    found = shown_lines(content)
    assert found
    for attribute, value in found:
        japanese = attribute == "mbti" or value in VALUES[attribute].values()
        assert value not in ENGLISH and japanese, (attribute, value)


def expected_shown(record: dict) -> dict:
    groups = {k: {a: VALUES.get(a, {}).get(v, v) for a, v in record[k].items()} for k in GROUPS}
    return {"language": "ja", "emotion": NAMES[record["emotion"]], **groups}


def test_a_japanese_run_shows_values_and_emotions_in_japanese_and_keeps_the_canonical_ones(tmp_path):
    out = tmp_path / "ja.jsonl"
    with spawned(Faults(language="ja")) as url:
        assert run(main, cli(url, out, 14, "--language", "ja", "--no-label-leak")) == 0
        bodies = fetch(url, "_bodies")
    assert {kind(b) for b in bodies} == {"validation", "text"}
    for body in bodies:
        assert_japanese_values(user(body))
        assert not any(f"「{e}」" in user(body) for e in NAMES)
    results = lines(out)
    assert sorted(r["emotion"] for r in results) == sorted(list(NAMES) * 2)  # the canonical labels
    for r in results:
        for k in GROUPS:
            assert all(v in JP.attributes[a].categories for a, v in r[k].items())
        assert r["shown"] == expected_shown(r)
        prompt = r["prompt"][1]["content"]
        assert f"感情「{NAMES[r['emotion']]}」" in prompt
        assert set(shown_lines(prompt)) == {(a, v) for k in GROUPS for a, v in r["shown"][k].items()}
    card = (tmp_path / "README.md").read_text()
    assert "| emotion | records | definition | shown as |" in card and "| 喜び |" in card
    assert "records keep the canonical ones, with what the prompts showed under `shown`" in card


def test_an_english_run_and_a_japanese_one_without_labels_carry_no_shown(tmp_path):
    with spawned(Faults(language="ja")) as url:
        assert run(main, cli(url, tmp_path / "en.jsonl", 4)) == 0
        english = fetch(url, "_bodies")
        assert run(main, cli(url, tmp_path / "us.jsonl", 2, "--profile", "us", "--language", "ja", "--emotions",
                             "ok,meh")) == 0
    in_english = {label: name for name, label in JP.labels.items()}
    for body in english:
        found = LINE.findall(user(body))
        assert found and all(value in JP.attributes[in_english[label]].categories for label, value in found)
    for r in lines(tmp_path / "en.jsonl"):
        assert "shown" not in r and f"clearly expressing {r['emotion']}." in r["prompt"][1]["content"]
    assert all("shown" not in r for r in lines(tmp_path / "us.jsonl"))  # no label in ja: nothing shown otherwise
    assert "shown as" not in (tmp_path / "README.md").read_text()


def test_scores_and_the_judge_name_the_emotion_in_japanese(tmp_path):
    out = tmp_path / "prior.jsonl"
    with spawned(Faults(language="ja")) as url:
        assert run(main, cli(url, out, 3, "--language", "ja", "--method", "priorwork")) == 0
        scores = [b for b in fetch(url, "_bodies") if kind(b) == "score"]
        sent = len(fetch(url, "_bodies"))
        assert run(judge_main, [str(out), "--out", str(tmp_path / "j"), "--base-url", url, "--model", "test-model",
                                "--prompts", "ja"]) == 0
        judged = fetch(url, "_bodies")[sent:]
    results = lines(out)
    assert not any(name.isascii() for name in NAMES.values())
    assert len(scores) >= 3 and {user(b).split("（")[0] for b in scores} == {
        f"目標の感情：{NAMES[r['emotion']]}" for r in results}
    assert sorted(user(b).split("（")[0] for b in judged) == sorted(f"指定された感情：{NAMES[r['emotion']]}"
                                                                   for r in results)
    assert json.loads((tmp_path / "j" / "judge.json").read_text())["judged"] == 3


def test_a_japanese_dialogue_answers_with_the_shown_names_and_keeps_the_labels(tmp_path):
    out = tmp_path / "d.csv"
    meld = {e.label: e.named("ja") for e in PRESETS["meld"].emotions}
    with spawned(Faults(language="ja", wrong_turns=0.4, seed=5)) as url:
        assert run(main, ["--mode", "dialogue", "--n-dialogues", "6", "--out", str(out), "--profile", "jp",
                          "--language", "ja", "--base-url", url, "--model", "test-model", "--quiet"]) == 0
        bodies = fetch(url, "_bodies")
    for body in bodies:
        schema = body["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["turns"]["items"]["properties"]["emotion"]["enum"] == list(meld.values())
        assert_japanese_values(user(body))
        relationship = re.search(r"^話者どうしの関係：(.+)$", user(body), re.MULTILINE).group(1)
        assert relationship in relationship_labels("ja").values()
    results = lines(tmp_path / "d.jsonl")
    assert len(bodies) > len(results) == 6  # answers with an emotion other than the shown one were asked again
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    assert summary["generation"]["wrong emotion"] > 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["Emotion"] for r in rows] == [t["emotion"] for d in results for t in d["turns"]]
    for d in results:
        assert all(any(0x3041 <= ord(c) <= 0x3096 for c in t["text"]) for t in d["turns"])  # Japanese utterances
        assert d["relationship"] in RELATIONSHIPS["categories"] and all(t["emotion"] in meld for t in d["turns"])
        shown = d["shown"]
        assert shown["language"] == "ja" and shown["relationship"] == relationship_labels("ja")[d["relationship"]]
        assert shown["turns"] == [{"emotion": meld[t["emotion"]]} for t in d["turns"]]
        assert shown["setting"] == {a: VALUES[a][v] for a, v in d["setting"].items()}
        assert [s["stage1"]["gender"] for s in shown["speakers"]] == [VALUES["gender"][s["stage1"]["gender"]]
                                                                      for s in d["speakers"]]


def test_a_dialogue_answer_is_read_in_the_shown_names_and_turned_back_into_labels():
    dialogue = {"n_turns": 2, "turns": [{"speaker": 0, "emotion": "joy"}, {"speaker": 1, "emotion": "fear"}]}
    named = {"joy": "喜び", "fear": "恐怖"}.get
    answer = [{"speaker": speaker_name(0), "utterance": "やった！", "emotion": "喜び"},
              {"speaker": speaker_name(1), "utterance": "怖い。", "emotion": "恐怖"}]
    turns, problem = check(json.dumps({"turns": answer}), dialogue, named)
    assert problem is None and [t["emotion"] for t in turns] == ["joy", "fear"]
    labelled = [{**answer[0], "emotion": "joy"}, answer[1]]  # the label where the prompt showed the name
    assert check(json.dumps({"turns": labelled}), dialogue, named) == (None, "wrong emotion")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_flat_outputs_keep_canonical_columns_with_shown_as_one_json_column_and_eval_reads_them(tmp_path, fmt):
    out = tmp_path / f"ja.{fmt}"
    with spawned(Faults(language="ja")) as url:
        assert run(main, cli(url, out, 4, "--language", "ja")) == 0
    journal = lines(Path(f"{out}.journal.jsonl"))
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
    assert [r["gender"] for r in rows] == [r["stage1"]["gender"] for r in journal]
    assert [orjson.loads(r["shown"]) for r in rows] == [r["shown"] for r in journal]
    assert read_labelled(out).data.emotions == [r["emotion"] for r in journal]  # eval reads the labels
    view = browse(read_file(out), out)
    assert view.columns == ["text", "emotion", "validation", "persona and other fields"]
    assert all("shown" not in row[-1] and "gender: " in row[-1] for row in view.rows)


@pytest.mark.parametrize("what, message", [
    ("profile", "attribute 'gender': value_labels.ja: unknown category 'man' (categories: male, female, non-binary)"),
    ("emotions", "labels[0] ('joy').names.ja: expected a non-empty string"),
])
def test_a_bad_label_file_is_one_error_line_exit_2_nothing_sent_or_written(tmp_path, capsys, what, message):
    work = tmp_path / "work"
    work.mkdir()
    if what == "profile":
        data = json.loads((PROFILES_DIR / "jp.json").read_text())
        data["attributes"]["gender"]["value_labels"]["ja"]["man"] = "男"
    else:
        data = json.loads((SETS_DIR / "paper.json").read_text())
        data["labels"][0]["names"]["ja"] = ""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, ensure_ascii=False))
    with spawned(Faults(language="ja")) as url:
        argv = cli(url, work / "out.jsonl", 3, "--language", "ja", f"--{what}", str(bad))
        assert run(main, argv) == 2
        assert fetch(url, "_bodies") == []
    err = capsys.readouterr().err
    where = f"profile {bad}" if what == "profile" else str(bad)
    assert err == f"error: {where}: {message}\n"
    assert list(work.iterdir()) == []
