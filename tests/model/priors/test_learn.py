"""Plausibility learning: the records reader, the exact re-factorisation, and learn end to end on the toy profile."""
import itertools
import json

import numpy as np
import orjson
import pytest

from common.cli import run
from model.exact import contract
from model.priors import main
from model.priors.learn import read_records, refactor
from model.priors.simulate import Validator
from model.priors.targets import tv
from common.errors import UsageError
from model.profile import compile_profile, load_profile
from model.records import sample_records
from tests.support.paths import TOY_PROFILE

TOY = str(TOY_PROFILE)
TOY_RULE = Validator(rules=({"job": ["lawyer"], "income": ["salary"]},), noise=0.02, seed=3)


@pytest.fixture(scope="module")
def toy_records():
    return sample_records(load_profile(TOY), np.arange(4))


def write_jsonl(path, records):
    path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records))


def test_refactor_samples_exactly_p_times_the_factors():
    prof = load_profile(TOY)
    phi_pair = np.array([[1.0, 1.0, 0.2], [1.0, 1.0, 0.05], [0.5, 1.0, 1.0]])  # (job, income)
    phi_age = np.array([1.0, 0.3])
    tables = refactor(prof, [(("job", "income"), phi_pair), (("age",), phi_age)])
    assert tables["income"][0] == ["job"]  # the pair's other attribute became a parent
    # the new joint, as conditional tables, equals p(x) * phi(x) / Z cell by cell
    want = contract(prof, ["age", "job", "income"], extra=[(("job", "income"), phi_pair), (("age",), phi_age)])
    want /= want.sum()
    got = np.zeros_like(want)
    for a, j, i in itertools.product(range(2), range(3), range(3)):
        x = {"age": a, "job": j, "income": i}
        p = 1.0
        for name in ("age", "job", "income"):
            parents, table = tables.get(name, (list(prof.attributes[name].parents), prof.attributes[name].probs))
            p *= table[tuple(x[q] for q in parents) + (x[name],)]
        got[a, j, i] = p
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_reader_accepts_labels_and_verdict_objects_and_missing_later_stages(tmp_path):
    prof = load_profile(TOY)
    recs = sample_records(prof, np.arange(3), seed=0)
    recs[0]["validation"] = {"stage1": "natural", "stage2": "rare but plausible"}
    recs[1]["validation"] = {"stage1": {"label": "implausible", "reason": "no"}}
    recs[2]["validation"] = {"stage1": {"label": "natural", "reason": ""}, "stage2": {"label": "implausible"}}
    path = tmp_path / "run.jsonl"
    write_jsonl(path, recs)
    codes, y = read_records(path, prof)
    assert codes.shape == (3, 3) and y.tolist() == [0, 1, 1]


def test_reader_expands_the_engines_rejected_draws(tmp_path):
    prof = load_profile(TOY)
    accepted, rejected = sample_records(prof, [0], seed=0)[0], sample_records(prof, [0], seed=0, attempt=1)[0]
    accepted["validation"] = {f"stage{k}": {"label": "natural", "reason": ""} for k in (1, 2)}
    accepted["rejected_draws"] = [{"attempt": 1, "stage1": rejected["stage1"], "stage2": rejected["stage2"],
                                   "validation": {"stage1": {"label": "implausible", "reason": "no"}}}]
    path = tmp_path / "run.jsonl"
    write_jsonl(path, [accepted])
    codes, y = read_records(path, prof)
    assert y.tolist() == [0, 1]
    assert codes[1, 0] == prof.attributes["age"].categories.index(rejected["stage1"]["age"])
    accepted["rejected_draws"][0]["stage1"]["job"] = "astronaut"
    write_jsonl(path, [accepted])
    with pytest.raises(UsageError, match="rejected draw 1: unknown category 'astronaut'"):
        read_records(path, prof)


