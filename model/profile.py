"""Load a profile file (see profiles/README.md) and compile it to arrays.

A compiled `Profile` holds, for every attribute in topological order, its effective parents (declared parents plus
the attributes its rules condition on) and a conditional table over them: the target probabilities from the file
(`prior`), the boolean constraint mask (rules and the domain), and the masked, renormalised log-probabilities that
the model samples from. Sampling (`model.persona`) and exact enumeration (`model.exact`) read the same arrays.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from model.errors import UsageError

PROFILES_DIR = Path(__file__).parent / "profiles"
DOMAINS_DIR = Path(__file__).parent / "domains"
STAGES = (1, 2, 3)
PROB_TOLERANCE = 1e-6
RISK_DIGITS = 6  # a record's risk is rounded to this many decimals, and every policy decides on the rounded value


@dataclass(frozen=True, eq=False)
class Attribute:
    name: str
    stage: int
    label: str
    categories: tuple[str, ...]
    parents: tuple[str, ...]
    prior: np.ndarray = field(repr=False)  # [*parent sizes, K] target probabilities, rows sum to 1
    mask: np.ndarray = field(repr=False)  # [*parent sizes, K] bool: combination allowed by rules and domain
    probs: np.ndarray = field(repr=False)  # [*parent sizes, K] masked and renormalised
    source: str = ""

    @property
    def size(self) -> int:
        return len(self.categories)


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    format: str
    restrict: dict[str, tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class Plausibility:
    """The learned risk model of a profile's `plausibility` section (written by `python -m model.priors learn`).

    Each factor f is a tuple of attributes with a hazard table H_f over their category indices (an upper credible
    bound of the learned noisy-AND hazard h_f, 0 for the cells the file leaves out). A persona's attributable risk
    is r(x) = 1 - exp(-sum_f H_f[x_f]): the probability, at that bound, that some attribute combination gets it
    rejected. The baseline h0 (rejections no attribute predicts) is deliberately not in it; `baseline` is the
    rejection rate observed among personas of risk 0, at which the engine drops trusted personas unasked."""

    factors: tuple[tuple[tuple[str, ...], np.ndarray], ...]
    baseline: float = 0.0  # the validator's rejection rate among personas with r(x) = 0, as learnt

    @property
    def attributes(self) -> tuple[str, ...]:
        """Every attribute some factor reads, in first-use order."""
        return tuple(dict.fromkeys(n for names, _ in self.factors for n in names))

    def hazard(self, codes: dict[str, np.ndarray]) -> np.ndarray:
        """sum_f H_f[x_f] for category codes given per attribute (arrays that broadcast together)."""
        return sum((table[tuple(codes[n] for n in names)] for names, table in self.factors), np.float64(0))

    def risk(self, codes: dict[str, np.ndarray]) -> np.ndarray:
        """r(x) = 1 - exp(-sum_f H_f[x_f]), rounded to RISK_DIGITS decimals (what records carry)."""
        return np.round(-np.expm1(-self.hazard(codes)), RISK_DIGITS)


@dataclass(frozen=True, eq=False)
class Profile:
    name: str
    description: str
    attributes: dict[str, Attribute]  # topological order
    domain: Domain | None = None
    rules: tuple[dict, ...] = ()
    plausibility: Plausibility | None = None

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(self.attributes)

    @property
    def labels(self) -> dict[str, str]:
        return {name: a.label for name, a in self.attributes.items()}

    @property
    def stages(self) -> dict[int, tuple[str, ...]]:
        return {s: tuple(n for n, a in self.attributes.items() if a.stage == s) for s in STAGES}

    def attribute(self, name: str) -> Attribute:
        try:
            return self.attributes[name]
        except KeyError:
            raise UsageError(f"profile {self.name!r} has no attribute {name!r}") from None


def available(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.json"))


def _read_json(ref: str, directory: Path, kind: str) -> dict:
    path = Path(ref)
    if not (ref.endswith(".json") or path.is_file()):
        path = directory / f"{ref}.json"
        if not path.is_file():
            raise UsageError(f"unknown {kind} {ref!r} (available: {', '.join(available(directory))}, or a .json path)")
    return read_json_object(path, kind)


def read_json_object(path: Path, kind: str) -> dict:
    """The JSON object in the file `path`; UsageError (naming the `kind` of file) when it is missing or not one."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{kind} file not found: {path}") from None
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{kind} file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{kind} file {path} must hold a JSON object")
    return data


