"""Constraint masks and the masked, renormalised tables: what rules and a domain allow, which parent combinations
can occur, and the one mask-and-renormalise step that `model.compiler` and `with_tables` share."""
from __future__ import annotations

import dataclasses

import numpy as np

from common.errors import UsageError
from model.compiled import Domain, Profile
from model.parse import Categories, Rule


def _along(vector: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """`vector` shaped to broadcast along `axis` of an `ndim`-dimensional array."""
    return vector.reshape((1,) * axis + (-1,) + (1,) * (ndim - axis - 1))


def full_prior(table: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A declared table over the declared parents, repeated over the rule parents that follow them: [*shape]."""
    extra = len(shape) - table.ndim
    return np.broadcast_to(table.reshape(table.shape[:-1] + (1,) * extra + table.shape[-1:]), shape).copy()


def rule_mask(attr: str, parents: list[str], cats: Categories, rules: list[Rule], domain: Domain | None,
              shape: tuple[int, ...]) -> np.ndarray:
    """[*parent sizes, K] bool: the combinations of `attr` and its parents that its rules and the domain allow."""
    mask = np.ones(shape, dtype=bool)
    for rule in rules:
        if rule.child != attr:
            continue
        hit = np.ones(shape[:-1], dtype=bool)
        for axis, p in enumerate(parents):
            if p in rule.cond:
                hit &= _along(np.isin(np.array(cats[p]), rule.cond[p]), axis, len(parents))
        listed = np.isin(np.array(cats[attr]), rule.values)
        if rule.kind == "forbid":
            mask &= ~(hit[..., None] & listed)
        else:
            mask &= ~hit[..., None] | listed
    if domain is not None and attr in domain.restrict:
        mask &= np.isin(np.array(cats[attr]), domain.restrict[attr])
    return mask


def renormalise(prior: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """prior * mask with every row rescaled to sum to 1; a row the mask empties becomes uniform (the compiler
    checks that no such row is reachable, so it never matters)."""
    masked = prior * mask
    totals = masked.sum(-1, keepdims=True)
    return np.where(totals > 0, masked / np.where(totals > 0, totals, 1), 1.0 / prior.shape[-1])


def reachable(parents: list[str], possible: dict[str, np.ndarray]) -> np.ndarray:
    """[*parent sizes] bool: the parent combinations whose every value can occur (an over-approximation)."""
    out = np.ones(tuple(len(possible[p]) for p in parents), dtype=bool)
    for axis, p in enumerate(parents):
        out &= _along(possible[p], axis, len(parents))
    return out


def check_alive(attr: str, parents: list[str], cats: Categories, prior: np.ndarray, mask: np.ndarray,
                reach: np.ndarray) -> None:
    """UsageError when the masks leave `attr` no allowed value in some reachable parent combination."""
    dead = reach & ((prior * mask).sum(-1) <= 0)
    if dead.any():
        idx = np.argwhere(dead)[0]
        combo = ", ".join(f"{p}={cats[p][i]}" for p, i in zip(parents, idx)) or "(no parents)"
        raise UsageError(f"masks leave no allowed value of {attr!r} when {combo}")


def with_tables(profile: Profile, priors: dict[str, np.ndarray]) -> Profile:
    """A copy of `profile` whose named attributes have new target tables (same parents and masks), masked and
    renormalised as `compile_profile` does."""
    attributes = dict(profile.attributes)
    for name, prior in priors.items():
        a = attributes[name]
        attributes[name] = dataclasses.replace(a, prior=prior, probs=renormalise(prior, a.mask))
    return dataclasses.replace(profile, attributes=attributes)
