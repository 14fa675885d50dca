"""A local stand-in for the LLM validator with a known hidden implausibility rule, to measure `learn`.

Each hidden rule is a conjunction (attribute -> values) checked at a stage (the first stage that shows all its
attributes); every stage also rejects a persona at random with probability `noise` (an LLM's whims). A stage
that rejects ends the persona's validation, as in the engine. Everything the benchmark reports about a profile
under this validator (validation calls per accepted persona, the accepted population's marginals) is computed
exactly by contraction; `label` produces engine-shaped records for `learn` to read.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from model.exact import contract
from model.profile import STAGES, Profile

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

    def exact(self, profile: Profile) -> dict:
        """Exact expected validation calls per persona, acceptance rate, calls per accepted persona, and the
        accepted population's marginals."""
        factors, calls, reach, asked = [], 0.0, 1.0, 0
        for s in STAGES:
            if not profile.stages[s]:  # the engine only asks about stages that have attributes
                continue
            calls += reach  # stage s is asked iff the earlier stages passed
            asked += 1
            factors += self.pass_factors(profile, s)
            reach = (1 - self.noise) ** asked * float(contract(profile, [], extra=factors))
        accept = reach
        accepted = {n: contract(profile, [n], extra=factors) for n in profile.order}
        accepted = {n: m / m.sum() for n, m in accepted.items()}
        return {"calls_per_persona": calls, "accept_rate": accept, "calls_per_accepted": calls / accept,
                "implausible_rate": 1 - accept, "accepted_marginals": accepted}

    def label(self, records: list[dict]) -> list[dict]:
        """Engine-shaped records with `validation` labels; stages after a rejection are missing."""
        out = []
        for rec in records:
            flat = {**rec["stage1"], **rec["stage2"], **rec["stage3"]}
            verdicts = {}
            for s in STAGES:
                if not rec.get(f"stage{s}"):
                    continue
                fired = any(all(flat[a] in v for a, v in rule.items()) for rule in self.rules
                            if max(_stage(rec, a) for a in rule) == s)
                u = int.from_bytes(hashlib.sha256(f"{self.seed}:{rec['id']}:{rec.get('attempt', 0)}:{s}".encode())
                                   .digest()[:8], "big") / 2**64
                label = "implausible" if fired or u < self.noise else ("natural" if u > 0.3 else "rare but plausible")
                verdicts[f"stage{s}"] = {"label": label, "reason": "local validator"}
                if label == "implausible":
                    break
            out.append({**rec, "validation": verdicts})
        return out


def _stage(record: dict, attribute: str) -> int:
    for s in STAGES:
        if attribute in record.get(f"stage{s}", {}):
            return s
    raise KeyError(attribute)
