"""`joint`: the exact joint and conditional table of two attributes, under the effective or the target model."""
from __future__ import annotations

import numpy as np

from common.errors import UsageError
from model.compiled import Profile
from model.exact import contract
from common.markdown import table


def joint_table(profile: Profile, a: str, b: str, tables: str = "probs") -> dict:
    A, B = profile.attribute(a), profile.attribute(b)
    if a == b:
        raise UsageError("joint needs two different attributes")
    p = contract(profile, [a, b], tables=tables)
    pa = p.sum(1, keepdims=True)
    cond = np.where(pa > 0, p / np.where(pa > 0, pa, 1), 0.0)
    return {"profile": profile.name, "domain": profile.domain.name if profile.domain else None,
            "model": "effective" if tables == "probs" else "target", "a": a, "b": b,
            "a_categories": list(A.categories), "b_categories": list(B.categories),
            "joint": p.tolist(), "conditional_b_given_a": cond.tolist(), "marginal_a": pa[:, 0].tolist()}


def joint_markdown(j: dict) -> str:
    corner = j["a"] + " \\ " + j["b"]
    joint = [[name, *(f"{x:.5f}" for x in row), f"{m:.5f}"]
             for name, row, m in zip(j["a_categories"], j["joint"], j["marginal_a"])]
    conditional = [[name, *(f"{x:.4f}" for x in row)]
                   for name, row in zip(j["a_categories"], j["conditional_b_given_a"])]
    out = [f"# P({j['a']}, {j['b']}) and P({j['b']} | {j['a']}), {j['model']} model of profile {j['profile']}"
           + (f", domain {j['domain']}" if j["domain"] else ""), "", "Joint:", "",
           *table([corner, *j["b_categories"], f"P({j['a']})"], joint, compact=True),
           "", f"Conditional P({j['b']} | {j['a']}) (rows sum to 1):", "",
           *table([corner, *j["b_categories"]], conditional, compact=True)]
    return "\n".join(out) + "\n"