def _bad(recs, i, change):
    recs = json.loads(json.dumps(recs))
    change(recs[i])
    return recs


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("validation"), "needs a non-empty 'validation' object"),
    (lambda r: r.update(validation={"stage1": "meh"}), "label must be one of"),
    (lambda r: r.update(validation={"stage9": "natural"}), "unknown validation stage 'stage9'"),
    (lambda r: r["stage1"].pop("job"), "no value for attribute 'job'"),
    (lambda r: r["stage1"].update(job="astronaut"), "unknown category 'astronaut'"),
])
def test_malformed_records_are_one_line_and_exit_2(change, message, tmp_path, capsys, toy_records):
    recs = [{**r, "validation": {"stage1": "natural"}} for r in toy_records]
    path = tmp_path / "run.jsonl"
    write_jsonl(path, _bad(recs, 2, change))
    out = tmp_path / "learned.json"
    code = run(main, ["learn", "--records", str(path), "--profile", TOY, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert "run.jsonl:3" in err and not out.exists()


@pytest.mark.parametrize("content, message", [(None, "no such file"), (b"{not json\n", "not valid JSON"),
                                              (b"\n", "holds no records")])
def test_missing_or_unreadable_records_file(content, message, tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    if content is not None:
        path.write_bytes(content)
    code = run(main, ["learn", "--records", str(path), "--profile", TOY, "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err


def test_learn_end_to_end_cuts_wasted_validation_and_keeps_the_accepted_population(tmp_path, capsys):
    prof = load_profile(TOY)
    path = tmp_path / "run.jsonl"
    write_jsonl(path, TOY_RULE.label(sample_records(prof, np.arange(2000), seed=1)))
    out, rep = tmp_path / "learned.json", tmp_path / "top.json"
    code = run(main, ["learn", "--records", str(path), "--profile", TOY, "--out", str(out), "--steps", "300",
                      "--report", str(rep)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    top = json.loads(rep.read_text())["top"][0]
    assert top["combination"] == {"job": "lawyer", "income": "salary"} and top["ci"][0] > 0.9
    learned = compile_profile(json.loads(out.read_text()))
    risk = learned.plausibility  # the upper bound on the rule's cell is high, and the clean personas' is 0
    lawyer, salary = prof.attributes["job"].categories.index("lawyer"), prof.attributes["income"].size - 1
    assert risk.risk({"age": np.array(0), "job": np.array(lawyer), "income": np.array(salary)}) > 0.9
    assert risk.risk({"age": np.array(0), "job": np.array(0), "income": np.array(0)}) < 0.05
    assert 0.02 < risk.baseline < 0.1  # 1 - 0.98 ** 2 = 0.0396 rejected at random
    before, after = TOY_RULE.exact(prof), TOY_RULE.exact(learned)
    assert before["implausible_rate"] > 0.15 and after["implausible_rate"] < 0.08
    floor = (1 + 0.98) / 0.98 ** 2  # two stages, each always asked, only the noise rejects
    assert (before["calls_per_accepted"] - floor) > 4 * (after["calls_per_accepted"] - floor)
    for name in prof.order:
        assert tv(before["accepted_marginals"][name], after["accepted_marginals"][name]) < 0.01, name
    trusting = TOY_RULE.exact(learned, 0.1, 0.05)
    assert trusting["calls_per_accepted"] < after["calls_per_accepted"] / 2 and trusting["leaked"] < 0.01


def test_top_cells_are_reached_cells_with_the_interval_the_table_names():
    """A cell no record reached (its hazard only the prior's, here the largest) is not ranked, and the table's
    "95% CI" column holds the 2.5 % and 97.5 % quantiles of the draws."""
    from model.priors.learn import Posterior, top_combinations, top_table

    prof = load_profile(TOY)
    size = prof.attributes["job"].size
    draws = np.random.default_rng(0).exponential(0.1, (400, size))
    draws[:, 0] += 5.0  # job 0: the highest hazard, but no record
    counts = np.full(size, 7)
    counts[0] = 0
    post = Posterior([("job",)], [(size,)], [draws], np.zeros(400), [counts], [np.ones(size)],
                     np.zeros((0, 3), int), np.zeros(0))
    top = top_combinations(prof, post, k=size)
    assert len(top) == size - 1 and all(r["records"] == 7 for r in top)
    assert prof.attributes["job"].categories[0] not in [r["combination"]["job"] for r in top]
    best = top[0]
    cell = prof.attributes["job"].categories.index(best["combination"]["job"])
    p = 1 - np.exp(-draws[:, cell])
    assert best["ci"] == pytest.approx(np.quantile(p, [0.025, 0.975]), rel=1e-12) and best["ci_level"] == 0.95
    lines = top_table(top)
    assert "| 95% CI |" in lines[0] and f"[{best['ci'][0]:.3f}, {best['ci'][1]:.3f}]" in lines[2]
