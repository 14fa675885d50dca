"""The LLM judge (IV.C) against the fault-injecting server: scores, failures, summary, CLI, and an output
directory that is read-only or fills up."""
import subprocess
import sys

import orjson
import pytest

from tests.support.confined import confined

from eval.judge import CRITERIA, judge_texts, main, report_entry, report_section, summarize
from tests.support import clients
from llm.testing.faults import FaultServer, Faults, fetch, spawned
from common.cli import run
from tests.support.paths import REPO

EMOTIONS = ["joy", "anger", "fear"]


def records(n: int) -> list[dict]:
    return [{"text": f"Text number {i}, and it feels like something.", "emotion": EMOTIONS[i % 3]} for i in range(n)]


async def judge(faults: Faults, n: int, **kw):
    server = FaultServer(faults)
    async with clients.in_process(server) as client:
        scores = await judge_texts(records(n), client, **kw)
    return scores, server.record


async def test_every_text_gets_four_scores_on_the_scale_deterministically():
    scores, record = await judge(Faults(), 12)
    again, _ = await judge(Faults(), 12)
    assert scores == again and len(scores) == 12
    assert all(s.keys() == CRITERIA.keys() and set(s.values()) <= {1, 2, 3, 4, 5} for s in scores)
    assert len({tuple(s.values()) for s in scores}) > 1  # the server varies them by prompt
    assert {kind for _, _, kind in record.served} == {"score"} and len(record.served) == 12


async def test_unreadable_answers_are_asked_again_then_failures_never_scores():
    scores, record = await judge(Faults(p_garbled=1.0), 4, tries=3)
    assert scores == [None] * 4 and len(record.arrivals) == 12
    mixed, _ = await judge(Faults(p_garbled=0.5, seed=3), 30, tries=2)
    assert None in mixed and any(mixed)
    assert all(s is None or set(s.values()) <= {1, 2, 3, 4, 5} for s in mixed)


def test_summary_means_stds_counts_per_emotion_and_failures():
    a = dict.fromkeys(CRITERIA, 5)
    b = {**a, "emotion_match": 3}
    summary = summarize(["joy", "joy", "fear", "fear"], [a, b, None, a])
    em = summary["criteria"]["emotion_match"]
    assert (summary["n"], summary["judged"], summary["failed"]) == (4, 3, 1)
    assert em["mean"] == round(13 / 3, 4) and em["std"] == round(((2 / 3) ** 2 * 2 + (4 / 3) ** 2) ** 0.5 / 3 ** 0.5, 4)
    assert em["counts"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 2} and em["name"] == "Emotion Match"
    assert summary["per_emotion"]["joy"]["emotion_match"] == {"mean": 4.0, "std": 1.0}
    assert summary["per_emotion"]["fear"]["n"] == 1 and summary["criteria"]["grammaticality"]["std"] == 0.0
    assert summarize(["joy"], [None])["criteria"]["grammaticality"]["mean"] is None


def write_data(path, n):
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records(n)))
    return path


