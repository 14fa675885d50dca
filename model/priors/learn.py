"""`learn`: plausibility learned from validation outcomes, folded back into the profile.

Records: JSONL, one persona per line, shaped like `model.sample`'s records (`stage1`/`stage2`/`stage3` groups of
attribute -> category) plus `validation: {"stage1": V, "stage2": V, "stage3": V}`, where V is a label
("natural", "rare but plausible", "implausible") or the engine's verdict object `{"label": ..., "reason": ...}`;
later stages may be missing after a rejection. A persona counts as implausible if any stage says so.

Model (a noisy-AND, i.e. Bernoulli with a complementary log link): every factor f, a single attribute or a
selected pair, rejects the persona independently with hazard h_f[cell], plus a baseline h0:
    P(plausible | x) = exp(-(h0 + sum_f h_f[x_f])),   P(implausible | x) = 1 - P(plausible | x).
Sparsity prior (a positive horseshoe): h_f[cell] = tau_f * lambda_cell, lambda ~ HalfCauchy(1), tau_f ~
HalfCauchy(0.05), h0 ~ Exponential(20). Fitted by SVI (NumPyro, AutoNormal guide). Pairs are screened first: the
pairs whose cells explain the outcome best beyond their better single attribute (likelihood-ratio G statistic,
AIC penalty).

Why this link: P(plausible | x) is then a product of per-factor terms phi_f = exp(-h_f), which is exactly a
soft constraint the profile format can carry. `fold` multiplies the model by the posterior mean of each
phi_f and re-factorises the product into conditional tables by one backward pass (variable elimination in
reverse (stage, topological) order): each affected attribute gets the factor's other attribute as a parent, and
the normaliser is passed up to its parents' tables. The result samples exactly q(x) ~ p(x) P(plausible | x),
i.e. the population that validation would have accepted, with no change to `compile_profile` or the sampler.

`risk_section` also writes the posterior's upper credible bound of every hazard cell into the profile (its
`plausibility` section, `model.compiled.Plausibility`), so each record can carry its attributable risk
r(x) = 1 - exp(-sum_f H_f[x_f]) and the engine can skip validating personas it is confident about (`--trust-below`).
h0 is left out of r on purpose: it is the validator's attribute-independent rejection rate, which no attribute
predicts and skipping cannot avoid or cause.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import opt_einsum

from common.errors import UsageError
from common.hashing import content_hash
from common.jsonl import read_objects
from common.schema import IMPLAUSIBLE, LABELS, STAGE_KEYS, stage_key
from model.compiled import Profile
from common.markdown import table
from model.priors.targets import targets

RISK_FLOOR = 0.05  # smallest hazard bound `risk_section` writes (see there)
CI_LEVEL = 0.95  # the credible intervals of `top_combinations`


# ---------------------------------------------------------------- reading records

def read_records(path: str | Path, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """(codes [N, A] in profile.order, implausible [N] 0/1) from a records JSONL file. An engine result line also
    contributes the personas it rejected before the accepted one (its `rejected_draws`). A persona the engine
    trusted without asking (`validation: {"skipped": ...}`, see `llm.generate --trust-below`) is no evidence and is
    left out; an audited one was validated and counts like any other."""
    index = {name: {c: i for i, c in enumerate(a.categories)} for name, a in profile.attributes.items()}
    stage_of = {name: a.stage for name, a in profile.attributes.items()}
    codes, labels = [], []

    def _persona(rec: dict, where: str) -> tuple[list[int], int]:
        if not isinstance(rec, dict):
            raise UsageError(f"{where}: not a JSON object")
        row = []
        for name in profile.order:
            group = rec.get(stage_key(stage_of[name]))
            value = group.get(name) if isinstance(group, dict) else None
            if value is None:
                raise UsageError(f"{where}: no value for attribute {name!r} (in {stage_key(stage_of[name])!r})")
            if value not in index[name]:
                raise UsageError(f"{where}: unknown category {value!r} for attribute {name!r}")
            row.append(index[name][value])
        validation = rec.get("validation")
        if not isinstance(validation, dict) or not validation:
            raise UsageError(f"{where}: needs a non-empty 'validation' object (stage1/stage2/stage3 labels)")
        verdicts = []
        for key, v in validation.items():
            if key not in STAGE_KEYS:
                raise UsageError(f"{where}: unknown validation stage {key!r}")
            label = v.get("label") if isinstance(v, dict) else v
            if label not in LABELS:
                raise UsageError(f"{where}: validation {key} label must be one of {', '.join(LABELS)}")
            verdicts.append(label)
        return row, int(IMPLAUSIBLE in verdicts)

    for n, rec in read_objects(path):
        for k, persona in enumerate([rec] + list(rec.get("rejected_draws") or [])):
            if isinstance(persona, dict) and "skipped" in (persona.get("validation") or {}):
                continue
            row, implausible = _persona(persona, f"{path}:{n}" if k == 0 else f"{path}:{n} rejected draw {k}")
            codes.append(row)
            labels.append(implausible)
    if not codes:
        raise UsageError(f"records file {path} holds no records with validation labels")
    return np.array(codes, dtype=np.int32), np.array(labels, dtype=np.int8)


# ---------------------------------------------------------------- choosing factors

def _xlogx(x):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1)), 0.0)


def _g_stat(cells: np.ndarray, y: np.ndarray, size: int) -> tuple[float, int]:
    """Likelihood-ratio statistic of y against a free rate per cell, and its degrees of freedom."""
    n = np.bincount(cells, minlength=size).astype(np.float64)
    k = np.bincount(cells, weights=y, minlength=size)
    N, K = n.sum(), k.sum()
    ll = (_xlogx(k) + _xlogx(n - k) - _xlogx(n)).sum()
    ll0 = _xlogx(K) + _xlogx(N - K) - _xlogx(N)
    return float(2 * (ll - ll0)), int((n > 0).sum() - 1)


def screen_pairs(profile: Profile, codes: np.ndarray, y: np.ndarray, limit: int) -> list[tuple[str, str, float]]:
    """Up to `limit` attribute pairs whose joint cells explain implausibility beyond the better single attribute
    (G_pair - G_single - 2 * extra df > 0), best first."""
    sizes = [profile.attributes[n].size for n in profile.order]
    single = [_g_stat(codes[:, i], y, sizes[i]) for i in range(len(sizes))]
    scored = []
    for i, j in itertools.combinations(range(len(sizes)), 2):
        g, df = _g_stat(codes[:, i] * sizes[j] + codes[:, j], y, sizes[i] * sizes[j])
        base_g, base_df = max(single[i], single[j])
        score = g - base_g - 2 * (df - base_df)
        if score > 0:
            scored.append((profile.order[i], profile.order[j], score))
    scored.sort(key=lambda t: -t[2])
    return scored[:limit]


# ---------------------------------------------------------------- the Bayesian model

@dataclass
class Posterior:
    factors: list[tuple[str, ...]]  # each factor's attributes
    shapes: list[tuple[int, ...]]
    hazard: list[np.ndarray]  # per factor: posterior draws [S, *shape] of h_f
    h0: np.ndarray  # [S]
    counts: list[np.ndarray]  # per factor: records per cell
    rejected: list[np.ndarray]  # per factor: implausible records per cell
    codes: np.ndarray  # the evidence: [N, A] in profile.order
    y: np.ndarray  # [N] 1 = implausible

    def accept_factor(self, f: int) -> np.ndarray:
        """Posterior mean of exp(-h_f), per cell."""
        return np.exp(-self.hazard[f]).mean(0)


def _cell_index(profile: Profile, codes: np.ndarray, factors) -> tuple[np.ndarray, list, list[int]]:
    col = {n: i for i, n in enumerate(profile.order)}
    idx, shapes, offsets, off = [], [], [], 0
    for names in factors:
        shape = tuple(profile.attributes[n].size for n in names)
        flat = np.ravel_multi_index(tuple(codes[:, col[n]] for n in names), shape)
        idx.append(flat + off)
        shapes.append(shape)
        offsets.append(off)
        off += int(np.prod(shape))
    return np.stack(idx, 1), shapes, offsets + [off]


def fit(profile: Profile, codes: np.ndarray, y: np.ndarray, pairs: int = 6, steps: int = 2000,
        seed: int = 0, draws: int = 400) -> Posterior:
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    factors = [(n,) for n in profile.order] + [(a, b) for a, b, _ in screen_pairs(profile, codes, y, pairs)]
    idx, shapes, offsets = _cell_index(profile, codes, factors)
    group = np.concatenate([np.full(int(np.prod(s)), g) for g, s in enumerate(shapes)])
    n_cells, n_groups = offsets[-1], len(factors)
    idx_j, y_j, group_j = jnp.asarray(idx), jnp.asarray(y, jnp.float32), jnp.asarray(group)

    def model():
        h0 = numpyro.sample("h0", dist.Exponential(20.0))
        tau = numpyro.sample("tau", dist.HalfCauchy(0.05).expand([n_groups]).to_event(1))
        lam = numpyro.sample("lam", dist.HalfCauchy(1.0).expand([n_cells]).to_event(1))
        h = tau[group_j] * lam
        total = h0 + h[idx_j].sum(1)
        loglik = y_j * jnp.log(-jnp.expm1(-total) + 1e-12) - (1 - y_j) * total
        numpyro.factor("y", loglik.sum())

    from numpyro.infer.initialization import init_to_value

    start = {"h0": jnp.float32(max(float(np.mean(y)), 1e-3) / 2), "tau": jnp.full(n_groups, 0.01),
             "lam": jnp.full(n_cells, 0.1)}  # start from "almost nothing is implausible"
    guide = AutoNormal(model, init_loc_fn=init_to_value(values=start), init_scale=0.05)
    svi = SVI(model, guide, numpyro.optim.Adam(0.03), Trace_ELBO())
    result = svi.run(jax.random.PRNGKey(seed), steps, progress_bar=False)
    post = guide.sample_posterior(jax.random.PRNGKey(seed + 1), result.params, sample_shape=(draws,))
    h = np.asarray(post["tau"])[:, group] * np.asarray(post["lam"])
    col = {n: i for i, n in enumerate(profile.order)}
    hazard, counts, rejected = [], [], []
    for g, (names, shape) in enumerate(zip(factors, shapes)):
        hazard.append(h[:, offsets[g]:offsets[g + 1]].reshape((draws,) + shape))
        flat = np.ravel_multi_index(tuple(codes[:, col[n]] for n in names), shape)
        size = int(np.prod(shape))
        counts.append(np.bincount(flat, minlength=size).reshape(shape))
        rejected.append(np.bincount(flat, weights=y, minlength=size).reshape(shape))
    return Posterior(factors, shapes, hazard, np.asarray(post["h0"]), counts, rejected, codes, y)


def top_combinations(profile: Profile, post: Posterior, k: int = 15) -> list[dict]:
    """The cells with the highest posterior probability of rejecting a persona on their own, 1 - exp(-h), with
    central CI_LEVEL credible intervals and the observed counts. Only the cells some record reached are ranked: a
    cell no record reached (the run's domain or the masks exclude it, or it was never drawn) has nothing but its
    heavy-tailed prior, whose mean says nothing about the validator."""
    tail = (1 - CI_LEVEL) / 2
    rows = []
    for f, names in enumerate(post.factors):
        p = 1 - np.exp(-post.hazard[f])
        mean = p.mean(0)
        reached = np.flatnonzero(post.counts[f].ravel() > 0)
        for cell in reached[np.argsort(-mean.ravel()[reached], kind="stable")[:k]]:
            c = np.unravel_index(cell, post.shapes[f])
            draws = p[(slice(None),) + c]
            rows.append({"combination": {n: profile.attributes[n].categories[i] for n, i in zip(names, c)},
                         "p_implausible": float(mean[c]),
                         "ci": [float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))],
                         "ci_level": CI_LEVEL,
                         "records": int(post.counts[f][c]), "implausible_records": int(post.rejected[f][c])})
    rows.sort(key=lambda r: -r["p_implausible"])
    return rows[:k]


# ---------------------------------------------------------------- folding back into the profile

def refactor(profile: Profile, factors: list[tuple[tuple[str, ...], np.ndarray]]) -> dict[str, tuple[list, np.ndarray]]:
    """Conditional tables of q(x) ~ p(x) * prod_f factor_f(x_f) (p: the masked model), by a backward pass.

    Returns {attribute: (parents, table [*parent sizes, K])} for every attribute whose table changes. Attributes
    are eliminated in reverse (stage, topological) order, so new parents always come earlier and from the same
    or an earlier stage."""
    order = sorted(profile.order, key=lambda n: (profile.attributes[n].stage, profile.order.index(n)))
    pos = {n: i for i, n in enumerate(order)}
    axis = {n: i for i, n in enumerate(profile.order)}
    pending = [(tuple(names), np.asarray(arr, np.float64)) for names, arr in factors]
    out = {}
    for name in reversed(order):
        mine = [f for f in pending if name in f[0]]
        if not mine:
            continue
        pending = [f for f in pending if name not in f[0]]
        a = profile.attributes[name]
        extra = sorted({n for names, _ in mine for n in names} - {name} - set(a.parents), key=pos.get)
        parents = list(a.parents) + extra
        operands = [a.probs, [axis[p] for p in a.parents] + [axis[name]]]
        for names, arr in mine:
            operands += [arr, [axis[n] for n in names]]
        table = opt_einsum.contract(*operands, [axis[p] for p in parents] + [axis[name]])
        z = table.sum(-1)
        out[name] = (parents, table / z[..., None])
        if parents and not np.allclose(z, z.flat[0], rtol=1e-12, atol=0):
            pending.append((tuple(parents), z))
    return out


def table_rows(profile: Profile, parents: list[str], cats, table: np.ndarray) -> list[dict]:
    """Compact file rows for a conditional table: split on one parent at a time, grouping the parent's values whose
    sub-tables are identical, and stop as soon as a sub-table no longer depends on the remaining parents."""
    rows = []

    def emit(when: dict, sub: np.ndarray, depth: int) -> None:
        flat = sub.reshape(-1, sub.shape[-1])
        if np.all(flat == flat[0]):
            rows.append({"when": dict(when), "weights": {c: float(x) for c, x in zip(cats, flat[0])}})
            return
        p = parents[depth]
        groups: dict[bytes, list[int]] = {}
        for i in range(sub.shape[0]):
            groups.setdefault(np.ascontiguousarray(sub[i]).tobytes(), []).append(i)
        for members in groups.values():
            values = [profile.attributes[p].categories[i] for i in members]
            emit({**when, p: values if len(values) > 1 else values[0]} if len(members) < sub.shape[0] else when,
                 sub[members[0]], depth + 1)

    emit({}, table, 0)
    return rows


def risk_section(profile: Profile, post: Posterior, quantile: float = 0.95, floor: float = RISK_FLOOR) -> dict:
    """The profile's `plausibility` section (`model.compiled.Plausibility`).

    factors: per factor, the cells whose posterior `quantile` of the hazard h_f is at least `floor`, with that bound
    H_f rounded up to 4 decimals; cells below the floor are left out (H = 0): the noisy-AND fit spreads the
    attribute-independent baseline thinly over every cell of every factor (bounds of 0.001-0.02 each), and summing
    those over ~20 factors would call every persona risky.
    baseline: the validator's rejection rate among the records with no stored cell (r(x) = 0), mean(y | r = 0):
    what the engine drops trusted personas at, so that trusting them leaves the accepted population as it was."""
    factors, hazard = [], np.zeros(len(post.y))
    col = {n: i for i, n in enumerate(profile.order)}
    for f, names in enumerate(post.factors):
        bound = np.ceil(np.quantile(post.hazard[f], quantile, axis=0) * 1e4) / 1e4
        bound[bound < floor] = 0.0
        cells = np.argwhere(bound > 0)
        if len(cells):
            cats = [profile.attributes[n].categories for n in names]
            factors.append({"attributes": list(names),
                            "hazards": [[c[i] for c, i in zip(cats, cell)] + [float(bound[tuple(cell)])]
                                        for cell in cells]})
            hazard += bound[tuple(post.codes[:, col[n]] for n in names)]
    clean = hazard == 0
    return {"risk": "1 - exp(-sum of the hazards of a persona's cells); the baseline h0 is left out",
            "bound": f"posterior {quantile:g} quantile of each cell's hazard", "floor": floor,
            "baseline": float(post.y[clean].mean()) if clean.any() else 0.0, "baseline_records": int(clean.sum()),
            "factors": factors}


def fold(data: dict, profile: Profile, post: Posterior, min_effect: float = 0.1,
         origin: str = "", records: str = "", floor: float = RISK_FLOOR) -> tuple[dict, list[dict]]:
    """A new profile JSON whose model is p(x) * prod_f E[exp(-h_f)] (only cells whose rejection probability
    1 - exp(-h) is at least `min_effect` with 95% posterior probability are folded in: the confidently implausible
    combinations) and whose `plausibility` section is `risk_section(..., floor=floor)`, with provenance. Also
    returns the factors used."""
    factors, used = [], []
    for f, names in enumerate(post.factors):
        reject = 1 - np.exp(-post.hazard[f])  # [S, *cells]
        confident = np.quantile(reject, 0.05, axis=0) >= min_effect
        if not confident.any():
            continue
        phi = np.where(confident, post.accept_factor(f), 1.0)
        phi = phi / phi.max()
        factors.append((names, phi))
        used.append({"attributes": list(names), "cells": int(confident.sum())})
    tables = refactor(profile, factors)
    out = copy.deepcopy(data)
    out["name"] = f"{data.get('name', 'profile')}-learned"
    for name, (parents, probs) in tables.items():
        spec = out["attributes"][name]
        cats = profile.attributes[name].categories
        for key in ("probs", "weights", "table", "parents"):
            spec.pop(key, None)
        if parents:
            spec["parents"] = parents
            spec["table"] = table_rows(profile, parents, cats, probs)
        else:
            spec["weights"] = {c: float(x) for c, x in zip(cats, probs)}
        spec["source"] = (f"{spec.get('source', '')} [reweighted by `python -m model.priors learn`: the masked "
                          "table times the learned plausibility factors, re-factorised exactly; see provenance]")
    prov = dict(data.get("provenance") or {})
    prov["targets"] = prov.get("targets") or {
        n: {c: float(x) for c, x in zip(profile.attributes[n].categories, t)}
        for n, t in targets(data, profile).items()}
    prov["history"] = list(prov.get("history", [])) + [{
        "tool": "python -m model.priors learn", "from": origin, "from_sha256": content_hash(data),
        "records": records,
        "method": "noisy-AND plausibility model (horseshoe prior, SVI); q(x) ~ p(x) * prod_f E[exp(-h_f(x_f))]",
        "min_effect": min_effect, "factors": used,
        "rewritten": {n: list(p) for n, (p, _) in tables.items()},
        "risk_floor": floor,
    }]
    out["plausibility"] = risk_section(profile, post, floor=floor)
    out["provenance"] = prov
    return out, used


# ---------------------------------------------------------------- what `learn` prints

def summary(y: np.ndarray, used: list[dict]) -> str:
    """One line: the records read, the implausible share, and the factors folded in."""
    return (f"{len(y)} records, {int(y.sum())} implausible ({y.mean():.1%}); factors folded in: "
            + (", ".join("x".join(u["attributes"]) + f" ({u['cells']} cells)" for u in used) or "none"))


def top_table(top: list[dict]) -> list[str]:
    """The markdown table of `top_combinations`."""
    rows = [[", ".join(f"{k}={v}" for k, v in r["combination"].items()), f"{r['p_implausible']:.3f}",
             f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]", str(r["records"]), str(r["implausible_records"])]
            for r in top]
    return table(["combination", "P(implausible)", f"{CI_LEVEL:.0%} CI", "records", "implausible"], rows,
                 compact=True)
