"""The paper's baselines (IV.D) through the same model and engine: `--method attrprompt|priorwork`."""
from collections import Counter

import numpy as np
import orjson
import pytest
from scipy.stats import chi2_contingency, chisquare

from llm import RunStats, Settings, generate_texts
from llm.generate import main
from tests.support import clients
from llm.testing.faults import FaultServer, Faults, fetch, spawned
from model.baselines import persona_profile, uniform_independent
from common.cli import run
from model.profile import load_profile
from model.records import sample_records

N = 20_000
LOW = "ruined my mood"  # one of the test server's closers: texts ending so are scored 1


def codes(records, name):
    stage = next(k for k in (1, 2, 3) if name in records[0][f"stage{k}"])
    return [r[f"stage{stage}"][name] for r in records]


@pytest.fixture(scope="module")
def profiles():
    personagen = load_profile("jp", "sns")
    return personagen, uniform_independent(personagen)


@pytest.fixture(scope="module")
def samples(profiles):
    return [sample_records(p, range(N), seed=3) for p in profiles]


def test_attrprompt_draws_every_attribute_uniformly_over_the_domain(profiles, samples):
    personagen, uniform = profiles
    _, records = samples
    assert all(a.parents == () for a in uniform.attributes.values()) and uniform.rules == ()
    for name, a in uniform.attributes.items():
        allowed = [c for c, ok in zip(a.categories, a.mask) if ok]
        if name in personagen.domain.restrict:
            assert set(allowed) == set(personagen.domain.restrict[name])  # --domain sns still means tweets
        counts = Counter(codes(records, name))
        assert set(counts) <= set(allowed)
        if len(allowed) > 1:
            assert chisquare([counts[c] for c in allowed]).pvalue > 1e-4, name


@pytest.mark.parametrize("pair", [("age", "occupation"), ("age", "family"), ("location", "interlocutor")])
def test_attrprompt_attributes_are_independent_where_personagen_ties_them(samples, pair):
    pvalues = []
    for records in samples:
        table = Counter(zip(*(codes(records, name) for name in pair)))
        rows, cols = sorted({a for a, _ in table}), sorted({b for _, b in table})
        pvalues.append(chi2_contingency(np.array([[table[a, b] for b in cols] for a in rows])).pvalue)
    assert pvalues[0] < 1e-12 < 1e-4 < pvalues[1]


def test_personagen_keeps_its_profile_and_unknown_methods_are_refused(profiles):
    personagen, _ = profiles
    assert persona_profile(personagen, "personagen") is personagen
    assert persona_profile(personagen, "priorwork").attributes["occupation"].parents == ()
    with pytest.raises(Exception, match="unknown method 'attr'"):
        persona_profile(personagen, "attr")


def record(i: int, attempt: int = 0) -> dict:
    return {"id": i, "attempt": attempt, "emotion": ["joy", "fear"][i % 2], "stage1": {"age": f"{20 + i}"}}


def redraw(rec: dict, attempt: int) -> dict:
    return record(rec["id"], attempt)


def cli(url, out, n, *extra):
    return ["--n", str(n), "--out", str(out), "--domain", "sns", "--base-url", url, "--model", "test-model",
            "--concurrency", "4", "--quiet", *extra]


def lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_attrprompt_sends_no_validation_request(tmp_path):
    out = tmp_path / "a.jsonl"
    with spawned(Faults(implausible=0.5)) as url:
        assert run(main, cli(url, out, 14, "--method", "attrprompt")) == 0
        kinds = fetch(url)["kinds"]
    results = lines(out)
    assert kinds == {"text": 14} and len(results) == 14
    assert all(r["method"] == "attrprompt" and r["validation"] == {} and "score" not in r for r in results)
    assert {r["stage3"]["medium"] for r in results} == {"SNS"}
    summary = orjson.loads((tmp_path / "a.jsonl.summary.json").read_bytes())
    assert summary["validation"] == {} and summary["persona_redraws"] == 0


def test_priorwork_scores_texts_and_drops_those_under_the_threshold(tmp_path):
    out = tmp_path / "p.jsonl"
    with spawned(Faults(low_score_marker=LOW)) as url:
        assert run(main, cli(url, out, 14, "--method", "priorwork")) == 0
        kinds = fetch(url)["kinds"]
    results = lines(out)
    assert "validation" not in kinds and 14 < kinds["score"] <= kinds["text"]  # scored (a repeat: cached), some dropped
    assert len(results) == 14 and all(r["method"] == "priorwork" and r["score"] >= 3 for r in results)
    assert not any(LOW in r["text"] for r in results)
    generation = orjson.loads((tmp_path / "p.jsonl.summary.json").read_bytes())["generation"]
    assert generation["score below 3"] > 0 and generation["accepted"] == 14


async def test_the_threshold_is_the_bar_and_unreadable_scores_never_pass():
    server = FaultServer(Faults())
    async with clients.in_process(server) as client:
        results = [r async for r in generate_texts([record(i) for i in range(10)], client, redraw=redraw,
                                                   settings=Settings(validate=False, min_score=5))]
    assert len(results) == 10 and {r["score"] for r in results} == {5}
    stats = RunStats()
    server = FaultServer(Faults(p_garbled=1.0))  # every answer is prose, no JSON
    async with clients.in_process(server) as client:
        results = [r async for r in generate_texts([record(0)], client, stats=stats,
                                                   settings=Settings(validate=False, min_score=1, max_draws=1))]
    assert results == [] and "no acceptable text" in stats.failures[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "attr"], "argument --method: invalid choice: 'attr'"),
        (["--method", "priorwork", "--threshold", "0"], "argument --threshold: invalid choice: 0"),
        (["--threshold", "3"], "--threshold is priorwork's text filter"),
    ],
)
def test_bad_method_options_are_one_line_exit_2(tmp_path, capsys, args, message):
    code = run(main, cli("http://127.0.0.1:9/v1", tmp_path / "o.jsonl", 2, *args))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_a_run_is_not_resumed_into_another_methods_output(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    with spawned(Faults()) as url:
        assert run(main, cli(url, out, 3, "--method", "attrprompt")) == 0
        assert run(main, cli(url, out, 5)) == 2
    assert "holds texts of method attrprompt" in capsys.readouterr().err
