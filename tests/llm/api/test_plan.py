"""`--plan` and cost: the plan sends nothing and writes nothing; its requests and prompt tokens are within 10% of
a run against the test server at a known implausible rate; after a priced run the summary holds the cost and the
plan next to the actual counts."""
import orjson
import pytest

from common.cli import run
from llm.generate import main
from llm.testing.faults import Faults, fetch, spawned

P = 0.1  # the server answers this share of validation prompts "implausible": a persona passes 3 with (1 - P)^3
REJECTION = 1 - (1 - P) ** 3
N = 200


def argv(url, out, *extra):
    return ["--n", str(N), "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--concurrency", "16", "--quiet", "--expected-rejection", f"{REJECTION:.6f}", "--price-in", "0.4",
            "--price-out", "1.6", *extra]


def worded(text: str) -> dict:
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_the_plan_is_within_10_percent_of_the_run_and_the_summary_shows_both(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    with spawned(Faults(implausible=P, seed=11)) as url:
        assert run(main, argv(url, out, "--plan", "--rpm", "600")) == 0
        assert fetch(url, "_completed") == [] and list(tmp_path.iterdir()) == []
        printed = worded(capsys.readouterr().out)
        assert run(main, argv(url, out)) == 0
    summary = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())
    plan = summary["plan"]
    assert int(printed["requests"]) == plan["requests"] and int(printed["prompt tokens"]) == plan["prompt_tokens"]
    assert printed["wall time"] == f"{plan['requests'] / 600 * 60:.0f} s"
    assert abs(plan["requests"] - summary["requests"]) <= 0.1 * summary["requests"]
    assert abs(plan["prompt_tokens"] - summary["prompt_tokens"]) <= 0.1 * summary["prompt_tokens"]
    assert abs(plan["persona_redraws"] - summary["persona_redraws"]) <= 0.25 * summary["persona_redraws"]
    assert plan["completion_tokens_at_most"] >= summary["completion_tokens"]
    rerun = [a for a in argv("http://127.0.0.1:9/v1", out, "--plan") if a != f"{REJECTION:.6f}"]
    assert run(main, [a for a in rerun if a != "--expected-rejection"]) == 0
    again = worded(capsys.readouterr().out)
    assert again["rejection source"].startswith("from the output's last run")
    last = summary["persona_redraws"] / (summary["texts"] + summary["persona_redraws"])
    assert float(again["rejection rate"]) == round(last, 4)
    expected = (summary["prompt_tokens"] * 0.4 + summary["completion_tokens"] * 1.6) / 1e6
    assert summary["cost"] == pytest.approx(expected, abs=1e-6) and plan["cost_at_most"] >= summary["cost"]


def test_a_plan_without_limits_prints_requests_and_tokens_and_an_unbounded_time(tmp_path, capsys):
    assert run(main, ["--n", "20", "--out", str(tmp_path / "o.jsonl"), "--domain", "sns", "--plan"]) == 0
    printed = worded(capsys.readouterr().out)
    assert int(printed["requests"]) == 80 and int(printed["prompt tokens"]) > 0  # 3 stages + 1 text, no rejection
    assert printed["wall time"].startswith("unbounded")
    assert printed["rejection source"].startswith("assumed 0")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["--price-in", "--price-out"])
def test_a_negative_price_is_one_line_exit_2(tmp_path, capsys, flag):
    assert run(main, ["--n", "3", "--out", str(tmp_path / "o.jsonl"), "--plan", flag, "-0.5"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: argument {flag}: expected a finite number >= 0, got '-0.5'\n"
    assert list(tmp_path.iterdir()) == []
