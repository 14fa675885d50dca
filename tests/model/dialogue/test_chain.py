"""model.dialogue: fitting the speaker-aware emotion chain (exact conjugate posterior, checked by NUTS), the
balanced / matched variants, and the dialogue sampler."""
from collections import Counter

import numpy as np
import pytest

from model.dialogue import (Counts, benchmark_labels, chain_model, count, fit, posterior, read_split,
                            sample_dialogues, sinkhorn, variant)
from model.profile import load_profile

MELD = benchmark_labels("meld")


@pytest.fixture(scope="module")
def meld_train(shared_data):
    return read_split(shared_data / "meld", "train", MELD)


@pytest.fixture(scope="module")
def chain(meld_train):
    return fit(meld_train, "meld")[0]


@pytest.fixture(scope="module")
def profile():
    return load_profile("jp", "conversation")


def test_counts_follow_speakers_and_order():
    d = [{"id": "0", "turns": [{"speaker": "A", "emotion": "joy"}, {"speaker": "A", "emotion": "joy"},
                               {"speaker": "B", "emotion": "anger"}, {"speaker": "A", "emotion": "neutral"}]}]
    c = count(d, MELD)
    assert c.initial[1] == 1 and c.initial.sum() == 1
    assert c.same[1, 1] == 1 and c.same.sum() == 1
    assert c.other[1, 3] == 1 and c.other[3, 0] == 1 and c.other.sum() == 2
    assert c.stay.tolist() == [1, 2]
    assert c.speakers.tolist() == [1, 0, 0] and c.turns[0, 2] == 1  # 2 speakers, 4 turns = 2 + 2


def test_fitted_meld_chain_is_stochastic_and_matches_data(chain, meld_train):
    for m in (chain.same, chain.other):
        assert np.allclose(m.sum(1), 1) and (m > 0).all()
    assert np.isclose(chain.initial.sum(), 1) and 0.15 < chain.stay < 0.3
    # neutral persists more after the same speaker than after a change (speaker-aware structure in MELD)
    assert chain.same[0, 0] > chain.other[0, 0]


def test_conjugate_posterior_agrees_with_nuts():
    from jax import random
    from numpyro.infer import MCMC, NUTS

    counts = Counts(initial=np.array([5.0, 1.0]), same=np.array([[4.0, 1.0], [0.0, 3.0]]),
                    other=np.array([[2.0, 6.0], [1.0, 1.0]]), stay=np.array([8.0, 10.0]),
                    speakers=np.array([3.0, 2.0, 1.0]), turns=np.array([[1.0, 2.0], [0.0, 2.0], [1.0, 0.0]]))
    mcmc = MCMC(NUTS(chain_model), num_warmup=200, num_samples=600, progress_bar=False)
    mcmc.run(random.PRNGKey(0), counts)
    draws = mcmc.get_samples()
    exact = posterior(counts)
    for name in ("initial", "same", "other", "speakers", "turns"):
        mean = exact[name] / exact[name].sum(-1, keepdims=True)
        assert np.abs(np.asarray(draws[name]).mean(0) - mean).max() < 0.06, name
    assert abs(float(draws["stay"].mean()) - exact["stay"][0] / exact["stay"].sum()) < 0.06


def test_sinkhorn_is_doubly_stochastic_and_keeps_odds_ratios(chain):
    q = sinkhorn(chain.same)
    assert np.allclose(q.sum(0), 1, atol=1e-9) and np.allclose(q.sum(1), 1, atol=1e-9)
    odds = lambda m: m[0, 1] * m[2, 3] / (m[0, 3] * m[2, 1])  # noqa: E731
    assert np.isclose(odds(q), odds(chain.same))
    b = variant(chain, "balanced")
    assert np.allclose(b.initial, 1 / len(MELD)) and b.stay == chain.stay


def _label_shares(dialogues):
    c = Counter(t["emotion"] for d in dialogues for t in d["turns"])
    n = sum(c.values())
    return np.array([c[e] / n for e in MELD])


def test_balanced_is_uniform_and_matched_is_meld(chain, profile, meld_train):
    ids = np.arange(2000)
    balanced = _label_shares(sample_dialogues(profile, chain, ids, seed=1, labels="balanced"))
    matched = _label_shares(sample_dialogues(profile, chain, ids, seed=1, labels="matched"))
    meld = _label_shares(meld_train)
    assert np.abs(balanced - 1 / len(MELD)).max() < 0.015, balanced
    assert 0.5 * np.abs(matched - meld).sum() < 0.03, (matched, meld)


def test_dialogue_structure(chain, profile):
    dialogues = sample_dialogues(profile, chain, np.arange(300), seed=2)
    sizes = Counter(d["n_speakers"] for d in dialogues)
    assert set(sizes) == {2, 3, 4}
    for d in dialogues:
        assert d["n_turns"] == len(d["turns"]) >= d["n_speakers"] == len(d["speakers"])
        assert [s["speaker"] for s in d["speakers"]] == list(range(d["n_speakers"]))
        assert len({s["persona_id"] for s in d["speakers"]}) == d["n_speakers"]
        assert {t["speaker"] for t in d["turns"]} == set(range(d["n_speakers"]))  # everyone talks
        assert d["turns"][0]["speaker"] == 0 and all(t["emotion"] in MELD for t in d["turns"])
        assert d["setting"]["medium"] in ("face-to-face", "phone call", "video call", "chat app")
        assert set(d["speakers"][0]) == {"speaker", "persona_id", "stage1", "stage2"}
        if d["n_speakers"] > 2:
            assert d["relationship"] != "partners"
        if d["setting"]["interlocutor"] == "family":
            assert d["relationship"] == "family"


def test_dialogue_is_a_function_of_seed_and_id(chain, profile):
    full = sample_dialogues(profile, chain, np.arange(12), seed=5, labels="balanced")
    part = sample_dialogues(profile, chain, [7, 3], seed=5, labels="balanced")
    assert part == [full[7], full[3]]
    other = sample_dialogues(profile, chain, [7, 3], seed=6, labels="balanced")
    assert other != part
