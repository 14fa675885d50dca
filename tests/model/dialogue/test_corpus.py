"""eval.erc on a conversation corpus that is not MELD: column options, a dialogue id of several columns,
train/test files; macro-F1 next to weighted F1."""
import csv

import orjson
import pytest

from eval import embed
from eval.erc import main
from common.cli import run
from model.dialogue.corpus import benchmark_labels, read_dialogues
from tests.support import embedders

EMORY = benchmark_labels("emorynlp")
HEADER = ["Utterance", "Speaker", "Emotion", "Scene_ID", "Utterance_ID", "Season", "Episode"]


class HashEmbedder(embedders.HashEmbedder):
    """Unit vectors in 8 dimensions from each text's SHA-256."""

    dim = 8


def write(path, episodes):
    """Scenes 1-3 of each episode (the same Scene_IDs in every episode), 4 turns each, EmoryNLP's capitalised labels."""
    rows = [[f"line {ep} {scene} {t}", f"['speaker {t % 2}']", EMORY[(ep + scene + t) % 7].capitalize(), scene, t,
             1, ep] for ep in episodes for scene in (1, 2, 3) for t in range(4)]
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([HEADER, *rows])
    return path


@pytest.fixture
def emory(tmp_path):
    return write(tmp_path / "emorynlp_train_final.csv", range(6)), write(tmp_path / "emorynlp_test_final.csv", (6, 7))


def test_a_dialogue_id_of_several_columns(emory):
    train, _ = emory
    columns = ("Utterance", "Speaker", "Emotion", "Season,Episode,Scene_ID", "Utterance_ID")
    dialogues = read_dialogues(train, EMORY, columns)
    assert len(dialogues) == 18 and dialogues[0]["id"] == "1/0/1" and len(dialogues[0]["turns"]) == 4
    assert len(read_dialogues(train, EMORY, (*columns[:3], "Scene_ID", "Utterance_ID"))) == 3  # scenes merged


def test_cli_with_column_options_and_files(emory, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(embed, "Embedder", HashEmbedder)
    train, test = emory
    out = tmp_path / "out"
    argv = ["--train", str(train), "--test", str(test), "--benchmark", "emorynlp", "--dialogue-col",
            "Season,Episode,Scene_ID", "--seeds", "2", "--rounds", "20", "--out", str(out)]
    assert run(main, argv) == 0, capsys.readouterr().err
    r = orjson.loads((out / "report.json").read_bytes())
    c = r["conditions"]["emorynlp_train_final.csv"]
    assert c["n_train"] == 72 and r["n_test"] == 24 and len(c["macro_f1"]) == 2
    assert 0 <= c["macro_f1_mean"] <= 1 and r["inputs"]["columns"]["dialogue-col"] == "Season,Episode,Scene_ID"
    assert "Macro-F1 (mean ± sd)" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("files, extra, message", [
    ("both", [], "missing column(s) Dialogue_ID"),
    ("both", ["--dialogue-col", "Scene_ID", "--turn-col", "Turn"], "missing column(s) Turn"),
    ("train", [], "--train FILE needs --test FILE"),
])
def test_column_and_file_errors(emory, tmp_path, capsys, files, extra, message):
    train, test = emory
    given = ["--train", str(train)] + (["--test", str(test)] if files == "both" else [])
    assert run(main, [*given, "--benchmark", "emorynlp", "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()
