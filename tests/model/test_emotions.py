"""Emotion sets as data files: the presets keep their labels and order (so model.sample's output is unchanged),
carry definitions, words and mappings, and a user's file is checked like them."""
import json
import subprocess
import sys

import pytest

from common.errors import UsageError
from model.emotions import PRESETS, SETS_DIR, load_emotions, resolve_emotions
from model.sample import main as sample_main
from tests.support.paths import REPO

BEFORE = {  # the labels of model/emotions.json before the presets became files
    "paper": ["joy", "anger", "sadness", "pleasure", "surprise", "fear", "neutral"],
    "carer": ["sadness", "joy", "love", "anger", "fear", "surprise"],
    "meld": ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"],
    "emorynlp": ["neutral", "joyful", "peaceful", "powerful", "scared", "mad", "sad"],
    "iemocap6": ["happy", "sad", "neutral", "angry", "excited", "frustrated"],
}


def test_presets_keep_their_labels_and_order_and_have_definitions():
    assert list(PRESETS) == list(BEFORE)
    for name, labels in BEFORE.items():
        assert resolve_emotions(name) == labels
        for e in PRESETS[name].emotions:
            assert e.definition.strip() and e.definition != e.label and e.defined("ja") != e.definition
            assert e.words["ja"] and e.leak_words("ja")[0] == e.label and e.leak_words("en") == (e.label,)
            assert not e.named("ja").isascii() and e.named("en") == e.label and e.named("ja") in e.leak_words("ja")
        names = [e.named("ja") for e in PRESETS[name].emotions]
        assert len(set(names)) == len(names)
    paper = ["喜び", "怒り", "悲しみ", "楽しさ", "驚き", "恐怖", "中立"]
    assert [e.named("ja") for e in PRESETS["paper"].emotions] == paper
    assert load_emotions("a,b").emotions[0].named("ja") == "a"


def test_mappings_between_presets():
    paper_to_carer = PRESETS["paper"].mapping("carer")
    assert paper_to_carer["pleasure"] == "joy" and paper_to_carer["neutral"] is None
    assert set(paper_to_carer.values()) - {None} <= set(BEFORE["carer"])
    assert PRESETS["carer"].mapping("paper")["love"] is None
    assert PRESETS["paper"].mapping("iemocap6") == dict.fromkeys(BEFORE["paper"])  # no mapping given


def write(tmp_path, labels, name="mine.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"name": "mine", "labels": labels}, ensure_ascii=False))
    return str(path)


def test_a_users_file_with_the_papers_labels_samples_exactly_like_the_preset(tmp_path, capsys):
    data = json.loads((SETS_DIR / "paper.json").read_text())
    for e in data["labels"]:
        e["definition"] = f"my own words for {e['label']}"
    mine = write(tmp_path, data["labels"])
    assert load_emotions(mine).labels == BEFORE["paper"]
    assert load_emotions(mine).emotions[0].definition == "my own words for joy"
    outputs = []
    for spec in ("paper", mine):
        assert sample_main(["--n", "30", "--domain", "sns", "--emotions", spec]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 30


@pytest.mark.parametrize("labels, message", [
    ([{"label": "a"}, {"label": "a"}], "label 'a' appears twice"),
    ([{"label": "a"}, {"label": " "}], r"labels\[1\]: empty or missing label"),
    ([{"label": "a"}, {"definition": "no label"}], r"labels\[1\]: empty or missing label"),
    ([{"label": "a"}], "at least 2 emotions"),
    ([{"label": "a", "maps": {"carer": "bliss"}}, {"label": "b"}], "'a' maps to unknown label 'bliss' of 'carer'"),
    ([{"label": "a", "maps": {"plutchik": "joy"}}, {"label": "b"}], "unknown label set 'plutchik'"),
    ([{"label": "a", "words": {"ja": "喜び"}}, {"label": "b"}], r"words\.ja: expected a list"),
    ([{"label": "a", "definition": ""}, {"label": "b"}], r"definition: expected a non-empty string"),
    ([{"label": "a", "names": {"ja": 1}}, {"label": "b"}],
     r"labels\[0\] \('a'\)\.names\.ja: expected a non-empty string"),
    ([{"label": "a", "names": "喜び"}, {"label": "b"}], r"\('a'\)\.names: expected an object keyed by language"),
    ([{"label": "a", "names": {"ja": "喜び"}}, {"label": "b", "names": {"ja": "喜び"}}],
     "'a' and 'b' are both named '喜び' in 'ja'"),
    ([{"label": "a", "names": {"ja": "b"}}, {"label": "b"}], "'a' and 'b' are both named 'b' in 'ja'"),
])
def test_bad_emotion_files_are_refused(tmp_path, labels, message):
    with pytest.raises(UsageError, match=message):
        load_emotions(write(tmp_path, labels))


@pytest.mark.slow
def test_a_bad_emotion_file_is_one_line_exit_2_and_nothing_written(tmp_path):
    bad = write(tmp_path, [{"label": "joy"}, {"label": "joy"}])
    out = tmp_path / "s.jsonl"
    proc = subprocess.run([sys.executable, "-m", "model.sample", "--n", "5", "--emotions", bad, "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"error: {bad}: label 'joy' appears twice"]
    assert not out.exists()


def test_help_lists_the_presets_and_emotion_files(capsys):
    with pytest.raises(SystemExit):
        sample_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "paper, carer, meld, emorynlp, iemocap6" in text and "emotion file" in text
