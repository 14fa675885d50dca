"""The emotion chain of a benchmark's dialogues: its NumPyro model and exact fit, its file format, and its label
variants.

Fitting (`chain_model`, exact conjugate posterior): Dirichlet(prior) on the initial distribution, on every row of
the same-speaker and other-speaker transition matrices, on P(n_speakers) and on each row of P(excess | n_speakers),
Beta(prior, prior) on stay; the data enter as multinomial / binomial counts, so the posterior of each site is
Dirichlet(prior + counts) (Beta for stay). The chain file holds the posterior means (and the counts).

Label variants: `matched` samples the fitted chain (the benchmark's own label distribution). `balanced` replaces
the initial distribution by the uniform one and Sinkhorn-scales each transition matrix to be doubly stochastic:
diag(a) P diag(b) is the matrix nearest to P in KL with uniform row and column sums, and keeps every odds ratio
P_ij P_kl / (P_il P_kj), i.e. the Markov structure. Since any mix of doubly stochastic matrices is doubly
stochastic, every turn's label is then exactly uniform, whatever the speaker sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UsageError
from model.dialogue.corpus import benchmark_labels
from model.profile import read_named

VARIANTS = ("matched", "balanced")
SPEAKERS = (2, 3, 4)
FORMAT = "personagen-dialogue-chain/1"
PRIOR = 1.0
POSTERIOR_DRAWS = 4000
CHAINS_DIR = Path(__file__).parent.parent / "chains"  # fitted chains shipped with the package (meld)


# ---- counts and the NumPyro model ----

@dataclass(frozen=True)
class Counts:
    initial: np.ndarray  # [K] first emotion of each dialogue
    same: np.ndarray  # [K, K] previous -> next emotion, same speaker
    other: np.ndarray  # [K, K] previous -> next emotion, speaker changes
    stay: np.ndarray  # [2] consecutive pairs with (same, different) speaker
    speakers: np.ndarray  # [3] dialogues with 2, 3, 4 distinct speakers
    turns: np.ndarray  # [3, J] dialogues with n_speakers s and n_turns = s + j


def count(dialogues: list[dict], labels: tuple[str, ...]) -> Counts:
    """Sufficient statistics. Every dialogue feeds the emotion chain and stay; only dialogues with 2-4 distinct
    speakers feed n_speakers and n_turns."""
    k, index = len(labels), {e: i for i, e in enumerate(labels)}
    initial, same, other, stay = np.zeros(k), np.zeros((k, k)), np.zeros((k, k)), np.zeros(2)
    sizes = []
    for d in dialogues:
        e = [index[t["emotion"]] for t in d["turns"]]
        s = [t["speaker"] for t in d["turns"]]
        initial[e[0]] += 1
        for t in range(1, len(e)):
            kept = s[t] == s[t - 1]
            (same if kept else other)[e[t - 1], e[t]] += 1
            stay[0 if kept else 1] += 1
        n = len(set(s))
        if SPEAKERS[0] <= n <= SPEAKERS[-1]:
            sizes.append((n, len(e) - n))
    if not sizes:
        raise UsageError(f"no dialogue has {SPEAKERS[0]}-{SPEAKERS[-1]} speakers; cannot fit the dialogue sizes")
    turns = np.zeros((len(SPEAKERS), max(j for _, j in sizes) + 1))
    for n, j in sizes:
        turns[n - SPEAKERS[0], j] += 1
    return Counts(initial, same, other, stay, turns.sum(axis=1), turns)


def chain_model(counts: Counts, prior: float = PRIOR) -> None:
    """The fitting model: Dirichlet / Beta priors, the counts observed as multinomials / a binomial."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    k, j = counts.initial.shape[0], counts.turns.shape[1]

    def dirichlet(name: str, size: int, observed: np.ndarray) -> None:
        p = numpyro.sample(name, dist.Dirichlet(jnp.full(size, prior)))
        numpyro.sample(f"{name}_counts", dist.Multinomial(jnp.asarray(observed.sum(-1)), p), obs=jnp.asarray(observed))

    dirichlet("initial", k, counts.initial)
    with numpyro.plate("previous", k):
        dirichlet("same", k, counts.same)
        dirichlet("other", k, counts.other)
    stay = numpyro.sample("stay", dist.Beta(prior, prior))
    numpyro.sample("stay_counts", dist.Binomial(int(counts.stay.sum()), stay), obs=jnp.asarray(counts.stay[0]))
    dirichlet("speakers", len(SPEAKERS), counts.speakers)
    with numpyro.plate("n_speakers", len(SPEAKERS)):
        dirichlet("turns", j, counts.turns)


def posterior(counts: Counts, prior: float = PRIOR) -> dict[str, np.ndarray]:
    """The exact posterior of `chain_model`: Dirichlet concentrations per site (stay: the Beta's (a, b))."""
    return {"initial": prior + counts.initial, "same": prior + counts.same, "other": prior + counts.other,
            "stay": prior + counts.stay, "speakers": prior + counts.speakers, "turns": prior + counts.turns}


