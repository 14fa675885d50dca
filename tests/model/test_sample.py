"""`python -m model.sample`: output formats, byte-identical reruns, and bad input -> one line, exit 2, no file."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from common.cli import run
from model.sample import main
from tests.support.paths import REPO, TOY_PROFILE

TOY = str(TOY_PROFILE)


def sample(argv, capsys):
    code = run(main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_jsonl_to_stdout_has_grouped_stages_and_log_prob(capsys):
    code, out, err = sample(["--n", "14", "--profile", TOY, "--seed", "3"], capsys)
    assert code == 0 and err == ""
    records = [orjson.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in records] == list(range(14))
    assert set(records[0]) == {"id", "seed", "attempt", "profile", "domain", "stage1", "stage2", "stage3",
                               "emotion", "log_prob"}
    assert records[0]["stage1"].keys() == {"age", "job"} and records[0]["seed"] == 3
    assert all(r["log_prob"] < 0 for r in records)


def test_csv_has_one_column_per_attribute(tmp_path, capsys):
    out = tmp_path / "p.csv"
    code, _, _ = sample(["--n", "9", "--profile", TOY, "--out", str(out)], capsys)
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 9 and {"age", "job", "income", "emotion", "log_prob"} <= set(rows[0])


@pytest.mark.parametrize("argv, message", [
    (["--n", "0"], "argument --n: must be at least 1"),
    (["--n", "ten"], "argument --n: expected a whole number"),
    (["--n", "5", "--profile", "mars"], "unknown profile 'mars'"),
    (["--n", "5", "--domain", "space"], "unknown domain 'space'"),
    (["--n", "5", "--emotions", "happyish"], "unknown emotion preset 'happyish'"),
    (["--n", "5", "--seed", "-1"], "argument --seed"),
    (["--n", "5", "--format", "xml"], "argument --format"),
    (["--n", "5", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_input_is_one_line_and_exit_2_and_no_file(argv, message, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    code, stdout, err = sample(argv + ["--out", str(out)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_bad_profile_file_leaves_existing_output_untouched(tmp_path, capsys):
    broken = json.loads(Path(TOY).read_text())
    broken["attributes"]["age"]["probs"]["young"] = 0.9
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    out = tmp_path / "out.jsonl"
    out.write_text("previous run\n")
    code, _, err = sample(["--n", "5", "--profile", str(path), "--out", str(out)], capsys)
    assert code == 2 and "sum to 1.3, not 1" in err
    assert out.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json", "out.jsonl"]


def test_missing_output_directory(tmp_path, capsys):
    code, _, err = sample(["--n", "5", "--profile", TOY, "--out", str(tmp_path / "no" / "x.jsonl")], capsys)
    assert code == 2 and "does not exist" in err


@pytest.mark.slow
def test_module_entry_point_is_byte_identical_across_runs(tmp_path):
    outs = []
    for name in ("a.jsonl", "b.jsonl"):
        subprocess.run([sys.executable, "-m", "model.sample", "--n", "3500", "--domain", "sns", "--out",
                        str(tmp_path / name)], cwd=REPO, check=True)
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 3500
    bad = subprocess.run([sys.executable, "-m", "model.sample", "--n", "-3"], cwd=REPO, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: argument --n: must be at least 1, got -3"


def test_parquet_holds_the_same_records_as_jsonl(tmp_path, capsys):
    import pyarrow.parquet as pq

    from common.schema import flatten

    for domain in (["--domain", "sns"], []):
        code, out, _ = sample(["--n", "300", "--seed", "4"] + domain, capsys)
        assert code == 0
        expected = [flatten(orjson.loads(line)) for line in out.splitlines()]
        path = tmp_path / "p.parquet"
        assert sample(["--n", "300", "--seed", "4", "--out", str(path)] + domain, capsys)[0] == 0
        rows = pq.read_table(path).to_pylist()
        assert len(rows) == 300
        for got, want in zip(rows, expected):
            assert got["log_prob"] == pytest.approx(want.pop("log_prob"), abs=1e-4)
            assert {k: v for k, v in got.items() if k != "log_prob"} == want


def test_parquet_needs_an_output_file(capsys):
    code, _, err = sample(["--n", "5", "--format", "parquet"], capsys)
    assert code == 2 and "needs --out" in err
