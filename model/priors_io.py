"""What the `model.priors` tools share: loading a profile with its raw data, the census targets it records,
total-variation distance, a modified copy of a compiled profile, and atomic JSON / text output."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import orjson

from model.errors import UsageError
from model.exact import marginals
from model.profile import DOMAINS_DIR, PROFILES_DIR, Profile, _parse_domain, _read_json, compile_profile
from model.records import atomic_binary


def load(ref: str, domain: str | None = None) -> tuple[dict, Profile]:
    """The raw profile JSON and its compiled form (as `model.profile.load_profile`)."""
    data = _read_json(ref, PROFILES_DIR, "profile")
    dom = _parse_domain(_read_json(domain, DOMAINS_DIR, "domain"), domain) if domain else None
    return data, compile_profile(data, dom)


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


def with_tables(profile: Profile, priors: dict[str, np.ndarray]) -> Profile:
    """A copy of `profile` whose named attributes have new target tables (same parents and masks), masked and
    renormalised as `compile_profile` does."""
    attributes = dict(profile.attributes)
    for name, prior in priors.items():
        a = attributes[name]
        masked = prior * a.mask
        totals = masked.sum(-1, keepdims=True)
        probs = np.where(totals > 0, masked / np.where(totals > 0, totals, 1), 1.0 / a.size)
        attributes[name] = dataclasses.replace(a, prior=prior, probs=probs)
    return dataclasses.replace(profile, attributes=attributes)


def source_ref(ref: str) -> str:
    return str(Path(ref)) if ref.endswith(".json") or Path(ref).is_file() else ref


def write_json(path: str | Path, obj) -> None:
    with atomic_binary(path) as out:
        out.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
        out.write(b"\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_binary(path) as out:
        out.write(text.encode())


def write_png(path: str | Path, fig) -> None:
    with atomic_binary(path) as out:
        fig.savefig(out, format="png", dpi=110, bbox_inches="tight")


def output_dir(path: str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"--out {p} exists and is not a directory")
    p.mkdir(parents=True, exist_ok=True)
    return p
