"""Exact analysis: hand-computed toy numbers, brute-force entropy / distinct personas, report + joint CLI."""
import itertools
import json

import numpy as np
import pytest

from common.cli import run
from model.exact import contract, entropy, marginals, power_sum
from model.priors import main
from model.priors.joint import joint_table
from model.priors.report import removed_mass, total_removed
from model.priors.sensitivity import expected_distinct, sweep, tempered
from model.priors.targets import targets, tv
from model.profile import load_profile
from model.profile import load_with_data as load
from tests.support.paths import TOY_PROFILE

TOY = str(TOY_PROFILE)


def cli(argv, capsys):
    code = run(main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_toy_targets_effective_and_removed_mass_by_hand():
    data, prof = load(TOY)
    goal, eff = targets(data, prof), marginals(prof)
    # job: young (0.6) -> student .7 / lawyer .3; old (0.4) -> weights 1:2:3, and the rule forbids old students
    np.testing.assert_allclose(goal["job"], [0.42 + 0.4 / 6, 0.18 + 0.4 * 2 / 6, 0.2])
    np.testing.assert_allclose(eff["job"], [0.42, 0.18 + 0.4 * 0.4, 0.4 * 0.6])
    # income 1:1:2, students cannot draw a pension: P(student) = 0.42 gets none 1/3, salary 2/3
    np.testing.assert_allclose(eff["income"], [0.42 / 3 + 0.58 * 0.25, 0.58 * 0.25, 0.42 * 2 / 3 + 0.58 * 0.5])
    np.testing.assert_allclose(goal["income"], [0.25, 0.25, 0.5])
    removed = {r["rule"]: r["removed"] for r in removed_mass(prof)}
    np.testing.assert_allclose(removed[1], (0.42 + 0.4 / 6) * 0.25)  # student with pension, unmasked
    np.testing.assert_allclose(removed[2], 0.4 / 6)  # old student
    np.testing.assert_allclose(total_removed(prof), 0.4 / 6 + 0.42 * 0.25)
    assert tv(goal["job"], eff["job"]) == pytest.approx(0.4 / 6)


def _brute(prof):
    """Every persona's probability by explicit enumeration of the toy joint."""
    probs = []
    for combo in itertools.product(*(range(a.size) for a in prof.attributes.values())):
        x = dict(zip(prof.order, combo))
        p = 1.0
        for name, a in prof.attributes.items():
            p *= a.probs[tuple(x[q] for q in a.parents) + (x[name],)]
        probs.append(p)
    return np.array(probs)


def test_entropy_power_sums_and_distinct_personas_match_brute_force():
    prof = load_profile(TOY)
    p = _brute(prof)
    nz = p[p > 0]
    assert entropy(prof) == pytest.approx(-(nz * np.log(nz)).sum(), rel=1e-12)
    assert power_sum(prof, 0) == (p > 0).sum()
    assert power_sum(prof, 3) == pytest.approx((p ** 3).sum(), rel=1e-12)
    for n in (1, 3, 20, 1000):
        d = expected_distinct(prof, n)
        truth = (1 - (1 - nz) ** n).sum()
        assert d["lower"] - 1e-9 <= truth <= d["upper"] + 1e-9
        assert d["value"] == pytest.approx(truth, rel=1e-8)


def test_distinct_personas_bracket_on_jp_is_tight_and_sane():
    prof = load_profile("jp")
    d = expected_distinct(prof, 3500)
    assert d["lower"] <= d["value"] <= d["upper"] <= 3500 and d["upper"] - d["lower"] < 1e-5
    m2 = power_sum(prof, 2)
    assert d["value"] == pytest.approx(3500 - 3500 * 3499 / 2 * m2, abs=1e-3)  # collisions are that rare


def test_tempering_to_zero_makes_a_root_attribute_uniform_and_one_restores_it():
    prof = load_profile("jp")
    np.testing.assert_allclose(contract(tempered(prof, "age", 0.0), ["age"]), np.full(9, 1 / 9))
    np.testing.assert_allclose(contract(tempered(prof, "age", 1.0), ["age"]), contract(prof, ["age"]))
    rows = sweep(prof, "age", 3500, steps=3)
    assert rows[0]["attribute_entropy_bits"] == pytest.approx(np.log2(9))
    assert rows[-1]["entropy_nats"] == pytest.approx(entropy(prof))


def test_joint_table_is_consistent_with_marginals():
    prof = load_profile("jp", "sns")
    j = joint_table(prof, "age", "style")
    joint = np.array(j["joint"])
    assert joint.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(joint.sum(0), marginals(prof)["style"], atol=1e-12)
    np.testing.assert_allclose(np.array(j["conditional_b_given_a"]).sum(1), 1.0)
    assert joint[:, prof.attributes["style"].categories.index("formal business")].sum() == 0  # sns forbids it


def test_report_cli_writes_markdown_json_png(tmp_path, capsys):
    code, out, err = cli(["report", "--profile", "jp", "--domain", "sns", "--out", str(tmp_path)], capsys)
    assert code == 0 and err == ""
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["priors_jp_sns.json", "priors_jp_sns.md", "priors_jp_sns.png"]
    rep = json.loads((tmp_path / "priors_jp_sns.json").read_text())
    assert rep["attributes"]["activity"]["tv"] == pytest.approx(1 - rep["attributes"]["activity"]["target"][0])
    assert (tmp_path / "priors_jp_sns.png").read_bytes()[:4] == b"\x89PNG"
    assert "| style |" in (tmp_path / "priors_jp_sns.md").read_text()


def test_joint_and_sensitivity_cli_print_tables(capsys):
    code, out, _ = cli(["joint", "--profile", TOY, "age", "job", "--json"], capsys)
    assert code == 0
    j = json.loads(out)
    np.testing.assert_allclose(j["joint"], [[0.42, 0.18, 0.0], [0.0, 0.16, 0.24]])
    code, out, _ = cli(["sensitivity", "--profile", TOY, "--attribute", "age", "--n", "5", "--steps", "2"], capsys)
    assert code == 0 and out.count("\n| ") == 3


@pytest.mark.parametrize("argv, message", [
    (["joint", "--profile", "jp", "age", "nope"], "has no attribute 'nope'"),
    (["joint", "--profile", "jp", "age", "age"], "two different attributes"),
    (["sensitivity", "--profile", "jp", "--attribute", "nope"], "has no attribute 'nope'"),
    (["report", "--profile", "mars"], "unknown profile 'mars'"),
    (["calibrate", "--profile", "jp"], "--out"),
    (["calibrate", "--profile", "jp", "--attributes", "age,nope", "--out", "x.json"], "no attribute 'nope'"),
    (["bogus"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert list(tmp_path.iterdir()) == []
