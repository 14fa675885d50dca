"""Conversation mode: `python -m llm.generate --mode dialogue` against the fault-injecting server."""
import csv
import json
from pathlib import Path

import orjson
import pytest

from llm.engine.dialogue import check
from llm.generate import main
from llm.testing.faults import Faults, fetch, spawned
from common.cli import run
from model.dialogue import CHAINS_DIR, load_chain, sample_dialogues
from model.dialogue.corpus import speaker_name
from model.profile import load_profile
from tests.support.paths import REPO

FAULTS = Faults(p500=0.05, wrong_turns=0.3, latency=(0.0, 0.02), seed=3)


def dialogue_cli(url: str, out: Path, *extra: str) -> list[str]:
    return ["--mode", "dialogue", "--benchmark", "meld", "--labels", "balanced", "--n-dialogues", "10",
            "--out", str(out), "--base-url", url, "--model", "test-model", "--concurrency", "4", "--quiet", *extra]


def test_dialogues_follow_their_sampled_sequences_in_meld_columns_and_resume(tmp_path):
    out = tmp_path / "d.csv"
    with spawned(FAULTS) as url:
        assert run(main, dialogue_cli(url, out)) == 0
        sent = sum(fetch(url, "_stats")["kinds"].values())
        assert fetch(url, "_stats")["kinds"].get("dialogue", 0) > 10  # wrong answers were asked again
        assert run(main, dialogue_cli(url, out)) == 0  # a rerun resumes: nothing left to ask
        assert sum(fetch(url, "_stats")["kinds"].values()) == sent
    results = {d["id"]: d for d in map(orjson.loads, out.with_suffix(".jsonl").read_bytes().splitlines())}
    assert sorted(results) == list(range(10))
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"]
    expected = sample_dialogues(load_profile("jp", "conversation"), load_chain(CHAINS_DIR / "meld.json"), range(10),
                                0, labels="balanced")
    for want in expected:
        got = results[want["id"]]
        if got["attempt"] == want["attempt"]:
            assert [(t["speaker"], t["emotion"]) for t in got["turns"]] == \
                [(t["speaker"], t["emotion"]) for t in want["turns"]]
        mine = [r for r in rows if int(r["Dialogue_ID"]) == want["id"]]
        assert [int(r["Utterance_ID"]) for r in mine] == list(range(got["n_turns"]))
        assert [r["Emotion"] for r in mine] == [t["emotion"] for t in got["turns"]]
        assert all(r["Utterance"] for r in mine)


def test_answers_that_break_the_sequence_are_rejected():
    dialogue = {"n_turns": 2, "turns": [{"speaker": 0, "emotion": "joy"}, {"speaker": 1, "emotion": "fear"}]}
    good = [{"speaker": speaker_name(0), "utterance": "Yes!", "emotion": "joy"},
            {"speaker": speaker_name(1), "utterance": "Oh no.", "emotion": "fear"}]
    turns, problem = check(json.dumps({"turns": good}), dialogue)
    assert problem is None and [t["text"] for t in turns] == ["Yes!", "Oh no."]
    for broken, why in [
        (good[:1], "wrong turn count"),
        ([good[0], {**good[1], "emotion": "joy"}], "wrong emotion"),
        ([good[0], {**good[1], "speaker": speaker_name(0)}], "wrong speaker"),
        ([good[0], {**good[1], "utterance": "  "}], "empty utterance"),
    ]:
        assert check(json.dumps({"turns": broken}), dialogue) == (None, why)
    assert check("no json here", dialogue) == (None, "unparseable")


@pytest.mark.parametrize("argv, message", [
    (["--n-dialogues", "5", "--benchmark", "emorynlp"], "no fitted chain is shipped for benchmark 'emorynlp'"),
    (["--n-dialogues", "5", "--n", "5"], "dialogue mode needs --n-dialogues"),
    (["--n-dialogues", "5", "--labels", "skewed"], "argument --labels"),
    (["--n-dialogues", "5", "--benchmark", "emorynlp", "--chain", str(CHAINS_DIR / "meld.json")],
     "is for 'meld', not --benchmark 'emorynlp'"),
])
def test_bad_dialogue_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "d.csv"
    code = run(main, ["--mode", "dialogue", "--out", str(out), "--base-url", "http://127.0.0.1:9", "--model", "m",
                      *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_utterances_with_control_characters_are_rejected():
    dialogue = {"n_turns": 1, "turns": [{"speaker": 0, "emotion": "joy"}]}
    for utterance, why in [("Yes\x1b[31m!", "control character"), ("Yes\nno", "control character"),
                           ("Yes\u202e!", "bidi control character")]:
        turn = {"speaker": speaker_name(0), "utterance": utterance, "emotion": "joy"}
        assert check(json.dumps({"turns": [turn]}), dialogue) == (None, why)


def test_dialogue_mode_honours_an_emotion_set_holding_the_chains_labels(tmp_path):
    emotions = json.loads((REPO / "model" / "emotion_sets" / "meld.json").read_text())
    emotions["labels"][0]["definition"] = "a made-up definition of the first label"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(emotions))
    out = tmp_path / "d.csv"
    with spawned(Faults()) as url:
        argv = dialogue_cli(url, out, "--emotions", str(path))
        argv[argv.index("--n-dialogues") + 1] = "2"
        assert run(main, argv) == 0
    assert "a made-up definition of the first label" in (tmp_path / "README.md").read_text()


def test_dialogue_mode_refuses_an_emotion_set_without_the_chains_labels(tmp_path, capsys):
    out = tmp_path / "d.csv"
    with spawned(Faults()) as url:
        assert run(main, dialogue_cli(url, out, "--emotions", "carer")) == 2
        assert fetch(url, "_completed") == []
    err = capsys.readouterr().err
    assert err.startswith("error: --emotions carer lacks neutral, disgust: the chain of --benchmark meld writes ")
    assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []
