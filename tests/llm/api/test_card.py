"""The dataset card (README.md beside the output): Hugging Face's form, numbers equal to the summary's, no
credentials, someone else's README.md left alone, and `datasets.load_dataset(OUT_DIR)` when datasets is there."""
import re
from collections import Counter
from pathlib import Path

import orjson

from common.cli import run
from llm.api.card import MARKER, endpoint_kind
from llm.transport.endpoint import parse_endpoint
from llm.generate import main
from llm.testing.faults import Faults, spawned

FAULTS = Faults(implausible=0.15, latency=(0.0, 0.02), seed=6)


def argv(url, out, *extra):
    return ["--n", "12", "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--quiet", "--price-in", "1", "--price-out", "2", "--expected-rejection", "0.4", *extra]


def table(card: str, heading: str) -> dict[str, list[str]]:
    section = card.split(f"### {heading}\n", 1)[1].split("\n##", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("|")]
    return {row[0]: row[1:] for row in rows[2:]}


def test_the_card_is_a_dataset_card_with_the_summarys_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-key-123456")
    out = tmp_path / "data.jsonl"
    with spawned(FAULTS) as url:
        assert run(main, argv(url, out)) == 0
    card = (tmp_path / "README.md").read_text()
    summary = orjson.loads(Path(f"{out}.summary.json").read_bytes())
    results = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    header = card.split("---\n")[1]
    assert "path: data.jsonl" in header and "- en" in header and "- n<1K" in header and "# license:" in header
    assert MARKER in card and "sk-secret" not in card and "127.0.0.1:" in card and "http://" not in card
    emotions = table(card, "Emotions")
    assert {e: int(v[0]) for e, v in emotions.items() if int(v[0])} == Counter(r["emotion"] for r in results)
    assert all(v[1] for v in emotions.values())  # every emotion with its definition
    stages = table(card, "Acceptance per validation stage")
    assert {k: float(v[0]) for k, v in stages.items()} == {
        k: v["acceptance_rate"] for k, v in summary["validation"].items()}
    tokens = table(card, "Tokens")
    assert int(tokens["prompt tokens"][0]) == summary["prompt_tokens"]
    assert int(tokens["completion tokens"][1]) == summary["output"]["completion_tokens"]
    assert int(tokens["persona redraws"][0]) == summary["persona_redraws"]
    plan = table(card, "Plan and actual")
    assert int(plan["requests"][0]) == summary["plan"]["requests"] and int(plan["requests"][1]) == summary["requests"]
    assert float(plan["cost"][1]) == summary["cost"]
    assert summary["prompt_set"]["hash"] in card
    assert re.search(r"`age`: Statistics Bureau of Japan", card)  # the profile's cited sources


def test_someone_elses_readme_is_left_alone(tmp_path, capsys):
    (tmp_path / "README.md").write_text("# my project\n")
    with spawned(Faults()) as url:
        assert run(main, argv(url, tmp_path / "data.jsonl")) == 0
    assert (tmp_path / "README.md").read_text() == "# my project\n"
    assert "is not a dataset card of ours" in capsys.readouterr().err


def test_endpoint_kind_names_hosts_only():
    assert endpoint_kind((parse_endpoint("https://user:pw@api.example.com/v1?key=x=2"),)) == \
        "OpenAI-compatible endpoint at api.example.com"
    assert endpoint_kind(()).startswith("the embedded SmolLM2")


def test_one_card_describes_every_output_of_its_folder_and_datasets_loads_each(tmp_path):
    import datasets

    with spawned(FAULTS) as url:
        for out, extra in [("data.jsonl", ()), ("more.parquet", ("--emotions", "carer")), ("flat.csv", ())]:
            assert run(main, argv(url, tmp_path / out, *extra)) == 0
        assert run(main, argv(url, tmp_path / "data.jsonl", "--n", "13")) == 0  # a rerun replaces its own section
    card = (tmp_path / "README.md").read_text()
    header = card.split("---\n")[1]
    assert [line.split(": ")[1] for line in header.splitlines() if "config_name" in line] == ["data", "more", "flat"]
    assert header.count("default: true") == 1 and card.count("## data.jsonl") == 1 and "13 records in `data" in card
    assert "| love |" in card.split("## more.parquet")[1].split("## flat.csv")[0]  # each section its own run's
    cache = str(tmp_path.parent / "hf-cache")
    for name, n in [("data", 13), ("more", 12), ("flat", 12)]:
        loaded = datasets.load_dataset(str(tmp_path), name, cache_dir=cache)["train"]
        assert loaded.num_rows == n and sorted(loaded["id"]) == list(range(n)), name
    assert datasets.load_dataset(str(tmp_path), cache_dir=cache)["train"].num_rows == 13  # the default: the first
