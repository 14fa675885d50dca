"""A local stand-in for the LLM validator with a known hidden implausibility rule, to measure `learn`.

Each hidden rule is a conjunction (attribute -> values) checked at a stage (the first stage that shows all its
attributes); every stage also rejects a persona at random with probability `noise` (an LLM's whims). A stage
that rejects ends the persona's validation, as in the engine. Everything the benchmark reports about a profile
under this validator (validation calls per accepted persona, the accepted population's marginals) is computed
exactly by contraction; `label` produces engine-shaped records for `learn` to read.

`exact` also takes the engine's trust policy (`llm.generate --trust-below R --audit A`, `llm.engine.texts`): a persona
whose attributable risk r(x) (the profile's `plausibility` section) is below R gets no validation call, except that
a fraction A of them (a hash of seed, id and attempt: independent of x) is validated anyway; a trusted persona is
accepted with probability 1 - b (b: the section's baseline), else dropped unasked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.hashing import unit_interval
from common.schema import ACCEPTED, IMPLAUSIBLE, STAGES, Result, Verdict, attributes, stage_key, stage_of, stages
from model.compiled import Profile
from model.exact import contract

RULES_JP = (  # about 25% of jp personas
    {"age": ["65-74", "75+"], "style": ["casual", "net slang", "emotionally expressive"]},
    {"occupation": ["retired", "homemaker"], "setting": ["urban"]},
    {"age": ["13-17", "18-22"], "religion": ["Buddhism"]},
)


@dataclass(frozen=True)
class Validator:
    rules: tuple[dict, ...] = RULES_JP
    noise: float = 0.02
    seed: int = 0

    def stage_of(self, profile: Profile, rule: dict) -> int:
        return max(profile.attributes[a].stage for a in rule)

    def _hit(self, profile: Profile, rule: dict) -> tuple[list[str], np.ndarray]:
        names = list(rule)
        hit = np.ones([profile.attributes[a].size for a in names], dtype=bool)
        for axis, a in enumerate(names):
            ind = np.isin(np.array(profile.attributes[a].categories), rule[a])
            shape = [1] * len(names)
            shape[axis] = -1
            hit = hit & ind.reshape(shape)
        return names, hit

    def pass_factors(self, profile: Profile, stage: int) -> list:
        """Factors whose product is 1 iff no hidden rule of this stage fires."""
        out = []
        for rule in self.rules:
            if self.stage_of(profile, rule) == stage:
                names, hit = self._hit(profile, rule)
                out.append((names, (~hit).astype(np.float64)))
        return out

    def exact(self, profile: Profile, trust_below: float | None = None, audit: float = 0.0) -> dict:
        """Exact expected validation calls per persona, acceptance rate, calls per accepted persona, the accepted
        population's marginals, and under a trust policy the share of personas skipped and of accepted personas
        that the hidden rules would have rejected (`leaked`).

        With c = 1 - noise, stages 1..m asked, P_j(x) = 1 iff no hidden rule of the first j asked stages fires, and
        v(x) the probability that x is validated (1 without a policy, else A + (1 - A) [r(x) >= R], a function of
        the attributes U of the plausibility factors only), t(x) = (1 - v(x)) (1 - b) the probability that x is
        accepted unasked: calls = sum_j c^(j-1) E[v P_(j-1)], skipped = E[1 - v], accepted = E[t] + c^m E[v P_m],
        and leaked = E[t (1 - P_m)] / accepted. Each expectation is one contraction of the profile's tables with v
        or t as an extra factor over U and the rules' pass factors."""
        v = self.validated(profile, trust_below, audit)
        kept = 1 - profile.plausibility.baseline if trust_below is not None else 0.0
        trusted = (v[0], (1 - v[1]) * kept)
        validated = float(contract(profile, [], extra=[v]))
        factors, calls, reach, asked = [], 0.0, validated, 0
        for s in STAGES:
            if not profile.stages[s]:  # the engine only asks about stages that have attributes
                continue
            calls += reach  # stage s is asked iff the persona is validated and the earlier stages passed
            asked += 1
            factors += self.pass_factors(profile, s)
            reach = (1 - self.noise) ** asked * float(contract(profile, [], extra=factors + [v]))
        unasked = float(contract(profile, [], extra=[trusted]))
        accept = unasked + reach
        accepted = {n: (1 - self.noise) ** asked * contract(profile, [n], extra=factors + [v])
                    + contract(profile, [n], extra=[trusted]) for n in profile.order}
        leaked = unasked - float(contract(profile, [], extra=factors + [trusted]))
        skipped = 1 - validated
        return {"calls_per_persona": calls, "accept_rate": accept, "calls_per_accepted": calls / accept,
                "implausible_rate": 1 - (1 - self.noise) ** asked * float(contract(profile, [], extra=factors)),
                "accepted_marginals": {n: m / m.sum() for n, m in accepted.items()},
                "skipped": skipped, "leaked": leaked / accept}

    @staticmethod
    def validated(profile: Profile, trust_below: float | None, audit: float) -> tuple[list[str], np.ndarray]:
        """v(x_U) = A + (1 - A) [r(x_U) >= R] over the grid of the plausibility factors' attributes U (v = 1, over
        no attributes, without a policy)."""
        if trust_below is None:
            return [], np.float64(1.0)
        if profile.plausibility is None:
            raise ValueError(f"profile {profile.name!r} has no plausibility section to trust")
        names = list(profile.plausibility.attributes)
        grid = {n: np.arange(profile.attributes[n].size).reshape([-1 if m == n else 1 for m in names])
                for n in names}
        risky = np.broadcast_to(profile.plausibility.risk(grid) >= trust_below,
                                [profile.attributes[n].size for n in names])
        return names, audit + (1 - audit) * risky

    def label(self, records: list[dict]) -> list[Result]:
        """Engine-shaped results (`common.schema.Result`) with `validation` verdicts; stages after a rejection are
        missing."""
        out = []
        for rec in records:
            flat = attributes(rec)
            verdicts: dict[str, Verdict] = {}
            for s in stages(rec):
                fired = any(all(flat[a] in v for a, v in rule.items()) for rule in self.rules
                            if max(stage_of(rec, a) for a in rule) == s)
                u = unit_interval(f"{self.seed}:{rec['id']}:{rec.get('attempt', 0)}:{s}")
                natural, rare = ACCEPTED
                label = IMPLAUSIBLE if fired or u < self.noise else (natural if u > 0.3 else rare)
                verdicts[stage_key(s)] = Verdict(label=label, reason="local validator")
                if label == IMPLAUSIBLE:
                    break
            out.append({**rec, "validation": verdicts})
        return out