def posterior_samples(concentrations: dict[str, np.ndarray], n: int = POSTERIOR_DRAWS, seed: int = 0) -> dict:
    """n exact draws of every site (stay as P(same speaker))."""
    import jax
    import numpyro.distributions as dist

    keys = jax.random.split(jax.random.PRNGKey(seed), len(concentrations))
    draws = {name: np.asarray(dist.Dirichlet(c).sample(key, (n,)), np.float64)
             for key, (name, c) in zip(keys, concentrations.items())}
    draws["stay"] = draws["stay"][:, 0]
    return draws


# ---- the chain file ----

@dataclass(frozen=True, eq=False)
class Chain:
    benchmark: str
    labels: tuple[str, ...]
    initial: np.ndarray  # [K]
    same: np.ndarray  # [K, K]
    other: np.ndarray  # [K, K]
    stay: float
    speakers: np.ndarray  # [3]
    turns: np.ndarray  # [3, J]

    @property
    def mixed(self) -> np.ndarray:
        """The per-turn chain ignoring who speaks: stay * same + (1 - stay) * other."""
        return self.stay * self.same + (1 - self.stay) * self.other


def fit(dialogues: list[dict], benchmark: str, prior: float = PRIOR) -> tuple[Chain, Counts]:
    labels = benchmark_labels(benchmark)
    counts = count(dialogues, labels)
    c = posterior(counts, prior)
    mean = {name: v / v.sum(-1, keepdims=True) for name, v in c.items()}
    chain = Chain(benchmark, labels, mean["initial"], mean["same"], mean["other"], float(mean["stay"][0]),
                  mean["speakers"], mean["turns"])
    return chain, counts


def chain_json(chain: Chain, counts: Counts, source: dict, prior: float = PRIOR) -> dict:
    return {
        "format": FORMAT, "benchmark": chain.benchmark, "labels": list(chain.labels),
        "estimate": f"posterior mean under Dirichlet({prior}) priors (Beta({prior}, {prior}) for stay)",
        "source": source,
        "initial": chain.initial.tolist(), "same": chain.same.tolist(), "other": chain.other.tolist(),
        "stay": chain.stay,
        "n_speakers": {"values": list(SPEAKERS), "probs": chain.speakers.tolist()},
        "n_turns": {"excess": "n_turns - n_speakers = 0, 1, ...; one row per n_speakers",
                    "probs": chain.turns.tolist()},
        "counts": {"initial": counts.initial.tolist(), "same": counts.same.tolist(), "other": counts.other.tolist(),
                   "stay": counts.stay.tolist(), "speakers": counts.speakers.tolist(), "turns": counts.turns.tolist()},
    }


def _distribution(value, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: expected numbers") from None
    if a.shape != shape and not (len(shape) == 2 and shape[1] == -1 and a.ndim == 2 and a.shape[0] == shape[0]):
        raise UsageError(f"{where}: expected shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0) or not np.allclose(a.sum(-1), 1.0, atol=1e-6):
        raise UsageError(f"{where}: not a probability distribution (non-negative, summing to 1)")
    return a


def load_chain(path: str | Path) -> Chain:
    """A chain file written by `fit`, or a shipped chain by name (`meld`: CHAINS_DIR); every field is checked
    (UsageError on anything wrong)."""
    data = read_named(str(path), CHAINS_DIR, "chain")
    if data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a dialogue chain file (format {FORMAT!r})")
    try:
        labels = benchmark_labels(data["benchmark"])
        if tuple(data["labels"]) != labels:
            raise UsageError(f"{path}: labels {data['labels']} are not the {data['benchmark']} label set "
                             f"{list(labels)}")
        k = len(labels)
        stay = float(data["stay"])
        if not 0.0 <= stay <= 1.0:
            raise UsageError(f"{path}: stay must be a probability, got {stay}")
        return Chain(data["benchmark"], labels, _distribution(data["initial"], (k,), f"{path}: initial"),
                     _distribution(data["same"], (k, k), f"{path}: same"),
                     _distribution(data["other"], (k, k), f"{path}: other"), stay,
                     _distribution(data["n_speakers"]["probs"], (len(SPEAKERS),), f"{path}: n_speakers"),
                     _distribution(data["n_turns"]["probs"], (len(SPEAKERS), -1), f"{path}: n_turns"))
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{path}: missing or malformed field {exc}") from None


# ---- balanced variant ----

def sinkhorn(p: np.ndarray, tol: float = 1e-12, max_iter: int = 10_000) -> np.ndarray:
    """diag(a) p diag(b) with all row and column sums 1 (p strictly positive, so it exists and is unique)."""
    q = np.asarray(p, np.float64)
    for _ in range(max_iter):
        q = q / q.sum(axis=0, keepdims=True)
        q = q / q.sum(axis=1, keepdims=True)
        if np.abs(q.sum(axis=0) - 1).max() < tol:
            return q
    raise RuntimeError("Sinkhorn scaling did not converge")


def variant(chain: Chain, labels: str) -> Chain:
    """`matched`: the chain itself; `balanced`: uniform start, doubly stochastic transitions (see module doc)."""
    if labels not in VARIANTS:
        raise UsageError(f"unknown label variant {labels!r} (choose {' or '.join(VARIANTS)})")
    if labels == "matched":
        return chain
    k = len(chain.labels)
    return Chain(chain.benchmark, chain.labels, np.full(k, 1.0 / k), sinkhorn(chain.same), sinkhorn(chain.other),
                 chain.stay, chain.speakers, chain.turns)
