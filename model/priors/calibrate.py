"""Calibrate a profile so that its effective (post-mask) marginals match its targets.

Masks remove probability mass (a teenager cannot be a lawyer), so the sampled marginals drift from the census.
For each chosen attribute we multiply every row of its file table by one per-category factor exp(theta_k),
keeping the table's within-row odds ratios, i.e. its conditional structure. Attributes are solved in topological
order: an attribute's effective marginal depends only on its ancestors' tables and its own, so once its
ancestors are fixed, theta solves a concave problem, maximise
    F(theta) = t . theta - sum_r P(r) log sum_k b_rk exp(theta_k)
(r: parent combination with exact effective probability P(r), b_rk: target table row times mask), whose
gradient t - m(theta) vanishes exactly where the effective marginal m equals the target t. We maximise it by
damped Newton. Where the masks make the target unreachable (a category only allowed in parent combinations
that carry less mass than its target), the maximiser runs to the boundary and the attribute is reported as
infeasible together with the violated bound.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from common.hashing import content_hash
from model.compiled import Profile
from model.compiler import compile_profile
from model.exact import contract, marginals
from model.masks import with_tables
from common.markdown import table
from model.priors.targets import targets as file_targets
from model.priors.targets import tv

GOAL = 0.005  # TV per attribute the issue asks for
MAX_LOG_TILT = 40.0  # an infeasible target drives theta to -inf; stop at exp(-40)


@dataclass
class Fit:
    name: str
    tilt: np.ndarray  # [K] per-category factor (1 where untouched)
    tv_before: float
    tv_after: float = float("nan")
    bound: str = ""  # why the target is infeasible, when it is


def _solve(t: np.ndarray, w: np.ndarray, b: np.ndarray, iters: int = 200) -> tuple[np.ndarray, str]:
    """theta maximising F (see module doc) for target t [K], row weights w [R], rows b [R, K]."""
    K = t.shape[0]
    reach = (w[:, None] * (b > 0)).sum(0)  # upper bound on each category's effective mass
    only = (w * ((b > 0).sum(1) == 1))[:, None] * (b > 0)  # mass of rows where k is the only allowed value
    lower = only.sum(0)
    bound = ""
    bad = np.flatnonzero((t > reach + 1e-9) | (t < lower - 1e-9))
    if bad.size:
        k = bad[np.argmax(np.abs(t - np.clip(t, lower, reach))[bad])]
        bound = (f"category {k}: target {t[k]:.4f} outside the [{lower[k]:.4f}, {reach[k]:.4f}] "
                 "that the masks and parent marginals allow")
    active = (t > 0) & (reach > 0)
    theta = np.zeros(K)
    if active.sum() <= 1:
        return np.where(active, 0.0, -np.inf), bound
    ta = t[active] / t[active].sum()
    keep = w > 0
    ba, wa = b[keep][:, active], w[keep]
    log_b = np.log(np.where(ba > 0, ba, 1.0))
    allowed = ba > 0

    def value_and_rows(th):
        z = np.where(allowed, log_b + th, -np.inf)
        top = z.max(1, keepdims=True)
        e = np.exp(z - top)
        s = e.sum(1, keepdims=True)
        return ta @ th - wa @ (np.log(s[:, 0]) + top[:, 0]), e / s

    th = np.zeros(active.sum())
    f, p = value_and_rows(th)
    for _ in range(iters):
        m = wa @ p
        g = ta - m
        if np.abs(g).max() < 1e-13:
            break
        H = np.diag(m) - (p * wa[:, None]).T @ p
        step = np.linalg.solve(H + 1e-12 * np.eye(len(th)) + 1e-9 * np.abs(g).max() * np.eye(len(th)), g)
        step -= step.mean()
        step *= min(1.0, 8.0 / max(np.abs(step).max(), 1e-300))
        alpha = 1.0
        while alpha > 1e-6:
            f_new, p_new = value_and_rows(th + alpha * step)
            if f_new >= f - 1e-15:
                break
            alpha /= 2
        else:
            break
        th, f, p = th + alpha * step, f_new, p_new
    theta[active] = np.maximum(th - th.max(), -MAX_LOG_TILT)  # keep every allowed cell of a reachable row > 0
    theta[~active] = -np.inf
    return theta, bound


def calibrate_profile(data: dict, chosen: list[str] | None = None) -> tuple[Profile, dict[str, Fit], dict]:
    """(calibrated compiled profile, per-attribute fits, target marginals) for the raw profile `data`."""
    base = compile_profile(data)
    goal = file_targets(data, base)
    chosen = list(base.order) if chosen is None else chosen
    for name in chosen:
        base.attribute(name)
    before = marginals(base)
    current, fits = base, {}
    for name in base.order:
        a = current.attributes[name]
        fit = Fit(name, np.ones(a.size), tv(before[name], goal[name]))
        fits[name] = fit
        if name not in chosen:
            continue
        rows = contract(current, list(a.parents)).reshape(-1) if a.parents else np.ones(1)
        b = (a.prior * a.mask).reshape(-1, a.size)
        theta, fit.bound = _solve(goal[name], rows, b)
        fit.tilt = np.exp(theta)
        tilted = a.prior * fit.tilt
        sums = tilted.sum(-1, keepdims=True)
        current = with_tables(current, {name: np.where(sums > 0, tilted / np.where(sums > 0, sums, 1), a.prior)})
    after = marginals(current)
    for name, fit in fits.items():
        fit.tv_after = tv(after[name], goal[name])
    return current, fits, goal


def _tilt_row(spec: dict, categories, tilt: np.ndarray) -> dict:
    values = spec.get("probs", spec.get("weights"))
    row = np.array([float(values[c]) for c in categories])
    row = row / row.sum()
    new = row * tilt
    if not new.sum() > 0:  # an unreachable row whose categories all lost their mass: keep it as it was
        new = row
    new = new / new.sum()
    out = {k: v for k, v in spec.items() if k not in ("probs", "weights")}
    out["weights"] = {c: float(x) for c, x in zip(categories, new)}
    return out


def calibrated_file(data: dict, fits: dict[str, Fit], goal: dict[str, np.ndarray], chosen: list[str],
                    origin: str) -> dict:
    """A new profile JSON: every chosen attribute's rows multiplied by its tilt, with provenance."""
    out = copy.deepcopy(data)
    out["name"] = f"{data.get('name', 'profile')}-calibrated"
    for name in chosen:
        spec, fit = out["attributes"][name], fits[name]
        if np.allclose(fit.tilt, fit.tilt[0]):
            continue
        cats = spec["categories"]
        tilt = np.where(np.isfinite(fit.tilt), fit.tilt, 0.0)
        if "table" in spec:
            spec["table"] = [_tilt_row(row, cats, tilt) for row in spec["table"]]
        else:
            spec.update(_tilt_row(spec, cats, tilt))
            spec.pop("probs", None)
        spec["source"] = (f"{spec.get('source', '')} [calibrated by `python -m model.priors calibrate`: every row "
                          "multiplied by one per-category factor so the post-mask marginal matches the target]")
    prov = dict(data.get("provenance") or {})
    prov.setdefault("history", [])
    prov["history"] = list(prov["history"]) + [{
        "tool": "python -m model.priors calibrate",
        "from": origin,
        "from_sha256": content_hash(data),  # identifies the file the calibrated profile came from
        "method": "per-attribute category tilt, Newton on the concave moment-matching objective, topological order",
        "goal_tv": GOAL,
        "attributes": {n: {"tv_before": round(f.tv_before, 6), "tv_after": round(f.tv_after, 6),
                           "tilt": {c: float(x) for c, x in zip(out["attributes"][n]["categories"], f.tilt)},
                           **({"infeasible": f.bound} if f.bound else {})}
                       for n, f in fits.items() if n in chosen},
    }]
    prov["targets"] = {n: {c: float(x) for c, x in zip(data["attributes"][n]["categories"], goal[n])}
                       for n in data["attributes"]}
    out["provenance"] = prov
    return out


def summary(fits: dict[str, Fit], chosen: list[str]) -> list[str]:
    """The markdown table `calibrate` prints: each chosen attribute's TV before and after, and whether the target
    was reachable."""
    rows = []
    for name in chosen:
        f = fits[name]
        note = "infeasible: " + f.bound if f.tv_after > GOAL else ("ok" if not f.bound else "ok; " + f.bound)
        rows.append([name, f"{f.tv_before:.6f}", f"{f.tv_after:.6f}", note])
    return table(["attribute", "TV before", "TV after", ""], rows, compact=True)
