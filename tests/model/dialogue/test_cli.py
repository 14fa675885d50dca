"""python -m model.dialogue fit / sample: files written, reruns identical, bad input -> one line, exit 2, no file."""
import csv

import orjson
import pytest

from common.cli import run
from model.dialogue import load_chain, main


@pytest.fixture(scope="module")
def meld_dir(shared_data, tmp_path_factory):
    """The first 150 dialogues of MELD train."""
    root = tmp_path_factory.mktemp("meld")
    with (shared_data / "meld" / "train_sent_emo.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with (root / "train_sent_emo.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if int(r["Dialogue_ID"]) < 150)
    return root


def cli(argv, capsys):
    code = run(main, argv)
    return code, capsys.readouterr()


def test_fit_then_sample(meld_dir, tmp_path, capsys):
    chain_file, report = tmp_path / "chain.json", tmp_path / "report"
    code, _ = cli(["fit", "--data", str(meld_dir), "--out", str(chain_file), "--report", str(report)], capsys)
    assert code == 0
    chain = load_chain(chain_file)
    assert chain.labels[0] == "neutral" and chain.benchmark == "meld"
    data = orjson.loads(chain_file.read_bytes())
    assert 140 < data["source"]["dialogues"] == sum(data["counts"]["initial"]) <= 150  # MELD skips some ids
    analysis = orjson.loads((report / "chain_report.json").read_bytes())
    lo, mean, hi = (analysis["persistence"]["overall"][k] for k in ("lo", "mean", "hi"))
    assert 0 < lo < mean < hi < 1 and abs(sum(analysis["stationary"]["mean"]) - 1) < 1e-9
    assert "Persistence" in (report / "chain_report.md").read_text()

    outs = [tmp_path / f"d{i}.jsonl" for i in range(2)]
    for out in outs:
        code, _ = cli(["sample", "--chain", str(chain_file), "--n-dialogues", "5", "--labels", "balanced",
                       "--seed", "3", "--out", str(out)], capsys)
        assert code == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    rows = [orjson.loads(line) for line in outs[0].read_bytes().splitlines()]
    assert [r["id"] for r in rows] == list(range(5)) and all(r["labels"] == "balanced" for r in rows)


@pytest.mark.parametrize("argv, message", [
    (["fit", "--data", "{meld}", "--benchmark", "friends"], "unknown benchmark 'friends'"),
    (["fit", "--data", "{tmp}/nowhere"], "does not exist"),
    (["fit", "--data", "{bad}"], "missing column(s) Dialogue_ID"),
    (["fit", "--data", "{label}"], "emotion 'bored' is not in the label set"),
    (["fit", "--data", "{meld}", "--benchmark", "iemocap6"], "is not in the label set"),
    (["sample", "--chain", "{tmp}/none.json", "--n-dialogues", "2"], "none.json: no such file"),
    (["sample", "--chain", "{bad}/train_sent_emo.csv", "--n-dialogues", "2"], "not valid JSON"),
    (["sample", "--chain", "{meld}/x.json", "--n-dialogues", "2", "--labels", "skewed"], "argument --labels"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(argv, message, meld_dir, tmp_path, capsys):
    bad, label = tmp_path / "bad", tmp_path / "label"
    bad.mkdir()
    label.mkdir()
    (bad / "train_sent_emo.csv").write_text("Utterance,Speaker,Emotion,Utterance_ID\nhi,A,joy,0\n")
    (label / "train_sent_emo.csv").write_text("Utterance,Speaker,Emotion,Dialogue_ID,Utterance_ID\nhi,A,bored,0,0\n")
    out = tmp_path / "out" / "o.json"
    out.parent.mkdir()
    argv = [a.format(meld=meld_dir, tmp=tmp_path, bad=bad, label=label) for a in argv] + ["--out", str(out)]
    code, captured = cli(argv, capsys)
    assert code == 2 and captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert message in captured.err
    assert list(out.parent.iterdir()) == []


def test_fit_reads_any_dialogue_file_with_column_options(tmp_path, capsys):
    """An EmoryNLP-shaped TSV (Season, Episode, Scene_ID make a dialogue id; other column names), and the same rows
    without a header, by column number: the same chain."""
    from model.dialogue.corpus import benchmark_labels

    emory = benchmark_labels("emorynlp")
    rows = [[f"line {ep} {scene} {t}", f"speaker {t % 2}", emory[(ep + scene + t) % 7].capitalize(), 1, ep, scene, t]
            for ep in range(4) for scene in (1, 2) for t in range(3 + scene)]
    named = tmp_path / "emory.tsv"
    with named.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t").writerows([["Text", "Who", "Feeling", "Season", "Episode", "Scene_ID", "Turn"],
                                                 *rows])
    bare = tmp_path / "bare.csv"
    with bare.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="|").writerows(rows)
    chains = tmp_path / "named.json", tmp_path / "bare.json"
    common = ["fit", "--benchmark", "emorynlp"]
    assert cli([*common, "--data", str(named), "--text-col", "Text", "--speaker-col", "Who", "--label-col", "Feeling",
                "--dialogue-col", "Season,Episode,Scene_ID", "--turn-col", "Turn", "--out", str(chains[0])],
               capsys)[0] == 0
    assert cli([*common, "--data", str(bare), "--no-header", "--text-col", "0", "--speaker-col", "1", "--label-col",
                "2", "--dialogue-col", "3,4,5", "--turn-col", "6", "--out", str(chains[1])], capsys)[0] == 0
    named_chain, bare_chain = (orjson.loads(c.read_bytes()) for c in chains)
    assert named_chain["source"]["dialogues"] == 8 and named_chain["counts"] == bare_chain["counts"]
    code, captured = cli([*common, "--data", str(bare), "--out", str(tmp_path / "x.json")], capsys)
    assert code == 2 and "missing column(s) Utterance" in captured.err and "add --no-header" in captured.err


def test_sample_takes_a_shipped_chain_by_name(tmp_path, capsys):
    out = tmp_path / "d.jsonl"
    code, _ = cli(["sample", "--chain", "meld", "--n-dialogues", "2", "--out", str(out)], capsys)
    assert code == 0 and [orjson.loads(line)["benchmark"] for line in out.read_bytes().splitlines()] == ["meld"] * 2
    code, captured = cli(["sample", "--chain", "friends", "--n-dialogues", "2"], capsys)
    assert code == 2 and "unknown chain 'friends' (available: meld, or a .json path)" in captured.err
