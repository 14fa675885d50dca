"""Exact distributions of a compiled profile by contracting its conditional tables (no sampling).

The joint is the product of every attribute's masked table P(a | parents(a)); a marginal over any set of
attributes is that product summed over the others, which opt_einsum contracts attribute by attribute
(variable elimination) in float64.
"""
from __future__ import annotations

import numpy as np
import opt_einsum

from model.profile import Profile


def _factors(profile: Profile) -> tuple[list, dict[str, int]]:
    """einsum operands in interleaved form (table, [axis ids]) and the axis id of every attribute."""
    axis = {name: i for i, name in enumerate(profile.order)}
    operands = []
    for name, a in profile.attributes.items():
        operands += [a.probs, [axis[p] for p in a.parents] + [axis[name]]]
    return operands, axis


def joint(profile: Profile, names: list[str]) -> np.ndarray:
    """P(names[0], names[1], ...) as an array [K0, K1, ...] under the masked model."""
    operands, axis = _factors(profile)
    return opt_einsum.contract(*operands, [axis[n] for n in names], optimize="greedy")


def marginals(profile: Profile) -> dict[str, np.ndarray]:
    """{attribute: P(attribute)} for every attribute of the profile."""
    return {name: joint(profile, [name]) for name in profile.order}
