"""What a compiled profile is: the arrays that sampling and exact analysis read.

A compiled `Profile` holds, for every attribute in topological order, its effective parents (declared parents plus
the attributes its rules condition on) and a conditional table over them: the target probabilities from the file
(`prior`), the boolean constraint mask (rules and the domain), and the masked, renormalised log-probabilities that
the model samples from. Sampling (`model.persona`) and exact enumeration (`model.exact`) read the same arrays.
`model.compiler` builds them from a profile file's data; `model.profile` loads the files.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common.errors import UsageError
from common.schema import STAGES

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
    labels: dict[str, str] = field(default_factory=dict)  # language -> how prompts in that language name it
    value_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # language -> category -> how shown

    @property
    def size(self) -> int:
        return len(self.categories)


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    format: str
    restrict: dict[str, tuple[str, ...]]
    languages: dict[str, dict[str, str]] = field(default_factory=dict)  # language -> its format and description

    def worded(self, language: str) -> tuple[str, str]:
        """(format, description) as prompts in `language` word them (the domain's `languages`, else its own)."""
        own = self.languages.get(language, {})
        return own.get("format", self.format), own.get("description", self.description)


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
    language: str = "en"  # the language of its texts (a profile's `language`; --language overrides)

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(self.attributes)

    @property
    def labels(self) -> dict[str, str]:
        return {name: a.label for name, a in self.attributes.items()}

    def labels_in(self, language: str) -> dict[str, str]:
        """How prompts in `language` name the attributes: each one's `labels[language]`, else its `label`."""
        return {name: a.labels.get(language, a.label) for name, a in self.attributes.items()}

    def value_labels_in(self, language: str) -> dict[str, dict[str, str]]:
        """How prompts in `language` show the categories: attribute -> category -> its `value_labels[language]`
        label, for the attributes that have some (a category without one is shown as it is)."""
        return {name: a.value_labels[language] for name, a in self.attributes.items() if language in a.value_labels}

    @property
    def stages(self) -> dict[int, tuple[str, ...]]:
        return {s: tuple(n for n, a in self.attributes.items() if a.stage == s) for s in STAGES}

    def attribute(self, name: str) -> Attribute:
        try:
            return self.attributes[name]
        except KeyError:
            raise UsageError(f"profile {self.name!r} has no attribute {name!r}") from None


def log_probs(attribute: Attribute) -> np.ndarray:
    """Masked log-probabilities as float32, -inf where the mask forbids."""
    with np.errstate(divide="ignore"):
        return np.log(attribute.probs).astype(np.float32)