def load_profile(ref: str = "jp", domain: str | None = None) -> Profile:
    """Load a profile by name (`jp`, `us`) or JSON path, optionally restricted by a domain (name or path)."""
    data = _read_json(ref, PROFILES_DIR, "profile")
    dom = _parse_domain(_read_json(domain, DOMAINS_DIR, "domain"), domain) if domain else None
    return compile_profile(data, dom)


def _parse_domain(data: dict, ref: str) -> Domain:
    restrict = data.get("restrict")
    if not isinstance(restrict, dict) or not restrict:
        raise UsageError(f"domain {ref!r} needs a non-empty 'restrict' object")
    return Domain(
        name=str(data.get("name", Path(ref).stem)),
        description=str(data.get("description", "")),
        format=str(data.get("format", "text")),
        restrict={k: tuple(_as_list(v, f"domain {ref!r} restrict.{k}")) for k, v in restrict.items()},
    )


def _as_list(value, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise UsageError(f"{where}: expected a category name or a non-empty list of names")


def _known(cats: dict[str, tuple[str, ...]], attr: str, values, where: str) -> list[str]:
    """`values` (a category name or a list of them) checked against attribute `attr`'s categories."""
    if attr not in cats:
        raise UsageError(f"{where}: unknown attribute {attr!r}")
    values = _as_list(values, where)
    for v in values:
        if v not in cats[attr]:
            raise UsageError(f"{where}: unknown category {v!r} for attribute {attr!r}")
    return values


def _distribution(spec: dict, categories: tuple[str, ...], where: str) -> np.ndarray:
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


def _topological(specs: dict[str, dict], extra_parents: dict[str, list[str]]) -> list[str]:
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


def compile_profile(data: dict, domain: Domain | None = None) -> Profile:
    name = str(data.get("name", "profile"))
    specs = data.get("attributes")
    if not isinstance(specs, dict) or not specs:
        raise UsageError(f"profile {name!r} needs a non-empty 'attributes' object")
    cats: dict[str, tuple[str, ...]] = {}
    for attr, spec in specs.items():
        if not isinstance(spec, dict):
            raise UsageError(f"attribute {attr!r} must be an object")
        categories = spec.get("categories")
        if not isinstance(categories, list) or not categories or not all(isinstance(c, str) for c in categories):
            raise UsageError(f"attribute {attr!r} needs a non-empty list of category names")
        if len(set(categories)) != len(categories):
            raise UsageError(f"attribute {attr!r} lists a category twice")
        if spec.get("stage") not in STAGES:
            raise UsageError(f"attribute {attr!r}: stage must be one of {STAGES}")
        for parent in spec.get("parents", []):
            if parent not in specs:
                raise UsageError(f"attribute {attr!r}: parent {parent!r} is not declared")
            if parent == attr:
                raise UsageError(f"dependency cycle: {attr} -> {attr}")
        cats[attr] = tuple(categories)

    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise UsageError("'rules' must be a list")
    rule_parents: dict[str, list[str]] = {}
    parsed_rules = []
    for i, rule in enumerate(rules):
        where = f"rule {i + 1}"
        if not isinstance(rule, dict) or not isinstance(rule.get("if"), dict) or not rule["if"]:
            raise UsageError(f"{where}: needs a non-empty 'if' object")
        if ("allow" in rule) == ("forbid" in rule):
            raise UsageError(f"{where}: give exactly one of 'allow' or 'forbid'")
        kind = "allow" if "allow" in rule else "forbid"
        if not isinstance(rule[kind], dict) or not rule[kind]:
            raise UsageError(f"{where}: '{kind}' must be a non-empty object")
        cond = {a: _known(cats, a, v, where) for a, v in rule["if"].items()}
        for child, values in rule[kind].items():
            values = _known(cats, child, values, where)
            if child in cond:
                raise UsageError(f"{where}: {child!r} cannot condition on itself")
            for a in cond:
                if a not in specs[child].get("parents", []) and a not in rule_parents.setdefault(child, []):
                    rule_parents[child].append(a)
            parsed_rules.append((child, cond, kind, values))

    if domain is not None:
        for attr, values in domain.restrict.items():
            _known(cats, attr, list(values), f"domain {domain.name!r}")

    order = _topological(specs, rule_parents)
    for attr in order:
        for parent in list(specs[attr].get("parents", [])) + rule_parents.get(attr, []):
            if specs[parent]["stage"] > specs[attr]["stage"]:
                raise UsageError(f"attribute {attr!r} (stage {specs[attr]['stage']}) cannot depend on "
                                 f"{parent!r} (stage {specs[parent]['stage']})")

    attributes: dict[str, Attribute] = {}
    possible: dict[str, np.ndarray] = {}  # per attribute: which categories can occur (an over-approximation)
    for attr in order:
        spec = specs[attr]
        declared = list(spec.get("parents", []))
        parents = declared + rule_parents.get(attr, [])
        prior = _table(attr, spec, declared, cats)
        prior = prior.reshape(prior.shape[:-1] + (1,) * (len(parents) - len(declared)) + prior.shape[-1:])
        shape = tuple(len(cats[p]) for p in parents) + (len(cats[attr]),)
        prior = np.broadcast_to(prior, shape).copy()
        mask = np.ones(shape, dtype=bool)
        for child, cond, kind, values in parsed_rules:
            if child != attr:
                continue
            hit = np.ones(shape[:-1], dtype=bool)
            for axis, p in enumerate(parents):
                if p in cond:
                    ind = np.isin(np.array(cats[p]), cond[p])
                    hit &= ind.reshape((1,) * axis + (-1,) + (1,) * (len(parents) - axis - 1))
            listed = np.isin(np.array(cats[attr]), values)
            if kind == "forbid":
                mask &= ~(hit[..., None] & listed)
            else:
                mask &= ~hit[..., None] | listed
        if domain is not None and attr in domain.restrict:
            mask &= np.isin(np.array(cats[attr]), domain.restrict[attr])
        masked = prior * mask
        totals = masked.sum(-1, keepdims=True)
        reachable = np.ones(shape[:-1], dtype=bool)
        for axis, p in enumerate(parents):
            reachable &= possible[p].reshape((1,) * axis + (-1,) + (1,) * (len(parents) - axis - 1))
        dead = reachable & (totals[..., 0] <= 0)
        if dead.any():
            idx = np.argwhere(dead)[0]
            combo = ", ".join(f"{p}={cats[p][i]}" for p, i in zip(parents, idx)) or "(no parents)"
            raise UsageError(f"masks leave no allowed value of {attr!r} when {combo}")
        probs = np.where(totals > 0, masked / np.where(totals > 0, totals, 1), 1.0 / shape[-1])
        possible[attr] = np.any((probs > 0) & reachable[..., None], axis=tuple(range(len(parents))))
        attributes[attr] = Attribute(
            name=attr, stage=spec["stage"], label=str(spec.get("label", attr)), categories=cats[attr],
            parents=tuple(parents), prior=prior, mask=mask, probs=probs, source=str(spec.get("source", "")),
        )
    return Profile(name=name, description=str(data.get("description", "")), attributes=attributes,
                   domain=domain, rules=tuple(rules), plausibility=_plausibility(data.get("plausibility"), cats))


def _plausibility(section, cats: dict[str, tuple[str, ...]]) -> Plausibility | None:
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
        hazards = factor.get("hazards")
        if not isinstance(hazards, list):
            raise UsageError(f"{where}: needs a 'hazards' list of [category per attribute..., hazard]")
        table = np.zeros([len(cats[n]) for n in names])
        seen = set()
        for row in hazards:
            if not (isinstance(row, list) and len(row) == len(names) + 1 and all(isinstance(v, str) for v in row[:-1])):
                raise UsageError(f"{where}: a hazard row must be [{', '.join(names)}, hazard]")
            cell = tuple(cats[n].index(_known(cats, n, v, where)[0]) for n, v in zip(names, row))
            h = row[-1]
            if cell in seen:
                raise UsageError(f"{where}: cell {row[:-1]} is listed twice")
            if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h < float("inf"):
                raise UsageError(f"{where}: hazard of {row[:-1]} must be a finite number >= 0")
            seen.add(cell)
            table[cell] = h
        parsed.append((tuple(names), table))
    return Plausibility(tuple(parsed), float(baseline))


def _table(attr: str, spec: dict, parents: list[str], cats: dict[str, tuple[str, ...]]) -> np.ndarray:
    """The declared conditional table, [*parent sizes, K], from the first matching row per parent combination."""
    categories = cats[attr]
    if not parents:
        if "table" in spec:
            raise UsageError(f"attribute {attr!r} has a 'table' but no parents")
        return _distribution(spec, categories, f"attribute {attr!r}")
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
            cond[p] = set(_known(cats, p, values, where))
        compiled.append((cond, _distribution(row, categories, where)))
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


def log_probs(attribute: Attribute) -> np.ndarray:
    """Masked log-probabilities as float32, -inf where the mask forbids."""
    with np.errstate(divide="ignore"):
        return np.log(attribute.probs).astype(np.float32)

