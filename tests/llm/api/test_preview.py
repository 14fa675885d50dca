"""`--preview K`: the first K slots through the whole pipeline as a table; nothing written, no cache lost."""
import hashlib

import orjson

from common.cli import run
from llm.generate import main
from llm.testing.faults import Faults, fetch, spawned
from tests.llm.api.test_generate import free_port

FAULTS = Faults(implausible=0.2, latency=(0.0, 0.02), seed=9)


def argv(url, out, *extra):
    return ["--n", "6", "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--quiet", *extra]


def snapshot(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_a_preview_prints_the_first_slots_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(FAULTS) as url:
        assert run(main, argv(url, out, "--preview", "3")) == 0
    shown = capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    assert [line.split()[0] for line in shown.splitlines() if line.startswith("#")] == ["#0", "#1", "#2"]
    assert "persona" in shown and "scenario" in shown and "text" in shown and "natural" in shown
    with spawned(FAULTS) as url:  # the real run's first three texts are the preview's
        assert run(main, argv(url, out)) == 0
    results = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    for r in results[:3]:
        assert r["text"] in shown.replace("\n           ", " ") and r["emotion"] in shown


def test_a_preview_after_a_run_keeps_its_files_and_reuses_its_cache(tmp_path, capsys):
    out, port = tmp_path / "out.jsonl", free_port()
    with spawned(FAULTS, port) as url:
        assert run(main, argv(url, out)) == 0
        before = snapshot(tmp_path)
    with spawned(FAULTS, port) as url:  # a fresh server at the same URL: the preview's answers come from the cache
        assert run(main, argv(url, out, "--preview", "4")) == 0
        assert fetch(url, "_completed") == []
    assert snapshot(tmp_path) == before
    assert capsys.readouterr().out.count("\n#") == 3


def test_preview_0_is_one_line_exit_2(tmp_path, capsys):
    assert run(main, ["--n", "3", "--out", str(tmp_path / "o.jsonl"), "--preview", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "error: argument --preview: must be at least 1, got 0\n"
    assert list(tmp_path.iterdir()) == []
