"""The learned risk model and the trust policy: the profile's `plausibility` section, records' risk, the reader
ignoring skipped personas, the exact policy simulation against Monte Carlo, and the engine skipping validation."""
import copy
import json
from collections import Counter

import numpy as np
import orjson
import pytest

from llm import RunStats, Settings, generate_texts
from llm.engine.texts import uniform
from tests.support import clients
from llm.testing.faults import FaultServer, Faults
from llm.transport.client import ClientStats
from common.errors import UsageError
from model.priors.learn import read_records
from model.priors.simulate import Validator
from model.profile import compile_profile
from model.records import sample_records
from tests.support.paths import TOY_PROFILE

TOY = json.loads((TOY_PROFILE).read_text())
SECTION = {"baseline": 0.05, "factors": [
    {"attributes": ["job", "income"], "hazards": [["lawyer", "salary", 3.0], ["retired", "salary", 0.2]]},
    {"attributes": ["age"], "hazards": [["old", 0.07]]},
]}
RULE = Validator(rules=({"job": ["lawyer"], "income": ["salary"]},), noise=0.05, seed=3)


def with_section(section=SECTION) -> dict:
    return {**copy.deepcopy(TOY), "plausibility": copy.deepcopy(section)}


def test_the_section_compiles_to_hazard_tables_over_category_indices():
    p = compile_profile(with_section()).plausibility
    assert p.attributes == ("job", "income", "age") and p.baseline == 0.05
    (pair_names, pair), (age_names, age) = p.factors
    assert pair_names == ("job", "income") and pair.shape == (3, 3) and pair[1, 2] == 3.0 and pair[2, 2] == 0.2
    assert pair.sum() == 3.2 and age_names == ("age",) and age.tolist() == [0.0, 0.07]
    assert compile_profile(TOY).plausibility is None


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(factors=None), "'plausibility' needs a 'factors' list"),
    (lambda s: s["factors"][0].update(attributes=["job", "planet"]), "factor 1: unknown attribute 'planet'"),
    (lambda s: s["factors"][1]["hazards"].append(["ancient", 1.0]), "unknown category 'ancient' for attribute 'age'"),
    (lambda s: s["factors"][0]["hazards"].append(["lawyer", 1.0]), "a hazard row must be [job, income, hazard]"),
    (lambda s: s["factors"][0]["hazards"].append(["lawyer", "salary", 1.0]), "cell ['lawyer', 'salary'] is listed"),
    (lambda s: s["factors"][1]["hazards"].append(["young", -1]), "must be a finite number >= 0"),
    (lambda s: s.update(baseline=1.0), "baseline must be a number in [0, 1)"),
])
def test_bad_sections_are_one_usage_error(change, message):
    section = copy.deepcopy(SECTION)
    change(section)
    with pytest.raises(UsageError, match=None) as exc:
        compile_profile(with_section(section))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_records_carry_the_risk_computed_by_hand_and_others_are_unchanged():
    ids = np.arange(400)
    plain, risky = sample_records(compile_profile(TOY), ids), sample_records(compile_profile(with_section()), ids)
    assert all("risk" not in r for r in plain) and len({r["risk"] for r in risky}) >= 4
    for a, b in zip(plain, risky):
        x = {**b["stage1"], **b["stage2"]}
        h = 3.0 * (x["job"] == "lawyer" and x["income"] == "salary") + 0.2 * (
            x["job"] == "retired" and x["income"] == "salary") + 0.07 * (x["age"] == "old")
        assert b.pop("risk") == round(1 - np.exp(-h), 6)
        assert a == b


