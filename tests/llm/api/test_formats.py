"""`--format jsonl|csv|parquet` in one process: the journal (OUT.journal.jsonl) resumes, OUT is written in id order
at the end with the same rows as the JSONL output."""
import csv
import io

import orjson
import pytest

from common.cli import run
from common.schema import parquet_rows
from llm.generate import main
from llm.api.config import RunConfig, load
from llm.api.modes import prompt_of
from llm.testing.faults import Faults, fetch, spawned

FAULTS = Faults(implausible=0.2, latency=(0.0, 0.02), seed=2)


def argv(url, out, *extra):
    return ["--n", "10", "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--seed", "4", "--quiet", *extra]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_flat_format_without_ray_has_the_rows_of_the_jsonl_output_in_id_order(tmp_path, fmt):
    jsonl, flat = tmp_path / "out.jsonl", tmp_path / f"out.{fmt}"
    with spawned(FAULTS) as url:
        assert run(main, argv(url, jsonl)) == 0
        assert run(main, argv(url, flat, "--format", fmt)) == 0
        before = flat.read_bytes()
        assert run(main, argv(url, flat, "--format", fmt)) == 0  # resumed from the journal: nothing left to do
    assert flat.read_bytes() == before
    expected = parquet_rows(orjson.loads(line) for line in jsonl.read_bytes().splitlines())
    journal = tmp_path / f"out.{fmt}.journal.jsonl"
    assert journal.read_bytes() == jsonl.read_bytes()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(flat).to_pylist()
        assert rows == expected
    else:
        rows = list(csv.DictReader(io.StringIO(flat.read_text())))
        assert [int(r["id"]) for r in rows] == list(range(10))
        assert [r["text"] for r in rows] == [e["text"] for e in expected]
        assert rows[0]["validation"] == expected[0]["validation"]


def test_format_is_text_modes(tmp_path, capsys):
    assert run(main, ["--mode", "dialogue", "--n-dialogues", "2", "--out", str(tmp_path / "d.csv"),
                      "--format", "parquet"]) == 2
    assert "--format is text mode's" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out, extra, fmt", [("data.parquet", (), "parquet"), ("data.csv", (), "csv"),
                                              ("data.out", ("--format", "csv"), "csv"), ("data", (), "jsonl")])
def test_the_format_comes_from_the_extension_unless_given(tmp_path, out, extra, fmt):
    with spawned(Faults()) as url:
        assert run(main, argv(url, tmp_path / out, "--n", "3", *extra)) == 0
    data = (tmp_path / out).read_bytes()
    assert {"parquet": data[:4] == b"PAR1", "csv": data.startswith(b"id,"), "jsonl": data.startswith(b'{"id"')}[fmt]


def test_a_format_the_extension_contradicts_is_one_line_and_nothing_sent(tmp_path, capsys):
    with spawned(Faults()) as url:
        assert run(main, argv(url, tmp_path / "data.parquet", "--format", "jsonl")) == 2
        assert fetch(url, "_completed") == []
    assert capsys.readouterr().err == (f"error: --format jsonl contradicts --out {tmp_path / 'data.parquet'} "
                                       "(a .parquet file); give one or the other\n")
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folders_are_made_and_removed_again_when_the_run_is_refused(tmp_path):
    with spawned(Faults()) as url:
        assert run(main, ["--mode", "dialogue", "--n-dialogues", "2", "--out", str(tmp_path / "a" / "b" / "d.csv"),
                          "--base-url", url, "--model", "test-model", "--quiet"]) == 0
        assert run(main, argv(url, tmp_path / "c" / "d" / "t.jsonl", "--model", "no-such-model")) == 2
    assert (tmp_path / "a" / "b" / "d.csv").is_file() and not (tmp_path / "c").exists()


def test_no_prompts_leaves_them_out_and_they_render_again_from_the_saved_config(tmp_path):
    kept, lean = tmp_path / "kept.jsonl", tmp_path / "lean.jsonl"
    with spawned(FAULTS) as url:
        assert run(main, argv(url, kept, "--no-label-leak")) == 0
        assert run(main, argv(url, lean, "--no-label-leak", "--no-prompts")) == 0
    full = [orjson.loads(line) for line in kept.read_bytes().splitlines()]
    short = [orjson.loads(line) for line in lean.read_bytes().splitlines()]
    assert all("prompt" not in r and r["prompt_set"] for r in short)
    assert len(kept.read_bytes()) - len(lean.read_bytes()) > 1000 * len(full)  # a prompt is 1-2 KB
    assert [{k: v for k, v in r.items() if k != "prompt"} for r in full] == short
    config = RunConfig.from_values(load(f"{lean}.config.toml"))
    assert [prompt_of(config, r) for r in short] == [r["prompt"] for r in full]
