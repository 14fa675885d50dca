"""Output language and prompt sets end to end: the post-checks per language, and `llm.generate` / `eval.judge`
against the test server (which records every request body): the rendered prompts are what it receives, a Japanese
run passes the Japanese checks and regenerates what breaks them, two prompt sets never share a cache entry, a
resume with another set is refused, and bad sets or emotion files stop a run before anything is sent or written."""
import json
from pathlib import Path

import orjson
import pytest

from common.cli import run
from eval.judge import main as judge_main
from llm.engine.answers import text_problem
from llm.engine.languages import GENERIC, rules_for
from llm.engine.promptset import SETS_DIR, shipped
from llm.generate import main
from llm.testing.faults import Faults, fetch, spawned

JA = shipped("ja")
HIRAGANA = range(0x3041, 0x3097)


def test_japanese_sentences_end_at_full_and_half_width_terminators_without_spaces():
    assert rules_for("ja").sentences("今日は晴れ。電車が遅れた。最悪だ。") == 3
    assert rules_for("ja").sentences("すごい!楽しい!やった!") == 3
    assert rules_for("en").sentences("すごい!楽しい!やった!") == 1  # the English rule needs a space after "!"
    assert rules_for("ja").sentences("本当に？信じられない．ｷﾀ｡") == 3
    assert rules_for("ja").sentences("やっと終わった…！まだ胸がどきどきしてる！") == 2
    assert text_problem("今日は晴れ。電車が遅れた。最悪だ。", language="ja") == "more than 2 sentences"
    assert text_problem("やっと報告書が終わった。まだ胸がどきどきしてる！", language="ja") is None


@pytest.mark.parametrize("text", ["AIとして、この気持ちを書きます。", "私はAIなので感情はありません。", "私は AI です。",
                                  "はい、以下がツイートです。", "言語モデルとしてお答えします。", "As an AI, I feel joy."])
def test_japanese_meta_text(text):
    assert text_problem(text, language="ja") == "meta text"


def test_japanese_leaks_are_the_emotions_words_anywhere():
    words = ("喜び", "嬉しい")
    assert text_problem("今日は本当に嬉しい！", language="ja", leak=("joy", *words)) == \
        "emotion word leaked"
    assert text_problem("joyが止まらない。", language="ja", leak=("joy", *words)) == \
        "emotion word leaked"
    assert text_problem("今日は本当に嬉しい！", language="ja") is None  # no --no-label-leak
    assert text_problem("顔がにやけて仕方ない！", language="ja", leak=("joy", *words)) is None
    assert text_problem("Enjoying it!", leak=("joy",)) is None  # English: whole words only


def test_a_language_without_rules_gets_the_generic_rule_which_still_checks():
    assert rules_for("fr") is GENERIC and rules_for("ja") is not GENERIC
    assert text_problem("Quelle journée ! Je suis épuisée. Vraiment.", language="fr") == \
        "more than 2 sentences"
    assert text_problem("As an AI I cannot feel.", language="fr") == "meta text"
    assert text_problem("Quelle joie, enfin !", language="fr", leak=("joie",)) == "emotion word leaked"
    assert text_problem("Enfin les vacances !", language="fr", leak=("joie",)) is None


def cli(url, out: Path, n: int, *extra: str) -> list[str]:
    return ["--n", str(n), "--out", str(out), "--profile", "jp", "--domain", "sns", "--base-url", url,
            "--model", "test-model", "--concurrency", "4", "--quiet", *extra]


def lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def text_bodies(url) -> list[list[dict]]:
    """The messages of every text (generation) request the server received."""
    return [b["messages"] for b in fetch(url, "_bodies")
            if "text" in json.dumps(b.get("response_format", {})) and '"label"' not in json.dumps(b)]


def test_a_japanese_run_writes_japanese_from_japanese_prompts(tmp_path):
    out = tmp_path / "ja.jsonl"
    with spawned(Faults(language="ja")) as url:
        assert run(main, cli(url, out, 7, "--language", "ja", "--no-label-leak")) == 0
        bodies = fetch(url, "_bodies")
        sent = text_bodies(url)
    results = lines(out)
    assert len(results) == 7
    for r in results:
        assert any(ord(c) in HIRAGANA for c in r["text"])
        assert text_problem(r["text"], language="ja") is None
        assert r["prompt_set"] == JA.hash and "年齢層" in r["prompt"][1]["content"]
        assert "ツイート" in r["prompt"][1]["content"]
    assert sorted(map(canonical, sent)) == sorted(canonical(r["prompt"]) for r in results)  # rendered = sent
    validations = [b for b in bodies if '"label"' in json.dumps(b.get("response_format", {}))]
    assert validations and all("この組み合わせは" in b["messages"][1]["content"] for b in validations)
    summary = json.loads((tmp_path / "ja.jsonl.summary.json").read_text())
    assert summary["prompt_set"] == {"name": "ja", "hash": JA.hash, "language": "ja"}


