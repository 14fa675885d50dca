"""Reading a profile file's data (see profiles/README.md) into checked pieces: the attributes and their categories,
the rules, each attribute's declared conditional table, a domain, and the `plausibility` section.

Every step raises a UsageError naming the place in the file it rejects; `model.compiler` runs them in order.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.errors import UsageError
from common.schema import STAGES
from model.compiled import Domain, Plausibility

PROB_TOLERANCE = 1e-6

Categories = dict[str, tuple[str, ...]]  # attribute -> its category names


class Rule(NamedTuple):
    """One child of a rule: when every `cond` attribute takes one of its values, `kind` ("allow" or "forbid")
    the child's `values`."""

    child: str
    cond: dict[str, list[str]]
    kind: str
    values: list[str]


def as_list(value, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise UsageError(f"{where}: expected a category name or a non-empty list of names")


def known(cats: Categories, attr: str, values, where: str) -> list[str]:
    """`values` (a category name or a list of them) checked against attribute `attr`'s categories."""
    if attr not in cats:
        raise UsageError(f"{where}: unknown attribute {attr!r}")
    values = as_list(values, where)
    for v in values:
        if v not in cats[attr]:
            raise UsageError(f"{where}: unknown category {v!r} for attribute {attr!r}")
    return values


def categories(specs: dict[str, dict]) -> Categories:
    """Every attribute's categories, after checking its object: a non-empty list of distinct category names, a
    stage, and declared parents."""
    cats: Categories = {}
    for attr, spec in specs.items():
        if not isinstance(spec, dict):
            raise UsageError(f"attribute {attr!r} must be an object")
        names = spec.get("categories")
        if not isinstance(names, list) or not names or not all(isinstance(c, str) for c in names):
            raise UsageError(f"attribute {attr!r} needs a non-empty list of category names")
        if len(set(names)) != len(names):
            raise UsageError(f"attribute {attr!r} lists a category twice")
        if spec.get("stage") not in STAGES:
            raise UsageError(f"attribute {attr!r}: stage must be one of {STAGES}")
        for parent in spec.get("parents", []):
            if parent not in specs:
                raise UsageError(f"attribute {attr!r}: parent {parent!r} is not declared")
            if parent == attr:
                raise UsageError(f"dependency cycle: {attr} -> {attr}")
        cats[attr] = tuple(names)
    return cats


def parse_rules(rules: list, specs: dict[str, dict], cats: Categories) -> tuple[list[Rule], dict[str, list[str]]]:
    """The file's `rules`, one `Rule` per child, and per child the attributes its rules condition on that are not
    declared parents (they become parents of the compiled table)."""
    if not isinstance(rules, list):
        raise UsageError("'rules' must be a list")
    rule_parents: dict[str, list[str]] = {}
    parsed = []
    for i, rule in enumerate(rules):
        where = f"rule {i + 1}"
        if not isinstance(rule, dict) or not isinstance(rule.get("if"), dict) or not rule["if"]:
            raise UsageError(f"{where}: needs a non-empty 'if' object")
        if ("allow" in rule) == ("forbid" in rule):
            raise UsageError(f"{where}: give exactly one of 'allow' or 'forbid'")
        kind = "allow" if "allow" in rule else "forbid"
        if not isinstance(rule[kind], dict) or not rule[kind]:
            raise UsageError(f"{where}: '{kind}' must be a non-empty object")
        cond = {a: known(cats, a, v, where) for a, v in rule["if"].items()}
        for child, values in rule[kind].items():
            values = known(cats, child, values, where)
            if child in cond:
                raise UsageError(f"{where}: {child!r} cannot condition on itself")
            for a in cond:
                if a not in specs[child].get("parents", []) and a not in rule_parents.setdefault(child, []):
                    rule_parents[child].append(a)
            parsed.append(Rule(child, cond, kind, values))
    return parsed, rule_parents


def parse_domain(data: dict, ref: str) -> Domain:
    """A domain file's data: a whitelist of categories per attribute, with its name, description and format."""
    restrict = data.get("restrict")
    if not isinstance(restrict, dict) or not restrict:
        raise UsageError(f"domain {ref!r} needs a non-empty 'restrict' object")
    return Domain(
        name=str(data.get("name", Path(ref).stem)),
        description=str(data.get("description", "")),
        format=str(data.get("format", "text")),
        restrict={k: tuple(as_list(v, f"domain {ref!r} restrict.{k}")) for k, v in restrict.items()},
        languages=_domain_languages(data.get("languages", {}), ref),
    )


def _domain_languages(languages, ref: str) -> dict[str, dict[str, str]]:
    """A domain's `languages`: {language: {"format": ..., "description": ...}}, how prompts in it word the two."""
    ok = isinstance(languages, dict) and all(
        isinstance(v, dict) and set(v) <= {"format", "description"} and all(isinstance(t, str) for t in v.values())
        for v in languages.values())
    if not ok:
        raise UsageError(f"domain {ref!r}: 'languages' must map language codes to {{\"format\", \"description\"}}")
    return {lang: dict(v) for lang, v in languages.items()}


def check_domain(domain: Domain, cats: Categories, profile: str = "profile") -> None:
    """Every attribute and category the domain names exists in the profile; a missing one is named with what the
    domain expects of it."""
    for attr, values in domain.restrict.items():
        expects = f"the domain expects attribute {attr!r} with the categories {', '.join(map(repr, values))}"
        if attr not in cats:
            raise UsageError(f"domain {domain.name!r} restricts attribute {attr!r}, which profile {profile!r} lacks: "
                             f"{expects} (see model/profiles/README.md)")
        if missing := [v for v in values if v not in cats[attr]]:
            raise UsageError(f"domain {domain.name!r}: unknown category {missing[0]!r} for attribute {attr!r} of "
                             f"profile {profile!r}: {expects}")


def parse_language(data: dict) -> str:
    """A profile's `language` (the language of its texts; default en)."""
    language = data.get("language", "en")
    if not isinstance(language, str) or not language.strip():
        raise UsageError(f"profile {data.get('name', 'profile')!r}: 'language' must be a language code such as 'ja'")
    return language


def parse_labels(attr: str, spec: dict) -> dict[str, str]:
    """An attribute's `labels`: how prompts in other languages name it ({language: label})."""
    labels = spec.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) and v.strip() for v in labels.values()):
        raise UsageError(f"attribute {attr!r}: 'labels' must map language codes to non-empty labels")
    return dict(labels)


