"""Run configs (llm/api/config.py) and the library API (llm/api/run.py): round trips, `--config` reproducing a run byte
for byte, the API equal to the command, and bad config files refused in one line. (The README's library block runs
in test_docs.py.)"""
import dataclasses
import json
import re
from pathlib import Path

import orjson
import pytest

from common.cli import run
from common.errors import UsageError
from llm import ClientOptions, RunConfig, generate_dataset
from llm.api import config as configs
from llm.api.flags import parse
from llm.generate import main
from llm.prompts.__main__ import main as export_prompts
from llm.testing.faults import Faults, fetch, spawned
from tests.llm.api.test_generate import free_port

FAULTS = Faults(implausible=0.2, latency=(0.0, 0.03), seed=5)


def flags(url: str, out: Path, n: int = 12) -> list[str]:
    return ["--n", str(n), "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--concurrency", "4", "--seed", "3", "--quiet"]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_config_round_trips_through_its_file(tmp_path, suffix):
    config = parse(["--n", "7", "--out", "o.jsonl", "--base-url", "http://h/v1=2", "--base-url", "http://g/v1",
                    "--model", "m", "--rpm", "30", "--temperature", "0.7", "--no-label-leak", "--language", "ja",
                    "--ray", "", "--shards", "3"]).config
    path = tmp_path / f"run{suffix}"
    configs.save(config, path)
    again = parse(["--config", str(path)]).config
    assert again == dataclasses.replace(config, out=str(Path("o.jsonl").resolve()))  # files saved absolute
    assert tuple(map(str, again.endpoints)) == ("http://h/v1=2", "http://g/v1") and again.client.rpm == 30
    assert again.no_label_leak


def test_a_saved_config_holds_no_credentials_of_an_endpoint_url(tmp_path):
    config = parse(["--n", "7", "--out", "o.jsonl", "--base-url", "https://user:s3cret@h.example/v1=2",
                    "--model", "m"]).config
    path = tmp_path / "run.toml"
    configs.save(config, path)
    text = path.read_text()
    assert "s3cret" not in text and "user" not in text
    assert tuple(map(str, parse(["--config", str(path)]).config.endpoints)) == ("https://h.example/v1=2",)


