"""Sampling: masks always hold, marginals match exact enumeration, emotions balance exactly, same seed same bytes."""
import json
from pathlib import Path

import jax
import numpy as np
import numpyro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.emotions import resolve_emotions
from model.exact import marginals
from model.persona import persona_model, sample_codes
from model.profile import DOMAINS_DIR, PROFILES_DIR, available, load_profile
from model.records import sample_records
from tests.support.paths import TOY_PROFILE

TOY = str(TOY_PROFILE)
PROFILES = [str(PROFILES_DIR / f"{name}.json") for name in available(PROFILES_DIR)] + [TOY]
DOMAINS = [None] + available(DOMAINS_DIR)


def violations(records, profile_path, domain):
    """Every (record id, rule) pair where a record breaks a rule or the domain, checked from the raw JSON."""
    raw = json.loads(Path(profile_path).read_text())
    restrict = json.loads((DOMAINS_DIR / f"{domain}.json").read_text())["restrict"] if domain else {}
    listify = lambda v: [v] if isinstance(v, str) else v  # noqa: E731
    found = []
    for rec in records:
        flat = {**rec["stage1"], **rec["stage2"], **rec["stage3"]}
        for i, rule in enumerate(raw.get("rules", [])):
            if all(flat[a] in listify(v) for a, v in rule["if"].items()):
                for child, values in rule.get("allow", {}).items():
                    if flat[child] not in listify(values):
                        found.append((rec["id"], f"rule {i + 1}"))
                for child, values in rule.get("forbid", {}).items():
                    if flat[child] in listify(values):
                        found.append((rec["id"], f"rule {i + 1}"))
        for attr, values in restrict.items():
            if flat[attr] not in values:
                found.append((rec["id"], f"domain {attr}"))
    return found


def test_rule_checker_catches_a_violation():
    rec = {"id": 7, "stage1": {"age": "young", "job": "student"}, "stage2": {"income": "pension"}, "stage3": {}}
    assert violations([rec], TOY, None) == [(7, "rule 1")]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), profile=st.sampled_from(PROFILES), domain=st.sampled_from(DOMAINS),
       start=st.integers(0, 10**7))
def test_every_record_satisfies_every_mask_and_domain(seed, profile, domain, start):
    if profile == TOY:
        domain = None
    prof = load_profile(profile, domain)
    records = sample_records(prof, np.arange(start, start + 3000), seed)
    assert violations(records, profile, domain) == []


@pytest.mark.parametrize("profile, domain", [(p, d) for p in PROFILES for d in (DOMAINS if p != TOY else [None])])
def test_marginals_of_200k_samples_match_exact_enumeration(profile, domain):
    prof = load_profile(profile, domain)
    n = 200_000
    codes, _ = sample_codes(prof, np.arange(n), seed=11)
    exact = marginals(prof)
    for j, name in enumerate(prof.order):
        counts = np.bincount(codes[:, j], minlength=prof.attributes[name].size)
        p = exact[name]
        assert np.all(counts[p == 0] == 0), f"{name}: a zero-probability category was sampled"
        sigma = np.sqrt(n * p * (1 - p))
        z = np.abs(counts - n * p) / np.where(sigma > 0, sigma, 1)
        assert z.max() < 4, f"{name}: {prof.attributes[name].categories[z.argmax()]} is {z.max():.1f} sigma off"


def test_marginal_check_would_catch_a_wrong_table():
    prof = load_profile(TOY)
    codes, _ = sample_codes(prof, np.arange(200_000), seed=11)
    wrong = np.array([0.5, 0.5])  # the true age marginal is 0.6 / 0.4
    counts = np.bincount(codes[:, 0], minlength=2)
    assert np.abs(counts - 200_000 * wrong).max() / np.sqrt(200_000 * 0.25) > 4


@pytest.mark.parametrize("n, preset, expected", [
    (3500, "paper", [500] * 7),
    (10, "paper", [2, 2, 2, 1, 1, 1, 1]),
    (3000, "carer", [500] * 6),
    (5, "a,b", [3, 2]),
])
def test_emotions_are_exactly_balanced(n, preset, expected):
    labels = resolve_emotions(preset)
    records = sample_records(load_profile(TOY), np.arange(n), 0, labels)
    counts = [sum(r["emotion"] == e for r in records) for e in labels]
    assert counts == expected


def test_same_seed_same_records_and_record_i_independent_of_n():
    prof = load_profile(TOY)
    a = sample_records(prof, np.arange(100), seed=5)
    assert a == sample_records(prof, np.arange(100), seed=5)
    assert a[40:60] == sample_records(prof, np.arange(40, 60), seed=5)
    other = sample_records(prof, np.arange(100), seed=6)
    assert [r["stage1"] for r in a] != [r["stage1"] for r in other]
    replacement = sample_records(prof, np.arange(100), seed=5, attempt=1)
    assert [r["stage1"] for r in a] != [r["stage1"] for r in replacement]
    assert [r["emotion"] for r in a] == [r["emotion"] for r in replacement]


@pytest.mark.parametrize("profile", PROFILES)
def test_log_prob_is_the_sum_of_table_log_probabilities(profile):
    prof = load_profile(profile)
    ids = np.arange(500)
    codes, log_prob = sample_codes(prof, ids, seed=3)
    expected = np.zeros(len(ids))
    for j, (name, a) in enumerate(prof.attributes.items()):
        index = tuple(codes[:, prof.order.index(p)] for p in a.parents) + (codes[:, j],)
        expected += np.log(a.probs[index])
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-3)


def test_numpyro_handlers_score_the_same_model():
    """The fast sampler's log_prob equals NumPyro's own log density of the model at the sampled values."""
    prof = load_profile(PROFILES[0])
    codes, log_prob = sample_codes(prof, np.arange(64), seed=9)
    values = {name: codes[:, j] for j, name in enumerate(prof.order)}
    density, _ = numpyro.infer.util.log_density(persona_model, (prof, 64), {}, values)
    np.testing.assert_allclose(float(density), log_prob.sum(), rtol=1e-4)


def test_model_runs_under_the_plain_seed_handler():
    prof = load_profile(TOY)
    trace = numpyro.handlers.trace(numpyro.handlers.seed(persona_model, jax.random.PRNGKey(0))).get_trace(prof, 5000)
    job, income = np.asarray(trace["job"]["value"]), np.asarray(trace["income"]["value"])
    assert not np.any((job == 0) & (income == 1))  # student with pension is masked
    assert abs(np.mean(np.asarray(trace["age"]["value"]) == 0) - 0.6) < 0.03
