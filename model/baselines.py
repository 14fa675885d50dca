"""The personas of the paper's baselines (section IV.D), as profiles for the same model and sampler.

- `personagen`: the profile as compiled (census priors, conditional tables, rule masks), validated by the LLM in
  three stages.
- `attrprompt` (AttrPrompt, Yu et al. 2023, "Large Language Model as Attributed Training Data Generator"; the
  paper: "generates texts with shuffled attribute combinations to promote diversity"): every attribute drawn
  uniformly and independently over its categories, with no conditional tables, rules or priors, and no LLM
  validation.
- `priorwork` (the paper's "Prior Work [22]", whose reference is K. Inoshita, IPSJ Kansai 2025, not Bui et al.
  [19], which the paper cites only as related work; the paper: "randomly generated personas with basic filtering
  thresholds on LLM outputs"): the same random personas, no validation, and a threshold on the generated texts.
  The paper gives neither the filter nor the threshold; we read it as the LLM rating, 1-5, how well a text
  expresses its target emotion, texts under the threshold (default 3) being regenerated
  (`llm.engine.texts.Settings.min_score`, `llm.generate --threshold`).

All three use the same generation prompt, so the methods differ only in how personas are built and filtered.
A baseline profile is an ordinary compiled `Profile`, so `model.records.sample_records` (and the exact analysis)
runs it unchanged. The domain stays a whitelist: `--domain sns` still means tweets, drawn uniformly from the
domain's allowed values.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from common.errors import UsageError
from model.compiled import Profile

METHODS = ("personagen", "attrprompt", "priorwork")


def uniform_independent(profile: Profile) -> Profile:
    """`profile` with every attribute parentless and uniform over its categories (domain-allowed ones only)."""
    attributes = {}
    for name, a in profile.attributes.items():
        allowed = np.ones(a.size, dtype=bool)
        if profile.domain is not None and name in profile.domain.restrict:
            allowed = np.isin(np.array(a.categories), profile.domain.restrict[name])
        prior = np.full(a.size, 1.0 / a.size)
        attributes[name] = dataclasses.replace(a, parents=(), prior=prior, mask=allowed,
                                               probs=allowed / allowed.sum())
    return dataclasses.replace(profile, attributes=attributes, rules=())


def persona_profile(profile: Profile, method: str) -> Profile:
    """The profile that draws `method`'s personas."""
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    return profile if method == "personagen" else uniform_independent(profile)