def parse_value_labels(where: str, spec: dict, categories: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """A `value_labels` object: how prompts in other languages show categories ({language: {category: label}}),
    checked against `categories`: one language's labels name known categories, each with its own non-empty label.
    `where` names what holds it (e.g. "attribute 'gender'")."""
    languages = spec.get("value_labels", {})
    if not isinstance(languages, dict):
        raise UsageError(f"{where}: 'value_labels' must map language codes to {{category: label}} objects")
    for language, labels in languages.items():
        key = f"{where}: value_labels.{language}"
        if not isinstance(labels, dict):
            raise UsageError(f"{key} must be an object of category -> label")
        for category, label in labels.items():
            if category not in categories:
                raise UsageError(f"{key}: unknown category {category!r} (categories: {', '.join(categories)})")
            if not isinstance(label, str) or not label.strip():
                raise UsageError(f"{key}.{category}: expected a non-empty string, got {label!r}")
        if twice := next((lab for lab in labels.values() if list(labels.values()).count(lab) > 1), None):
            shared = [c for c, lab in labels.items() if lab == twice]
            raise UsageError(f"{key}: {shared[0]!r} and {shared[1]!r} are both shown as {twice!r}")
    return {language: dict(labels) for language, labels in languages.items()}


def distribution(spec: dict, categories: tuple[str, ...], where: str) -> np.ndarray:
    """A row of probabilities from a `probs` (sums to 1) or `weights` (normalised) object keyed by category."""
    has_probs, has_weights = "probs" in spec, "weights" in spec
    if has_probs == has_weights:
        raise UsageError(f"{where}: give exactly one of 'probs' or 'weights'")
    values = spec["probs" if has_probs else "weights"]
    if not isinstance(values, dict):
        raise UsageError(f"{where}: 'probs'/'weights' must be an object keyed by category")
    unknown = sorted(set(values) - set(categories))
    if unknown:
        raise UsageError(f"{where}: unknown category {unknown[0]!r}")
    missing = [c for c in categories if c not in values]
    if missing:
        raise UsageError(f"{where}: no probability for category {missing[0]!r}")
    row = np.array([values[c] for c in categories], dtype=np.float64) if all(
        isinstance(values[c], (int, float)) and not isinstance(values[c], bool) for c in categories
    ) else None
    if row is None or not np.all(np.isfinite(row)) or np.any(row < 0):
        raise UsageError(f"{where}: probabilities must be non-negative numbers")
    total = row.sum()
    if has_probs and abs(total - 1.0) > PROB_TOLERANCE:
        raise UsageError(f"{where}: probabilities sum to {total:.9g}, not 1")
    if total <= 0:
        raise UsageError(f"{where}: weights are all zero")
    return row / total


def declared_table(attr: str, spec: dict, parents: list[str], cats: Categories) -> np.ndarray:
    """The declared conditional table, [*parent sizes, K], from the first matching row per parent combination."""
    categories = cats[attr]
    if not parents:
        if "table" in spec:
            raise UsageError(f"attribute {attr!r} has a 'table' but no parents")
        return distribution(spec, categories, f"attribute {attr!r}")
    rows = spec.get("table")
    if not isinstance(rows, list) or not rows:
        raise UsageError(f"attribute {attr!r} has parents, so it needs a non-empty 'table' of rows")
    compiled = []
    for i, row in enumerate(rows):
        where = f"attribute {attr!r} table row {i + 1}"
        when = row.get("when", {}) if isinstance(row, dict) else None
        if not isinstance(when, dict):
            raise UsageError(f"{where}: needs a 'when' object")
        cond = {}
        for p, values in when.items():
            if p not in parents:
                raise UsageError(f"{where}: condition on {p!r}, which is not a parent of {attr!r}")
            cond[p] = set(known(cats, p, values, where))
        compiled.append((cond, distribution(row, categories, where)))
    table = np.empty(tuple(len(cats[p]) for p in parents) + (len(categories),))
    for combo in itertools.product(*(range(len(cats[p])) for p in parents)):
        values = {p: cats[p][i] for p, i in zip(parents, combo)}
        for cond, dist in compiled:
            if all(values[p] in allowed for p, allowed in cond.items()):
                table[combo] = dist
                break
        else:
            described = ", ".join(f"{p}={v}" for p, v in values.items())
            raise UsageError(f"attribute {attr!r}: no table row matches {described} (end with a default row)")
    return table


def parse_plausibility(section, cats: Categories) -> Plausibility | None:
    """The `plausibility` section: {"baseline": b, "factors": [{"attributes": [a, b], "hazards": [[cat_a, cat_b, H],
    ...]}, ...]} (cells left out have hazard 0; other keys are provenance); None when the profile has none."""
    if section is None:
        return None
    factors = section.get("factors") if isinstance(section, dict) else None
    if not isinstance(factors, list):
        raise UsageError("'plausibility' needs a 'factors' list")
    baseline = section.get("baseline", 0.0)
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not 0 <= baseline < 1:
        raise UsageError("plausibility baseline must be a number in [0, 1)")
    parsed = []
    for i, factor in enumerate(factors):
        where = f"plausibility factor {i + 1}"
        names = factor.get("attributes") if isinstance(factor, dict) else None
        if not isinstance(names, list) or not names or len(set(names)) != len(names):
            raise UsageError(f"{where}: needs a non-empty list of distinct 'attributes'")
        if unknown := [n for n in names if n not in cats]:
            raise UsageError(f"{where}: unknown attribute {unknown[0]!r}")
        parsed.append((tuple(names), _hazards(factor.get("hazards"), names, cats, where)))
    return Plausibility(tuple(parsed), float(baseline))


def _hazards(hazards, names: list[str], cats: Categories, where: str) -> np.ndarray:
    """A factor's hazard table over its attributes' categories from its [category per attribute..., hazard] rows."""
    if not isinstance(hazards, list):
        raise UsageError(f"{where}: needs a 'hazards' list of [category per attribute..., hazard]")
    table = np.zeros([len(cats[n]) for n in names])
    seen = set()
    for row in hazards:
        if not (isinstance(row, list) and len(row) == len(names) + 1 and all(isinstance(v, str) for v in row[:-1])):
            raise UsageError(f"{where}: a hazard row must be [{', '.join(names)}, hazard]")
        cell = tuple(cats[n].index(known(cats, n, v, where)[0]) for n, v in zip(names, row))
        h = row[-1]
        if cell in seen:
            raise UsageError(f"{where}: cell {row[:-1]} is listed twice")
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h < float("inf"):
            raise UsageError(f"{where}: hazard of {row[:-1]} must be a finite number >= 0")
        seen.add(cell)
        table[cell] = h
    return table