def test_japanese_answers_breaking_the_japanese_checks_are_regenerated(tmp_path):
    answers = ("今日は晴れ。電車が遅れた。最悪だ。", "AIとして、気持ちを書きます。", "嬉しい！最高の一日。",
               "やっと報告書が終わった。まだ胸がどきどきしてる！")
    out = tmp_path / "ja.jsonl"
    with spawned(Faults(language="ja", text_answers=answers)) as url:
        assert run(main, cli(url, out, 1, "--language", "ja", "--no-label-leak", "--no-validate")) == 0
        assert len(fetch(url, "_bodies")) == 4
    [result] = lines(out)
    assert result["emotion"] == "joy" and result["text"] == answers[-1] and result["text_attempts"] == 4
    summary = json.loads((tmp_path / "ja.jsonl.summary.json").read_text())
    assert summary["generation"] == {"more than 2 sentences": 1, "meta text": 1, "emotion word leaked": 1,
                                     "accepted": 1}


def edited_en(tmp_path: Path, kind: str = "judge") -> Path:
    """A copy of `en` differing only in the `kind` template: text mode renders the same messages as `en`."""
    text = (SETS_DIR / "en.toml").read_text()
    start = text.index(f"[{kind}]\nsystem = '''") + len(f"[{kind}]\nsystem = '''")
    path = tmp_path / "mine.toml"
    path.write_text(text[:start] + "Be strict. " + text[start:])
    return path


def test_two_prompt_sets_never_share_cache_entries_even_with_equal_messages(tmp_path):
    cache, mine = str(tmp_path / "shared.cache.sqlite"), str(edited_en(tmp_path))
    with spawned(Faults()) as url:
        assert run(main, cli(url, tmp_path / "en.jsonl", 4, "--cache", cache)) == 0
        first = len(fetch(url, "_bodies"))
        assert run(main, cli(url, tmp_path / "mine.jsonl", 4, "--cache", cache, "--prompts", mine)) == 0
        second = fetch(url, "_bodies")
        assert run(main, cli(url, tmp_path / "again.jsonl", 4, "--cache", cache)) == 0  # en: all cached
        third = fetch(url, "_bodies")
    assert first > 0 and len(second) == 2 * first and len(third) == len(second)
    same = sorted(map(canonical, second[:first])) == sorted(map(canonical, second[first:]))
    assert same  # the same requests, sent again under the other set
    en_texts, mine_texts = lines(tmp_path / "en.jsonl"), lines(tmp_path / "mine.jsonl")
    assert {r["prompt_set"] for r in en_texts} == {shipped("en").hash} != {r["prompt_set"] for r in mine_texts}


def test_a_resume_with_another_prompt_set_is_refused_with_one_line(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:
        assert run(main, cli(url, out, 2)) == 0
        before, sent = out.read_bytes(), len(fetch(url, "_bodies"))
        capsys.readouterr()
        assert run(main, cli(url, out, 4, "--prompts", str(edited_en(tmp_path, "generation")))) == 2
        assert len(fetch(url, "_bodies")) == sent
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {out} holds results written with another prompt set")
    assert out.read_bytes() == before


def bad_set(tmp_path: Path, old: str, new: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text((SETS_DIR / "en.toml").read_text().replace(old, new, 1))
    return str(path)


def bad_emotions(tmp_path: Path, labels) -> str:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"labels": labels}))
    return str(path)


