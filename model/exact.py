"""Exact distributions of a compiled profile by contracting its conditional tables (no sampling).

The joint is the product of every attribute's masked table P(a | parents(a)); a marginal over any set of
attributes is that product summed over the others, which opt_einsum contracts attribute by attribute
(variable elimination) in float64. `tables="prior"` contracts the unmasked target tables instead, and `extra`
multiplies further non-negative factors (attribute names, array) into the product (then the result is
unnormalised: its total is the factors' expectation under the model).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import opt_einsum

from model.compiled import Profile

Factor = tuple[Sequence[str], np.ndarray]  # (attribute names, non-negative array [K_name0, K_name1, ...])


def _factors(profile: Profile, tables: str = "probs", power: float = 1,
             extra: Sequence[Factor] = ()) -> tuple[list, dict[str, int]]:
    """einsum operands in interleaved form (table, [axis ids]) and the axis id of every attribute."""
    axis = {name: i for i, name in enumerate(profile.order)}
    operands = []
    for name, a in profile.attributes.items():
        table = getattr(a, tables)
        operands += [table if power == 1 else table ** power, [axis[p] for p in a.parents] + [axis[name]]]
    for names, array in extra:
        operands += [np.asarray(array, dtype=np.float64), [axis[n] for n in names]]
    return operands, axis


def contract(profile: Profile, names: Sequence[str], *, tables: str = "probs", power: float = 1,
             extra: Sequence[Factor] = ()) -> np.ndarray:
    """sum over all other attributes of prod_a table_a ** power * prod extra, as an array over `names`."""
    operands, axis = _factors(profile, tables, power, extra)
    return opt_einsum.contract(*operands, [axis[n] for n in names], optimize="greedy")


def joint(profile: Profile, names: list[str], tables: str = "probs") -> np.ndarray:
    """P(names[0], names[1], ...) as an array [K0, K1, ...] under the masked model (`tables="prior"`: unmasked)."""
    return contract(profile, names, tables=tables)


def marginals(profile: Profile, tables: str = "probs") -> dict[str, np.ndarray]:
    """{attribute: P(attribute)} for every attribute of the profile."""
    return {name: joint(profile, [name], tables) for name in profile.order}


def entropy(profile: Profile) -> float:
    """Entropy in nats of the whole persona population, -sum_x p(x) log p(x), by the chain rule:
    the sum over attributes of E_parents[H(attribute | parents)], each expectation an exact contraction."""
    total = 0.0
    for name, a in profile.attributes.items():
        weight = contract(profile, list(a.parents)) if a.parents else np.float64(1.0)
        p = a.probs
        with np.errstate(divide="ignore", invalid="ignore"):
            row_h = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
        total += float((weight * row_h).sum())
    return total


def power_sum(profile: Profile, j: int) -> float:
    """sum over all personas x of p(x) ** j (j = 0: the number of personas with p(x) > 0), exactly."""
    if j == 0:
        operands, axis = _factors(profile)
        operands = [(t > 0).astype(np.float64) if k % 2 == 0 else t for k, t in enumerate(operands)]
        return float(opt_einsum.contract(*operands, [], optimize="greedy"))
    return float(contract(profile, [], power=j))
