"""`--format jsonl|csv|parquet` in one process: the journal (OUT.journal.jsonl) resumes, OUT is written in id order
at the end with the same rows as the JSONL output."""
import csv
import io

import orjson
import pytest

from common.cli import run
from common.schema import parquet_rows
from llm.generate import main
from llm.testing.faults import Faults, spawned

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