@pytest.mark.parametrize("make, message", [
    (lambda d: ["--prompts", bad_set(d, "{{ persona }}", "{{ persona }}{{ hobby }}")], "unknown field 'hobby'"),
    (lambda d: ["--prompts", bad_set(d, "{% if context %}", "{% if context")], "template syntax error"),
    (lambda d: ["--prompts", bad_set(d, "[score]", "[unused]")], "unknown table 'unused'"),
    (lambda d: ["--prompts", bad_set(d, "[dialogue]", "[dialog]")], "unknown table 'dialog'"),
    (lambda d: ["--prompts", bad_set(d, "{{ persona }}", "{{ persona.x }}")], "[generation].user"),  # at render
    (lambda d: ["--prompts", bad_set(d, "{{ s.persona }}", "{{ s.persona.x }}")], "[dialogue].user"),
    (lambda d: ["--emotions", bad_emotions(d, [{"label": "a"}, {"label": "a"}])], "label 'a' appears twice"),
    (lambda d: ["--emotions", bad_emotions(d, [{"label": "a"}, {"label": ""}])], "empty or missing label"),
    (lambda d: ["--emotions", bad_emotions(d, [{"label": "a", "maps": {"carer": "x"}}, {"label": "b"}])],
     "maps to unknown label 'x' of 'carer'"),
    (lambda d: ["--language", "ja", "--prompts", "en"], "prompt set 'en' has no templates for language 'ja'"),
    (lambda d: ["--language", "xx"], "no shipped prompt set for language 'xx'"),
])
def test_bad_sets_and_emotion_files_are_one_line_exit_2_nothing_written_nothing_sent(tmp_path, capsys, make,
                                                                                     message):
    inputs, work = tmp_path / "in", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    for mode in ("text", "dialogue"):
        argv = cli("URL", work / "out.jsonl", 3, *make(inputs))
        if mode == "dialogue":
            argv = ["--mode", "dialogue", "--n-dialogues", "2", *argv[2:]]
            argv[argv.index("sns")] = "conversation"
            if "--emotions" in argv or "[generation]" in message:
                continue  # dialogue mode takes the benchmark's labels, and renders no generation template
        elif "[dialogue]" in message:
            continue  # text mode renders no dialogue template
        with spawned(Faults()) as url:
            code = run(main, [url if a == "URL" else a for a in argv])
            assert fetch(url, "_bodies") == []
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, (mode, err)
        assert list(work.iterdir()) == []


def test_a_language_without_rules_warns_and_runs_with_the_generic_rule(tmp_path, capsys):
    french = tmp_path / "fr.toml"
    french.write_text((SETS_DIR / "en.toml").read_text().replace('language = "en"', 'language = "fr"'))
    with spawned(Faults()) as url:
        assert run(main, cli(url, tmp_path / "fr.jsonl", 2, "--language", "fr", "--prompts", str(french))) == 0
    assert "warning: no post-check rules for language 'fr'" in capsys.readouterr().err
    assert len(lines(tmp_path / "fr.jsonl")) == 2


def test_dialogue_mode_and_the_judge_take_a_prompt_set(tmp_path, capsys):
    out = tmp_path / "d.jsonl"
    with spawned(Faults(language="ja")) as url:
        assert run(main, ["--mode", "dialogue", "--n-dialogues", "3", "--out", str(out), "--profile", "jp",
                          "--language", "ja", "--base-url", url, "--model", "test-model", "--quiet"]) == 0
        dialogue_bodies = fetch(url, "_bodies")
        texts = tmp_path / "t.jsonl"
        texts.write_text("".join(json.dumps({"text": f"テキスト{i}。", "emotion": "joy"}) + "\n" for i in range(3)))
        assert run(judge_main, [str(texts), "--out", str(tmp_path / "j"), "--base-url", url, "--model",
                                "test-model", "--prompts", "ja"]) == 0
        judge_bodies = fetch(url, "_bodies")[len(dialogue_bodies):]
    assert all(r["prompt_set"] == JA.hash for r in lines(out))
    assert all("話者" in b["messages"][1]["content"] for b in dialogue_bodies)
    assert len(judge_bodies) == 3 and all("指定された感情" in b["messages"][1]["content"] for b in judge_bodies)
    judged = json.loads((tmp_path / "j" / "judge.json").read_text())
    assert judged["prompt_set"]["hash"] == JA.hash and judged["judged"] == 3


def test_ray_shards_key_their_cache_by_the_prompt_set_too():
    from llm.engine.texts import Settings
    from llm.scale.tasks import Job
    from llm.transport.endpoint import parse_endpoint

    def scope(prompts):
        return Job("d", (parse_endpoint("http://127.0.0.1:1/v1/"),), "m", settings=Settings(prompts=prompts)).scope

    assert scope(shipped("en")) == "http://127.0.0.1:1/v1"  # as before prompt sets existed
    assert scope(JA) == f"http://127.0.0.1:1/v1|prompts:{JA.hash}"
