"""`--plan --batch` (issue 22): the rounds of a batch run with their requests and tokens, and the cost at the batch
discount; against a batch run of the test server at a known implausible rate, its rounds and requests per round
are close to the plan's."""
import orjson

from common.cli import run
from llm.generate import main
from llm.testing.batches import BatchFaults
from llm.testing.faults import Faults, fetch, spawned
from tests.support.batching import argv

P = 0.1  # the share of validation prompts the server answers "implausible"
REJECTION = 1 - (1 - P) ** 3
N = 200


def worded(text: str) -> dict:
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_the_batch_plan_shows_rounds_close_to_a_batch_run_and_the_discounted_cost(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    flags = ("--expected-rejection", f"{REJECTION:.6f}", "--price-in", "0.4", "--price-out", "1.6")
    with spawned(Faults(implausible=P, seed=11), batch=BatchFaults(delay=0.01)) as url:
        assert run(main, argv(url, out, N, *flags, "--plan")) == 0
        online = worded(capsys.readouterr().out)
        assert run(main, argv(url, out, N, *flags, "--plan", "--batch")) == 0
        plan = worded(capsys.readouterr().out)
        assert fetch(url, "_batches") == [] and list(tmp_path.iterdir()) == []  # a plan sends and writes nothing
        assert run(main, argv(url, out, N, *flags, "--batch")) == 0
        batches = fetch(url, "_batches")
    words = [plan[f"round {k}"].split() for k in range(1, int(plan["batch rounds"]) + 1)]
    rounds = [(float(w[0]), float(w[2]), float(w[5])) for w in words]  # "R requests, P prompt tokens, C ..."
    # the rounds split the plan's requests and tokens (each line rounded; the tail below half a slot left out)
    assert abs(sum(r for r, _, _ in rounds) - int(plan["requests"])) <= len(rounds)
    assert abs(sum(p for _, p, _ in rounds) - int(plan["prompt tokens"])) <= 0.01 * int(plan["prompt tokens"])
    assert rounds[0][0] == N  # round 1: stage 1 of every slot
    assert float(plan["cost at most"]) == round(float(online["cost at most"]) * 0.5, 6)
    assert plan["wall time"].startswith("a batch per round")
    actual = [len(b["custom_ids"]) for b in batches]  # one batch per round here
    summary = orjson.loads((tmp_path / "out.jsonl.summary.json").read_bytes())
    assert summary["batch"]["rounds"] == len(actual)
    assert abs(len(actual) - len(rounds)) <= 3  # the deepest redraw chain, against the expected one
    for k in range(5):  # the rounds that hold most requests
        assert abs(actual[k] - rounds[k][0]) <= 0.15 * rounds[k][0] + 3, (k, actual, rounds)
