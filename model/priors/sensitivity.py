"""How diverse is the persona population, and how does one attribute's prior drive it?

Tempering: attribute A's target table becomes uniform^(1-beta) * prior^beta (row-normalised, then masked as
usual), beta = 0 (uniform) ... 1 (the census). For each beta we compute, exactly:

- the entropy H = -sum_x p(x) log p(x) of the whole persona population (chain rule: the sum over attributes of
  the expected conditional entropy, each expectation one tensor contraction, see `model.exact.entropy`);
- the expected number of distinct personas among n independent draws, E[D] = sum_x 1 - (1 - p_x)^n. The joint has
  ~1e16 cells, so we never enumerate it. Instead we expand by inclusion-exclusion,
      E[D] = sum_{j>=1} (-1)^(j+1) C(n, j) M_j,   M_j = sum_x p_x^j,
  where every power sum M_j is itself an exact contraction (of the tables raised elementwise to the j-th
  power). Pointwise in p these partial sums are Bonferroni inequalities, so the odd partial sums are upper and
  the even ones lower bounds on E[D]: we stop when the bracket is narrower than 1e-9 relative (or at j = n,
  where the sum is finite and exact) and report the bracket. If the series does not converge in 60 terms
  (n so large that most personas repeat), a small joint (<= 4M cells) is enumerated exactly; otherwise the
  bracket is returned as is and flagged.
"""
from __future__ import annotations

import math

import numpy as np

from model.compiled import Profile
from model.exact import contract, entropy, power_sum
from model.masks import with_tables
from common.markdown import table

MAX_TERMS = 60
ENUMERATE_CELLS = 4_000_000
TOLERANCE = 1e-9  # relative width of the Bonferroni bracket at which the series stops


def tempered(profile: Profile, name: str, beta: float) -> Profile:
    a = profile.attribute(name)
    with np.errstate(divide="ignore"):
        logp = np.where(a.prior > 0, np.log(np.where(a.prior > 0, a.prior, 1)), -np.inf)
    if beta == 0:
        new = np.ones_like(a.prior)
    else:
        new = np.exp(beta * (logp - logp.max(-1, keepdims=True)))
    return with_tables(profile, {name: new / new.sum(-1, keepdims=True)})


def expected_distinct(profile: Profile, n: int) -> dict:
    """{"value", "lower", "upper", "terms", "method"}: E[number of distinct personas in n draws], exact bracket."""
    support = power_sum(profile, 0)
    lower, upper = 0.0, float(min(n, support))
    partial, terms, prev = 0.0, 0, math.inf
    log_n1 = math.lgamma(n + 1)
    for j in range(1, min(n, MAX_TERMS) + 1):
        m = power_sum(profile, j)
        t = math.exp(log_n1 - math.lgamma(j + 1) - math.lgamma(n - j + 1) + math.log(m)) if m > 0 else 0.0
        partial += t if j % 2 else -t
        terms = j
        if j % 2:
            upper = min(upper, partial)
        else:
            lower = max(lower, partial)
        if j == n:  # the series is finite: exact
            return {"value": partial, "lower": partial, "upper": partial, "terms": j, "method": "exact (finite sum)"}
        if t == 0 or (t < prev and upper - lower <= TOLERANCE * max(lower, 1.0)):
            break
        prev = t
    if upper - lower <= TOLERANCE * max(lower, 1.0):
        return {"value": 0.5 * (lower + upper), "lower": lower, "upper": upper, "terms": terms,
                "method": "inclusion-exclusion over exact power sums"}
    cells = math.prod(a.size for a in profile.attributes.values())
    if cells <= ENUMERATE_CELLS:
        p = contract(profile, list(profile.order)).reshape(-1)
        value = float(np.sum(-np.expm1(n * np.log1p(-np.clip(p, 0, 1 - 1e-300)))))
        return {"value": value, "lower": value, "upper": value, "terms": terms, "method": "exact enumeration"}
    return {"value": 0.5 * (lower + upper), "lower": lower, "upper": upper, "terms": terms,
            "method": "bracket only (series did not converge)"}


def sweep(profile: Profile, name: str, n: int, steps: int = 11) -> list[dict]:
    rows = []
    for beta in np.linspace(0.0, 1.0, steps):
        prof = tempered(profile, name, float(beta))
        h = entropy(prof)
        d = expected_distinct(prof, n)
        rows.append({"beta": round(float(beta), 6), "entropy_nats": h, "entropy_bits": h / math.log(2),
                     "attribute_entropy_bits": _attribute_entropy(prof, name) / math.log(2),
                     "expected_distinct": d["value"], "distinct_lower": d["lower"], "distinct_upper": d["upper"],
                     "distinct_method": d["method"]})
    return rows


def _attribute_entropy(profile: Profile, name: str) -> float:
    p = contract(profile, [name])
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def markdown(profile: Profile, name: str, n: int, rows: list[dict]) -> str:
    dom = f", domain {profile.domain.name}" if profile.domain else ""
    cells = [[f"{r['beta']:.2f}", f"{r['entropy_bits']:.4f}", f"{r['attribute_entropy_bits']:.4f}",
              f"{r['expected_distinct']:.4f}", f"[{r['distinct_lower']:.4f}, {r['distinct_upper']:.4f}]"] for r in rows]
    lines = [f"# Sensitivity of persona diversity to the prior of `{name}` (profile {profile.name}{dom})", "",
             f"`{name}` tempered from uniform (beta = 0) to its census table (beta = 1). Entropy exact; "
             f"E[distinct personas in n = {n} draws] exact bracket ({rows[-1]['distinct_method']}).", "",
             *table(["beta", "H(persona) bits", f"H({name}) bits", f"E[distinct] of {n}", "bracket"], cells,
                    compact=True)]
    return "\n".join(lines) + "\n"


def figure(profile: Profile, name: str, n: int, rows: list[dict]):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    beta = [r["beta"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    ax1.plot(beta, [r["entropy_bits"] for r in rows], "o-")
    ax1.set_xlabel(f"beta ({name}: 0 = uniform, 1 = census)")
    ax1.set_ylabel("persona entropy (bits)")
    ax2.plot(beta, [n - r["expected_distinct"] for r in rows], "o-", color="C1")
    ax2.set_xlabel(f"beta ({name})")
    ax2.set_ylabel(f"expected duplicates in n = {n}\n(n - E[distinct])")
    fig.suptitle(f"profile {profile.name}: tempering the prior of {name}")
    return fig