def test_the_reader_ignores_skipped_personas_and_keeps_audited_and_rejected_ones(tmp_path):
    prof = compile_profile(with_section())
    recs = sample_records(prof, np.arange(3))
    recs[0]["validation"] = {"skipped": {"risk": recs[0]["risk"], "trust_below": 0.5}}
    recs[0]["rejected_draws"] = [{**{k: recs[1][k] for k in ("stage1", "stage2")},
                                  "validation": {"skipped": {"risk": 0.0, "trust_below": 0.5, "dropped": True}}},
                                 {**{k: recs[2][k] for k in ("stage1", "stage2")},
                                  "validation": {"stage1": {"label": "implausible", "reason": "no"}}}]
    recs[1]["validation"] = {"stage1": "natural", "stage2": "natural"}  # an audited one: validated as usual
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in recs[:2]))
    codes, y = read_records(path, prof)
    assert y.tolist() == [1, 0] and codes.shape == (2, 3)
    path.write_bytes(orjson.dumps({**recs[0], "rejected_draws": []}) + b"\n")
    with pytest.raises(UsageError, match="holds no records with validation labels"):
        read_records(path, prof)


def test_the_exact_policy_figures_match_a_monte_carlo_run_of_the_engines_policy():
    section = copy.deepcopy(SECTION)
    section["factors"][0]["hazards"][0][-1] = 0.05  # the rule's cell underrated: trusted personas leak
    prof = compile_profile(with_section(section))
    trust, audit, n = 0.1, 0.2, 60_000
    exact = RULE.exact(prof, trust, audit)
    calls = accepted = leaked = skipped = 0
    for rec in RULE.label(sample_records(prof, np.arange(n), seed=5)):
        if rec["risk"] < trust and uniform(rec, "audit") >= audit:  # what llm.pipeline._Engine._check does
            skipped += 1
            kept = uniform(rec, "drop") >= prof.plausibility.baseline
            accepted += kept
            leaked += kept and rec["stage1"]["job"] == "lawyer" and rec["stage2"]["income"] == "salary"
            continue
        calls += len(rec["validation"])
        accepted += all(v["label"] != "implausible" for v in rec["validation"].values())
    assert 0.05 < exact["leaked"] < 0.5 and 0.3 < exact["skipped"] < 0.9  # every branch is exercised
    for got, want, scale in ((calls / n, exact["calls_per_persona"], 2), (accepted / n, exact["accept_rate"], 1),
                             (skipped / n, exact["skipped"], 1), (leaked / accepted, exact["leaked"], 1)):
        assert abs(got - want) < 4 * scale * np.sqrt(want * (1 - min(want, 0.99)) / n) + 1e-9, (got, want)
    plain = RULE.exact(prof)
    assert plain["skipped"] == 0 and plain["leaked"] == 0 and plain["calls_per_persona"] > exact["calls_per_persona"]
    with pytest.raises(ValueError, match="no plausibility section"):
        RULE.exact(compile_profile(TOY), trust, audit)


def _record(i: int, attempt: int = 0) -> dict:
    return {"id": i, "seed": 0, "attempt": attempt, "emotion": "joy", "risk": 0.01 if (i + attempt) % 3 else 0.5,
            "stage1": {"age": "30-39", "occupation": f"job {i}/{attempt}"}, "stage2": {"region": "Osaka"},
            "stage3": {"location": "home"}}


async def _run(settings, n):
    stats = RunStats()
    server = FaultServer(Faults())
    async with clients.in_process(server) as client:
        results = [r async for r in generate_texts([_record(i) for i in range(n)], client, settings=settings,
                                                   redraw=lambda rec, k: _record(rec["id"], k), stats=stats)]
    kinds = Counter(kind for _, _, kind in server.record.served)
    return sorted(results, key=lambda r: r["id"]), stats, kinds


async def test_the_engine_skips_trusted_personas_and_audits_a_fraction_by_hash():
    settings = Settings(trust_below=0.1, audit=0.3)
    results, stats, kinds = await _run(settings, 30)
    low = [r for r in results if r["risk"] < 0.1]
    audited = [r for r in low if uniform(r, "audit") < 0.3]
    assert len(results) == 30 and all(r["persona_draws"] == 1 for r in results)
    assert 0 < len(audited) < len(low) and stats.audited == len(audited) and stats.skipped == len(low) - len(audited)
    for r in results:
        if r in low and r not in audited:
            assert r["validation"] == {"skipped": {"risk": 0.01, "trust_below": 0.1}} and r["usage"]["requests"] == 1
        else:
            assert r["validation"].keys() == {"stage1", "stage2", "stage3"} and r["usage"]["requests"] == 4
    assert kinds["validation"] == 3 * (30 - stats.skipped) and kinds["text"] == 30  # none for a skipped persona
    again, _, _ = await _run(settings, 30)
    assert again == results
    assert stats.summary(ClientStats())["validation_skipped"] == stats.skipped


