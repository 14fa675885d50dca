"""`report`: target vs effective marginals, and the mass removed by each rule, exactly."""
from __future__ import annotations

import numpy as np
import opt_einsum

from model.compiled import Profile
from model.exact import contract, marginals
from common.markdown import table
from model.priors.targets import targets, tv


def _listify(v) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _indicator(profile: Profile, name: str, values) -> np.ndarray:
    return np.isin(np.array(profile.attributes[name].categories), _listify(values))


def removed_mass(profile: Profile) -> list[dict]:
    """For every rule (and domain restriction): the probability, under the unmasked model, of the combinations it
    forbids; computed exactly from the joint of its `if` attributes and its child under the `prior` tables."""
    out = []
    for i, rule in enumerate(profile.rules):
        kind = "allow" if "allow" in rule else "forbid"
        cond = {a: _listify(v) for a, v in rule["if"].items()}
        for child, values in rule[kind].items():
            names = list(cond) + [child]
            p = contract(profile, names, tables="prior")
            hit = np.ones(p.shape[:-1], dtype=bool)
            for axis, a in enumerate(cond):
                shape = [1] * len(cond)
                shape[axis] = -1
                hit = hit & _indicator(profile, a, cond[a]).reshape(shape)
            listed = _indicator(profile, child, values)
            forbidden = hit[..., None] & (listed if kind == "forbid" else ~listed)
            out.append({"rule": i + 1, "child": child, "if": cond, kind: _listify(values),
                        "removed": float(p[forbidden].sum()), "reason": rule.get("reason", "")})
    if profile.domain is not None:
        for attr, values in profile.domain.restrict.items():
            p = contract(profile, [attr], tables="prior")
            out.append({"rule": f"domain {profile.domain.name}", "child": attr, "if": {}, "allow": list(values),
                        "removed": float(p[~_indicator(profile, attr, values)].sum()), "reason": "domain whitelist"})
    return out


def total_removed(profile: Profile) -> float:
    """P(some rule or the domain forbids the persona) under the unmasked model: 1 - sum_x prod prior * mask."""
    operands = []
    axis = {n: i for i, n in enumerate(profile.order)}
    for name, a in profile.attributes.items():
        operands += [a.prior * a.mask, [axis[p] for p in a.parents] + [axis[name]]]
    return float(1.0 - opt_einsum.contract(*operands, [], optimize="greedy"))


def report(data: dict, profile: Profile) -> dict:
    goal = targets(data, profile)
    eff = marginals(profile)
    attrs = {}
    for name, a in profile.attributes.items():
        attrs[name] = {
            "label": a.label, "stage": a.stage, "tv": tv(goal[name], eff[name]),
            "categories": list(a.categories), "target": goal[name].tolist(), "effective": eff[name].tolist(),
        }
    return {"profile": profile.name, "domain": profile.domain.name if profile.domain else None,
            "target_source": "provenance" if (data.get("provenance") or {}).get("targets") else "unmasked model",
            "attributes": attrs, "rules": removed_mass(profile), "removed_total": total_removed(profile)}


def _fmt_cond(cond: dict) -> str:
    return " & ".join(f"{a} in {{{', '.join(v)}}}" for a, v in cond.items()) or "-"


def _shifts(a: dict, top: int) -> str:
    """The `top` categories whose probability the masks move most, as "category: target -> effective"."""
    t, e = np.array(a["target"]), np.array(a["effective"])
    idx = np.argsort(-np.abs(t - e))[:top]
    return "; ".join(f"{a['categories'][k]}: {t[k]:.4f} -> {e[k]:.4f}" for k in idx if abs(t[k] - e[k]) > 5e-5)


def markdown(rep: dict, top: int = 3) -> str:
    dom = f", domain {rep['domain']}" if rep["domain"] else ""
    attributes = [[name, str(a["stage"]), str(len(a["target"])), f"{a['tv']:.4f}", _shifts(a, top) or "-"]
                  for name, a in rep["attributes"].items()]
    rules = []
    for r in rep["rules"]:
        kind = "allow" if "allow" in r else "forbid"
        rules.append([str(r["rule"]), _fmt_cond(r["if"]), r["child"], f"{kind}: {', '.join(r[kind])}",
                      f"{r['removed']:.5f}", r["reason"]])
    lines = [f"# Priors report: profile {rep['profile']}{dom}", "",
             f"Target = the {rep['target_source']} marginal; effective = the masked model that is sampled. "
             "Both exact (tensor contraction, no sampling).", "",
             *table(["attribute", "stage", "K", "TV(target, effective)", "largest shifts (target -> effective)"],
                    attributes, compact=True),
             "", f"Mass removed by the masks together (unmasked model): **{rep['removed_total']:.4f}**", "",
             *table(["rule", "if", "child", "allow / forbid", "mass removed", "reason"], rules, compact=True)]
    return "\n".join(lines) + "\n"


WIDE = 20  # attributes with more categories get a row of their own, with vertical bars
COLUMNS = 4


def _rows(rep: dict) -> list[list[str]]:
    """The figure's rows: the attributes with at most WIDE categories COLUMNS to a row, then each wider one alone,
    in the report's attribute order."""
    names = list(rep["attributes"])
    wide = [n for n in names if len(rep["attributes"][n]["categories"]) > WIDE]
    narrow = [n for n in names if n not in wide]
    return [narrow[i:i + COLUMNS] for i in range(0, len(narrow), COLUMNS)] + [[n] for n in wide]


def _height(rep: dict, row: list[str]) -> float:
    """Inches: a wide attribute's vertical bars and their rotated labels; else the most categories' bars."""
    if len(row) == 1 and len(rep["attributes"][row[0]]["categories"]) > WIDE:
        return 2.8
    return 0.5 + 0.2 * max(len(rep["attributes"][name]["categories"]) for name in row)


def figure(rep: dict):
    """Target vs effective marginals, one panel per attribute: horizontal bars (categories readable on the y
    axis), or vertical bars on a row of their own for an attribute with more than WIDE categories."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = _rows(rep)
    heights = [_height(rep, row) for row in rows]
    fig = plt.figure(figsize=(17, sum(heights) + 0.8), layout="constrained")
    grid = fig.add_gridspec(len(rows), COLUMNS, height_ratios=heights)
    first = None
    for r, row in enumerate(rows):
        for c, name in enumerate(row):
            a = rep["attributes"][name]
            k = np.arange(len(a["categories"]))
            if len(row) == 1 and len(k) > WIDE:
                ax = fig.add_subplot(grid[r, :])
                ax.bar(k - 0.2, a["target"], 0.4, label="target")
                ax.bar(k + 0.2, a["effective"], 0.4, label="effective")
                ax.set_xticks(k, a["categories"], rotation=90, fontsize=7)
                ax.set_xlim(-0.7, len(k) - 0.3)
            else:
                ax = fig.add_subplot(grid[r, c])
                ax.barh(k - 0.2, a["target"], 0.4, label="target")
                ax.barh(k + 0.2, a["effective"], 0.4, label="effective")
                ax.set_yticks(k, a["categories"], fontsize=7)
                ax.set_ylim(len(k) - 0.4, -0.6)  # the first category on top
                ax.xaxis.set_major_locator(MaxNLocator(4))  # a narrow panel's probabilities, apart
            ax.tick_params(labelsize=7)
            ax.set_title(f"{name} (TV {a['tv']:.4f})", fontsize=9)
            first = first or ax
    first.legend(fontsize=7)
    fig.suptitle(f"profile {rep['profile']}" + (f", domain {rep['domain']}" if rep["domain"] else "")
                 + ": target vs effective marginals", fontsize=11)
    return fig