def test_cli_writes_json_and_png_and_a_rerun_is_served_from_the_cache(tmp_path, capsys):
    data, out = write_data(tmp_path / "data.jsonl", 9), tmp_path / "judged"
    with spawned(Faults(latency=(0.0, 0.01))) as url:
        argv = [str(data), "--out", str(out), "--base-url", url, "--model", "test-model"]
        assert run(main, argv) == 0
        assert run(main, argv) == 0
        assert fetch(url)["served"] == 9
    summary = orjson.loads((out / "judge.json").read_bytes())
    assert summary["model"] == "test-model" and summary["judged"] == 9 and summary["failed"] == 0
    assert set(summary["per_emotion"]) == set(EMOTIONS) and len(summary["scores"]) == 9
    assert all(1 <= c["mean"] <= 5 for c in summary["criteria"].values())
    assert (out / "judge.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "judged 9 of 9 texts" in capsys.readouterr().err


def test_cli_exits_1_when_texts_could_not_be_judged(tmp_path, capsys):
    data, out = write_data(tmp_path / "data.jsonl", 3), tmp_path / "judged"
    with spawned(Faults(p_garbled=1.0)) as url:
        assert run(main, [str(data), "--out", str(out), "--base-url", url, "--model", "test-model"]) == 1
    assert orjson.loads((out / "judge.json").read_bytes())["scores"] == [None] * 3
    assert "error: 3 texts got no readable scores" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, args, message",
    [
        (None, ["--model", "test-model"], "no such file"),
        (b'{"text": "hi"}\n', ["--model", "test-model"], "emotion"),
        (b"not json\n", ["--model", "test-model"], "not valid JSON"),
        (b'{"text": "hi", "emotion": "joy"}\n', ["--base-url", "http://127.0.0.1:9/v1"],
         "--base-url and --model go together"),
        (b'{"text": "hi", "emotion": "joy"}\n', ["--model", "test-model", "--rpm", "0"], "must be at least 1"),
        (b'{"text": "hi", "emotion": "joy"}\n', ["--model", "test-model", "--base-url", "http://127.0.0.1:9/v1"],
         "cannot reach"),
    ],
    ids=["missing-file", "no-emotion", "not-json", "model-missing", "rpm-0", "unreachable"],
)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, capsys, content, args, message):
    data = tmp_path / "data.jsonl"
    if content is not None:
        data.write_bytes(content)
    argv = [str(data), "--out", str(tmp_path / "out"), *args]
    if "--base-url" not in args and "--model" in args:
        argv += ["--base-url", "http://127.0.0.1:9/v1"]
    code = run(main, argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_the_report_entry_keeps_the_means_by_criterion_and_renders_a_table():
    a = dict.fromkeys(CRITERIA, 5)
    summary = {**summarize(["joy", "fear"], [a, {**a, "grammaticality": 4}]), "model": "m", "figure": "judge.png"}
    entry = report_entry(summary)
    assert {k: entry[k] for k in CRITERIA} == {**dict.fromkeys(CRITERIA, 5.0), "grammaticality": 4.5}
    lines = report_section({"judge": entry})
    assert lines[0] == "## Human-likeness (LLM judge)" and "| Grammaticality | 4.50 | 0.50 |" in lines
    assert "![LLM judge scores](judge.png)" in lines
    failed = report_section({"judge": report_entry({**summarize(["joy"], [None]), "model": "m", "figure": "f"})})
    assert "| Emotion Match | n/a | n/a |" in failed and "(1 got no readable answer)" in failed[2]


def test_eval_report_judge_adds_the_section_the_means_and_the_figure(tmp_path, monkeypatch):
    from eval import report

    def build_report(data_path, out_dir, *args, **kw):  # the embedding sections are test_eval_report's business
        return {"input": {"path": str(data_path), "n": 6, "emotions": {}}, "figures": {}, "warnings": []}

    monkeypatch.setattr(report, "build_report", build_report)
    monkeypatch.setattr(report, "Embedder", lambda *a, **kw: None)
    data, out = write_data(tmp_path / "data.jsonl", 6), tmp_path / "out"
    with spawned(Faults()) as url:
        assert report.main([str(data), "--out", str(out), "--judge", "--base-url", url, "--model", "test-model"]) == 0
    r = orjson.loads((out / "report.json").read_bytes())
    judged = orjson.loads((out / "judge.json").read_bytes())
    assert {k: r["judge"][k] for k in CRITERIA} == {k: c["mean"] for k, c in judged["criteria"].items()}
    assert r["figures"]["judge"] == "judge.png" and (out / "judge.png").exists()
    assert "## Human-likeness (LLM judge)" in (out / "report.md").read_text()
    assert report.main([str(data), "--out", str(tmp_path / "bad"), "--judge", "--base-url", "http://127.0.0.1:9/v1",
                        "--model", "test-model"]) == 2
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("extra, where", [(["--language", "ja"], "the emotions preset holding the data's labels"),
                                          (["--prompts", "ja", "--emotions", "paper"], "--emotions")])
def test_the_judge_asks_in_the_prompt_sets_language_with_each_emotions_definition(tmp_path, extra, where):
    data, out = write_data(tmp_path / "data.jsonl", 3), tmp_path / "judged"
    with spawned(Faults(language="ja")) as url:
        assert run(main, [str(data), "--out", str(out), "--base-url", url, "--model", "test-model", *extra]) == 0
        prompts = [b["messages"][1]["content"] for b in fetch(url, "_bodies")]
    assert len(prompts) == 3, where
    assert any("指定された感情：喜び（良いことがあったときの明るく幸せな気持ち）" in p for p in prompts), prompts[0]


def test_the_judge_refuses_a_prompt_set_in_another_language_than_asked(tmp_path, capsys):
    data = write_data(tmp_path / "data.jsonl", 3)
    assert run(main, [str(data), "--out", str(tmp_path / "j"), "--prompts", "ja", "--language", "en"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "j").exists()


def _judge_in_child(data, out, url, **confinement) -> subprocess.CompletedProcess:
    return subprocess.run(confined([sys.executable, "-m", "eval.judge", str(data), "--out", str(out), "--base-url", url,
                                    "--model", "test-model", "--concurrency", "4"], **confinement), cwd=REPO,
                          capture_output=True, text=True)


@pytest.mark.parametrize("where", ["read-only/judged", "read-only"])
def test_a_read_only_directory_is_one_line_and_nothing_is_sent(tmp_path, where):
    data = write_data(tmp_path / "data.jsonl", 6)
    (tmp_path / "read-only").mkdir(mode=0o555)
    with spawned(Faults()) as url:
        done = _judge_in_child(data, tmp_path / where, url, permissions_bind=True)
        sent = fetch(url)["arrivals"]
    assert done.returncode == 2 and done.stderr.startswith("error: cannot write ") and done.stderr.count("\n") == 1
    assert sent == 0 and list((tmp_path / "read-only").iterdir()) == []


def test_a_full_disk_is_one_line(tmp_path):
    data, out = write_data(tmp_path / "data.jsonl", 60), tmp_path / "judged"
    with spawned(Faults(latency=(0.05, 0.1))) as url:
        done = _judge_in_child(data, out, url, file_size=40_000)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: cannot write ") and done.stderr.count("\n") == 1, done.stderr