async def test_trusted_personas_are_dropped_unasked_at_the_baseline_rate():
    results, stats, kinds = await _run(Settings(trust_below=0.1, trusted_drop=0.3), 40)
    dropped = [(r["id"], d) for r in results for d in r["rejected_draws"]]
    assert stats.dropped == len(dropped) > 0 and stats.audited == 0
    for i, d in dropped:
        assert d["validation"]["skipped"]["dropped"] is True and uniform({**d, "id": i, "seed": 0}, "drop") < 0.3
    assert kinds["validation"] == 3 * sum(r["validation"].keys() == {"stage1", "stage2", "stage3"} for r in results)


def _generate_argv(out, url="http://127.0.0.1:9/v1", n=3, *extra):
    return ["--n", str(n), "--out", str(out), "--base-url", url, "--model", "test-model", "--quiet", *extra]


@pytest.mark.parametrize("args, message", [
    (["--trust-below", "0"], "argument --trust-below: expected a number in (0, 1), got '0'"),
    (["--trust-below", "1.5"], "argument --trust-below: expected a number in (0, 1), got '1.5'"),
    (["--trust-below", "0.1", "--audit", "-0.1"], "argument --audit: expected a number in [0, 1], got '-0.1'"),
    (["--audit", "0.1"], "--audit needs --trust-below"),
    (["--trust-below", "0.1", "--no-validate"], "--trust-below skips validation: it needs text mode"),
    (["--trust-below", "0.1"], "--trust-below needs a profile with a 'plausibility' section (profile 'jp'"),
])
def test_bad_trust_flags_are_one_line_exit_2_and_no_output(args, message, tmp_path, capsys):
    from llm.generate import main
    from common.cli import run

    code = run(main, _generate_argv(tmp_path / "out.jsonl", "http://127.0.0.1:9/v1", 3, *args))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_trusting_run_resumed_after_a_torn_line_equals_an_uninterrupted_one(tmp_path):
    from llm.generate import main
    from llm.testing.faults import spawned
    from common.cli import run
    from model.profile import PROFILES_DIR

    profile = tmp_path / "jp_learned.json"
    data = json.loads((PROFILES_DIR / "jp.json").read_text())
    data["plausibility"] = {"baseline": 0.1, "factors": [
        {"attributes": ["age"], "hazards": [["13-17", 0.5], ["18-22", 0.5], ["75+", 0.05]]}]}
    profile.write_text(json.dumps(data))
    flags = ("--profile", str(profile), "--domain", "sns", "--trust-below", "0.04", "--audit", "0.2")
    torn, straight = tmp_path / "torn.jsonl", tmp_path / "straight.jsonl"
    with spawned(Faults(implausible=0.1)) as url:
        assert run(main, _generate_argv(straight, url, 12, *flags)) == 0
    with spawned(Faults(implausible=0.1)) as url:
        assert run(main, _generate_argv(torn, url, 12, *flags)) == 0
        done = torn.read_bytes().splitlines(keepends=True)
        torn.write_bytes(b"".join(done[:5]) + done[5][:40])
        assert run(main, _generate_argv(torn, url, 12, *flags)) == 0

    def results(path):
        return sorted((orjson.loads(line) for line in path.read_bytes().splitlines()), key=lambda r: r["id"])

    assert results(torn) == results(straight)
    kinds = Counter("skipped" in r["validation"] for r in results(straight))
    assert kinds[True] > 0 and kinds[False] > 0 and all("risk" in r for r in results(straight))
    summary = json.loads((tmp_path / "straight.jsonl.summary.json").read_text())
    assert summary["validation_skipped"] >= kinds[True]
