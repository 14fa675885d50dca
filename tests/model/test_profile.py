"""Profile loading and compilation: the toy profile by hand, and every bad-input case as one UsageError."""
import copy
import json

import numpy as np
import pytest

from common.errors import UsageError
from model.exact import joint, marginals
from model.profile import compile_profile, load_profile
from tests.support.paths import TOY_PROFILE

TOY_PATH = TOY_PROFILE
TOY = json.loads(TOY_PATH.read_text())


def test_toy_compiles_with_rule_parents_and_masks():
    p = compile_profile(TOY)
    assert p.order == ("age", "job", "income")
    # the rule "student -> no pension" makes job a parent of income
    assert p.attributes["income"].parents == ("job",)
    income = p.attributes["income"].probs
    np.testing.assert_allclose(income[0], [1 / 3, 0, 2 / 3])  # student: pension masked, renormalised
    np.testing.assert_allclose(income[1], [0.25, 0.25, 0.5])
    job = p.attributes["job"].probs
    np.testing.assert_allclose(job[1], [0, 0.4, 0.6])  # old: student masked, weights 2:3


def test_toy_exact_marginals_by_hand():
    m = marginals(compile_profile(TOY))
    np.testing.assert_allclose(m["age"], [0.6, 0.4])
    np.testing.assert_allclose(m["job"], [0.42, 0.34, 0.24])
    np.testing.assert_allclose(m["income"], [0.42 / 3 + 0.58 / 4, 0.58 / 4, 0.42 * 2 / 3 + 0.58 / 2])
    pair = joint(compile_profile(TOY), ["job", "income"])
    assert pair[0, 1] == 0  # student with pension has no mass
    np.testing.assert_allclose(pair.sum(), 1.0)


def bad(mutate):
    data = copy.deepcopy(TOY)
    mutate(data)
    return data


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["attributes"]["age"]["probs"].update(young=0.7), "sum to 1.1, not 1"),
        (lambda d: d["attributes"]["age"]["probs"].update(middle=0.0), "unknown category 'middle'"),
        (lambda d: d["attributes"]["age"]["probs"].pop("old"), "no probability for category 'old'"),
        (lambda d: d["attributes"]["age"]["probs"].update(young=-0.1, old=1.1), "non-negative"),
        (lambda d: d["attributes"]["job"].update(parents=["height"]), "parent 'height' is not declared"),
        (lambda d: d["attributes"]["age"].update(parents=["job"], table=[{"probs": {"young": 1, "old": 0}}]),
         "dependency cycle"),
        (lambda d: d["attributes"]["job"]["table"].pop(), "no table row matches age=old"),
        (lambda d: d["attributes"]["job"]["table"][0]["when"].update(age="teen"), "unknown category 'teen'"),
        (lambda d: d["rules"].append({"if": {"age": "young"}, "allow": {"job": "retired"}}),
         "masks leave no allowed value of 'job' when age=young"),
        (lambda d: d["rules"].append({"if": {"shoe": "x"}, "forbid": {"job": "lawyer"}}), "unknown attribute 'shoe'"),
        (lambda d: d["rules"].append({"if": {"age": "old"}, "forbid": {"job": "astronaut"}}),
         "unknown category 'astronaut'"),
        (lambda d: d["rules"].append({"if": {"age": "old"}}), "exactly one of 'allow' or 'forbid'"),
        (lambda d: d["attributes"]["age"].update(stage=4), "stage must be one of"),
        (lambda d: d["attributes"]["age"].update(categories=["young", "young"]), "lists a category twice"),
        (lambda d: d["attributes"]["age"].update(stage=2), "cannot depend on"),
    ],
)
def test_bad_profiles_raise_one_clear_error(mutate, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        compile_profile(bad(mutate))


def test_unknown_profile_and_domain_names():
    with pytest.raises(UsageError, match="unknown profile 'mars'"):
        load_profile("mars")
    with pytest.raises(UsageError, match="unknown domain 'space'"):
        load_profile(str(TOY_PATH), "space")


def test_domain_restricting_unknown_category(tmp_path):
    dom = tmp_path / "d.json"
    dom.write_text(json.dumps({"name": "d", "restrict": {"job": ["pilot"]}}))
    with pytest.raises(UsageError, match="unknown category 'pilot'"):
        load_profile(str(TOY_PATH), str(dom))


def test_invalid_json(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_profile(str(f))
