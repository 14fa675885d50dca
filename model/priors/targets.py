"""The census targets a profile records, and the total-variation distance the `model.priors` tools measure to them."""
from __future__ import annotations

import numpy as np

from model.compiled import Profile
from model.exact import marginals


def targets(data: dict, profile: Profile) -> dict[str, np.ndarray]:
    """The target marginal of every attribute: the census targets recorded in the file's provenance when a tool
    rewrote its tables (calibrate, learn), else the marginals of the unmasked model (the `prior` tables)."""
    recorded = (data.get("provenance") or {}).get("targets") or {}
    out = marginals(profile, "prior")
    for name, a in profile.attributes.items():
        if isinstance(recorded.get(name), dict):
            row = np.array([float(recorded[name].get(c, 0.0)) for c in a.categories])
            if row.sum() > 0:
                out[name] = row / row.sum()
    return out


def tv(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())
