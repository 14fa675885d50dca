"""Compile a profile file's data to arrays (`model.compiled.Profile`), as a short pipeline: parse and validate the
attributes and rules (`model.parse`), order the attributes so that parents come first, check that no attribute
depends on a later stage, build every attribute's masked tables (`model.masks`), and read the `plausibility`
section. An attribute's table may hold at most MAX_TABLE_CELLS cells (its parents' categories times its own), so a
profile cannot ask for a table larger than memory.
"""
from __future__ import annotations

import math

import numpy as np

from common.errors import UsageError
from model.compiled import Attribute, Domain, Profile
from model.masks import check_alive, full_prior, reachable, renormalise, rule_mask
from model.parse import (Categories, Rule, categories, check_domain, declared_table, parse_labels, parse_language,
                         parse_plausibility, parse_rules, parse_value_labels)

MAX_TABLE_CELLS = 2**22  # 32 MiB a float64 table; the shipped profiles' largest holds about 2,000


def compile_profile(data: dict, domain: Domain | None = None) -> Profile:
    """The compiled profile of a profile file's data, optionally restricted by a domain; UsageError on anything
    the file gets wrong (the first problem found, in the order of the steps)."""
    name = str(data.get("name", "profile"))
    specs = data.get("attributes")
    if not isinstance(specs, dict) or not specs:
        raise UsageError(f"profile {name!r} needs a non-empty 'attributes' object")
    cats = categories(specs)
    rules = data.get("rules", [])
    parsed, rule_parents = parse_rules(rules, specs, cats)
    if domain is not None:
        check_domain(domain, cats, name)
    order = topological(specs, rule_parents)
    check_stages(specs, order, rule_parents)
    attributes = _attributes(specs, cats, order, rule_parents, parsed, domain)
    return Profile(name=name, description=str(data.get("description", "")), attributes=attributes,
                   language=parse_language(data),
                   domain=domain, rules=tuple(rules), plausibility=parse_plausibility(data.get("plausibility"), cats))


def topological(specs: dict[str, dict], extra_parents: dict[str, list[str]]) -> list[str]:
    """Declaration order, except that every attribute comes after its parents; a cycle is an error."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise UsageError(f"dependency cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for parent in list(specs[name].get("parents", [])) + extra_parents.get(name, []):
            visit(parent, path + [name])
        state[name] = 2
        order.append(name)

    for name in specs:
        visit(name, [])
    return order


def check_stages(specs: dict[str, dict], order: list[str], rule_parents: dict[str, list[str]]) -> None:
    """No attribute depends (by a declared parent or a rule) on an attribute of a later stage."""
    for attr in order:
        for parent in list(specs[attr].get("parents", [])) + rule_parents.get(attr, []):
            if specs[parent]["stage"] > specs[attr]["stage"]:
                raise UsageError(f"attribute {attr!r} (stage {specs[attr]['stage']}) cannot depend on "
                                 f"{parent!r} (stage {specs[parent]['stage']})")


def _attributes(specs: dict[str, dict], cats: Categories, order: list[str], rule_parents: dict[str, list[str]],
                rules: list[Rule], domain: Domain | None) -> dict[str, Attribute]:
    """Every attribute's tables in topological order: the declared table over its declared and rule parents, the
    mask, the renormalised table; each checked to leave a value allowed wherever its parents can reach."""
    attributes: dict[str, Attribute] = {}
    possible: dict[str, np.ndarray] = {}  # per attribute: which categories can occur (an over-approximation)
    for attr in order:
        spec = specs[attr]
        declared = list(spec.get("parents", []))
        parents = declared + rule_parents.get(attr, [])
        shape = tuple(len(cats[p]) for p in parents) + (len(cats[attr]),)
        if (cells := math.prod(shape)) > MAX_TABLE_CELLS:
            raise UsageError(f"attribute {attr!r}: its table over {', '.join(parents)} would hold {cells:,} cells, "
                             f"more than {MAX_TABLE_CELLS:,}: give it fewer parents or categories")
        prior = full_prior(declared_table(attr, spec, declared, cats), shape)
        mask = rule_mask(attr, parents, cats, rules, domain, shape)
        reach = reachable(parents, possible)
        check_alive(attr, parents, cats, prior, mask, reach)
        probs = renormalise(prior, mask)
        possible[attr] = np.any((probs > 0) & reach[..., None], axis=tuple(range(len(parents))))
        attributes[attr] = Attribute(
            name=attr, stage=spec["stage"], label=str(spec.get("label", attr)), labels=parse_labels(attr, spec),
            categories=cats[attr], value_labels=parse_value_labels(f"attribute {attr!r}", spec, cats[attr]),
            parents=tuple(parents), prior=prior, mask=mask, probs=probs, source=str(spec.get("source", "")),
        )
    return attributes
