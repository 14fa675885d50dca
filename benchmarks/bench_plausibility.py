"""What `model.priors calibrate` and `learn` buy, measured against a local validator with a hidden rule.

    python benchmarks/bench_plausibility.py [--records 8000] [--steps 800]

1. Calibration: max TV(target, effective) over attributes before / after, jp and us.
2. Learning: sample `--records` personas from jp, label them with `model.priors.simulate.Validator` (hidden
   pair rules + 2% random rejections per stage), run `learn`, then compute exactly (by contraction, no
   sampling noise) for the original and the learned profile: validation calls per accepted persona, the
   implausible share of proposals, and TV between the accepted populations' marginals. Two scenarios: the
   default rules (~27% implausible) and a heavier set (~50%).
3. Trust policy: the learned profile again, now also skipping validation of personas whose attributable risk is
   below R (`--trust-below`, each R of `--trust`) except an audited fraction `--audit`, and dropping trusted
   personas unasked at the learnt baseline rate (the engine's `llm.generate --trust-below R --audit A`, computed
   exactly by `Validator.exact`): calls per accepted persona and
   their ratio to the unlearned validate-all run (the issue's goal: >= 2x), the share of proposals skipped, the
   share of accepted personas the hidden rules would have rejected (leaked), and the largest TV between accepted
   marginals and the unlearned accepted population's (goal: <= 0.01).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import orjson

from model.priors.calibrate import calibrate_profile
from model.priors.learn import fit, fold, read_records
from model.priors.simulate import RULES_JP, Validator
from model.priors.targets import tv
from model.profile import compile_profile
from model.profile import load_with_data as load
from model.records import sample_records

HEAVY = RULES_JP + (
    {"age": ["30-39", "40-49", "50-59"], "activity": ["relaxing at home", "doing housework", "online gaming"]},
    {"gender": ["male"], "values": ["traditional", "collectivist"]},
)


def policy(v, before, learned, trust_below, audit):
    """The trust policy's figures against `before` (the unlearned profile, every persona validated)."""
    p = v.exact(learned, trust_below, audit)
    tvs = {k: tv(before["accepted_marginals"][k], p["accepted_marginals"][k]) for k in before["accepted_marginals"]}
    worst = max(tvs, key=tvs.get)
    return {"trust_below": trust_below, "audit": audit, "calls_per_accepted": p["calls_per_accepted"],
            "calls_ratio": before["calls_per_accepted"] / p["calls_per_accepted"], "skipped": p["skipped"],
            "leaked": p["leaked"], "max_accepted_tv": tvs[worst], "max_accepted_tv_attribute": worst}


def scenario(name, rules, n, steps, trust, audit):
    data, prof = load("jp")
    v = Validator(rules=rules, noise=0.02, seed=7)
    recs = v.label(sample_records(prof, np.arange(n), seed=1))
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
        f.write(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in recs))
    codes, y = read_records(f.name, prof)  # through the same reader as `learn`
    os.unlink(f.name)
    t = time.perf_counter()
    post = fit(prof, codes, y, steps=steps)
    fit_s = time.perf_counter() - t
    new, used = fold(data, prof, post)
    learned = compile_profile(new)
    b, a = v.exact(prof), v.exact(learned)
    floor = (1 + 0.98 + 0.98 ** 2) / 0.98 ** 3
    tvs = {k: tv(b["accepted_marginals"][k], a["accepted_marginals"][k]) for k in prof.order}
    worst = max(tvs, key=tvs.get)
    return {"scenario": name, "records": n, "observed_implausible": float(y.mean()), "fit_s": round(fit_s, 1),
            "factors": used,
            "implausible_before": b["implausible_rate"], "implausible_after": a["implausible_rate"],
            "calls_per_accepted_before": b["calls_per_accepted"], "calls_per_accepted_after": a["calls_per_accepted"],
            "calls_ratio": b["calls_per_accepted"] / a["calls_per_accepted"],
            "floor": floor,
            "wasted_ratio": (b["calls_per_accepted"] - floor) / max(a["calls_per_accepted"] - floor, 1e-12),
            "max_accepted_tv": tvs[worst], "max_accepted_tv_attribute": worst,
            "risk_cells": {"x".join(f["attributes"]): len(f["hazards"]) for f in new["plausibility"]["factors"]},
            "baseline": new["plausibility"]["baseline"],
            "policy": [policy(v, b, learned, r, audit) for r in trust]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=8000)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--trust", default="0.05,0.1,0.2", help="comma-separated --trust-below values")
    p.add_argument("--audit", type=float, default=0.05)
    args = p.parse_args()
    trust = [float(r) for r in args.trust.split(",")]
    for ref in ("jp", "us"):
        data, prof = load(ref)
        _, fits, _ = calibrate_profile(data)
        worst_b = max(fits.values(), key=lambda f: f.tv_before)
        worst_a = max(fits.values(), key=lambda f: f.tv_after)
        print(f"calibrate {ref}: max TV before {worst_b.tv_before:.4f} ({worst_b.name}), "
              f"after {worst_a.tv_after:.2e} ({worst_a.name})")
    for name, rules in (("default", RULES_JP), ("heavy", HEAVY)):
        print(json.dumps(scenario(name, rules, args.records, args.steps, trust, args.audit), indent=1))


if __name__ == "__main__":
    main()