def test_flags_override_the_config(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('n = 5\nout = "a.jsonl"\nendpoints = ["http://h/v1"]\nmodel = "m"\nrpm = 10\n')
    config = parse(["--config", str(path), "--rpm", "20", "--base-url", "http://x/v1"]).config
    assert (config.n, config.out, config.client.rpm, tuple(map(str, config.endpoints))) == (5, "a.jsonl", 20,
                                                                                             ("http://x/v1",))


def test_the_saved_config_reproduces_the_run_byte_for_byte(tmp_path):
    first, second = tmp_path / "a" / "out.jsonl", tmp_path / "b" / "out.jsonl"
    first.parent.mkdir()
    second.parent.mkdir()
    port = free_port()
    with spawned(FAULTS, port) as url:
        assert run(main, flags(url, first)) == 0
    saved = Path(f"{first}.config.toml")
    assert "api_key" not in saved.read_text().replace("api_key_env", "")
    with spawned(FAULTS, port) as url:  # a fresh server at the same URL: nothing cached in b/
        assert run(main, ["--config", str(saved), "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert [orjson.loads(line)["id"] for line in first.read_bytes().splitlines()] == list(range(12))


def test_a_saved_config_runs_the_same_from_another_directory(tmp_path, monkeypatch):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    assert run(export_prompts, ["export", "en", "--out", "mine.toml"]) == 0
    with spawned(FAULTS) as url:
        assert run(main, [*flags(url, Path("out.jsonl"), n=4), "--prompts", "mine.toml"]) == 0
        sent = fetch(url)["served"]
        monkeypatch.chdir(elsewhere)
        assert run(main, ["--config", str(here / "out.jsonl.config.toml"), "--n", "5"]) == 0
        assert fetch(url)["served"] > sent  # the fifth text, added to the same output
    saved = (here / "out.jsonl.config.toml").read_text()
    assert f'out = "{here / "out.jsonl"}"' in saved and f'prompts = "{here / "mine.toml"}"' in saved
    assert len((here / "out.jsonl").read_bytes().splitlines()) == 5 and list(elsewhere.iterdir()) == []


def test_the_api_gives_what_the_command_gives(tmp_path):
    cli_out, api_out = tmp_path / "cli.jsonl", tmp_path / "api.jsonl"
    with spawned(FAULTS) as url:
        assert run(main, flags(url, cli_out)) == 0
        config = parse(flags(url, api_out)).config
        result = generate_dataset(config)
        kept = generate_dataset(RunConfig.from_values({**config.saved(), "out": None}))
    assert api_out.read_bytes() == cli_out.read_bytes()
    assert result.results == [orjson.loads(line) for line in cli_out.read_bytes().splitlines()]
    assert kept.results == result.results and kept.config.out is None
    assert result.summary == orjson.loads(Path(f"{api_out}.summary.json").read_bytes())
    assert result.summary["texts"] == 12 and result.failed == 0


@pytest.mark.parametrize("text, message", [
    ('n = 3\nout = "o.jsonl"\nbogus = 1\n', "unknown key 'bogus'"),
    ('n = "3"\nout = "o.jsonl"\n', "key 'n' = '3': expected int"),
    ('n = 0\nout = "o.jsonl"\n', "key 'n' = 0: must be at least 1"),
    ('n = 3\nout = "o.jsonl"\ndialect = "grpc"\n', "key 'dialect' = 'grpc': not one of"),
    ('n = 3\nout = "o.jsonl"\ntemperature = inf\n', "key 'temperature' = inf: expected a finite number"),
    ('n = 3\nout = "o.jsonl"\nno_validate = 1\n', "key 'no_validate' = 1: expected bool"),
    ('n = 3\nout = "o.jsonl"\nendpoints = ["http://h/v1=-1"]\n', "key 'endpoints'"),
    ('n = [3\n', "not valid TOML"),
], ids=["unknown", "type", "n-0", "choice", "inf", "bool", "weight", "syntax"])
def test_a_bad_config_is_one_line_exit_2_and_nothing_written(tmp_path, text, message, capsys):
    path = tmp_path / "run.toml"
    path.write_text(text.replace("o.jsonl", str(tmp_path / "o.jsonl")))
    with spawned(Faults()) as url:
        code = run(main, ["--config", str(path), "--base-url", url, "--model", "test-model"])
        assert fetch(url, "_completed") == []
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: config {path}: ") and err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml"]


def test_a_json_config_that_is_not_a_table_is_refused(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(UsageError, match="must hold a table"):
        parse(["--config", str(path)])


def test_the_api_gives_what_the_command_gives_in_dialogue_mode(tmp_path):
    cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
    cli_dir.mkdir()
    api_dir.mkdir()

    def argv(url, out):
        return ["--mode", "dialogue", "--labels", "balanced", "--n-dialogues", "5", "--out", str(out),
                "--base-url", url, "--model", "test-model", "--concurrency", "4", "--quiet"]

    with spawned(Faults(wrong_turns=0.3, seed=3)) as url:
        assert run(main, argv(url, cli_dir / "d.csv")) == 0
        result = generate_dataset(parse(argv(url, api_dir / "d.csv")).config)
    for name in ("d.csv", "d.jsonl"):
        assert (api_dir / name).read_bytes() == (cli_dir / name).read_bytes()
    assert [d["id"] for d in result.results] == list(range(5))
    assert result.results == [orjson.loads(line) for line in (cli_dir / "d.jsonl").read_bytes().splitlines()]
    card = (api_dir / "README.md").read_text()
    assert "config_name: d\n" in card and "path: d.jsonl" in card and "## d.csv" in card and "dialogues" in card


@pytest.mark.parametrize("make, message", [
    (lambda: RunConfig(n=0), "RunConfig: n = 0: must be at least 1, got 0"),
    (lambda: RunConfig(n=3, client=ClientOptions(dialect="grpc")), "ClientOptions: dialect = 'grpc': not one of"),
    (lambda: RunConfig(n=3, endpoints=("http://h/v1",)), "--base-url and --model go together"),
    (lambda: RunConfig(mode="dialogue", n=3), "dialogue mode needs --n-dialogues"),
    (lambda: RunConfig(n=3, temperature="hot"), "RunConfig: temperature = 'hot': expected int or float"),
    (lambda: RunConfig(n=3, endpoints=("http://h/v1=0",), model="m"), "endpoints = ('http://h/v1=0',): expected URL"),
    (lambda: RunConfig.from_values({"n": 3, "rpm": 0}), "ClientOptions: rpm = 0: must be at least 1, got 0"),
], ids=["n-0", "dialect", "model-missing", "dialogue-n", "type", "weight", "flat-client"])
def test_a_config_checks_itself_when_it_is_made_as_the_command_would(make, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        make()
