"""Strings at the edge: sampled codes decoded into records (`decode`, `sample_records`), or into columns for parquet
(`table`); common.formats writes them."""
from __future__ import annotations

import numpy as np

from common.schema import STAGES, stage_key
from model.compiled import Profile
from model.emotions import assign, resolve_emotions
from model.persona import sample_codes


def decode(profile: Profile, ids, codes: np.ndarray, log_prob: np.ndarray, seed: int, attempt: int,
           emotions: list[str]) -> list[dict]:
    """One record per row: id, seed, attempt, profile, domain, stage1/2/3 attributes, emotion, log_prob, and the
    attributable risk when the profile has a learned `plausibility` section."""
    labels = {name: np.array(a.categories, dtype=object)[codes[:, j]].tolist()
              for j, (name, a) in enumerate(profile.attributes.items())}
    risk = _risk(profile, codes)
    stage_names = profile.stages
    emotion_labels = np.array(emotions, dtype=object)[assign(ids, emotions)].tolist()
    domain = profile.domain.name if profile.domain else None
    records = []
    for r, i in enumerate(np.asarray(ids).tolist()):
        rec = {"id": i, "seed": seed, "attempt": attempt, "profile": profile.name, "domain": domain}
        for s in STAGES:
            rec[stage_key(s)] = {name: labels[name][r] for name in stage_names[s]}
        rec["emotion"] = emotion_labels[r]
        rec["log_prob"] = round(float(log_prob[r]), 4)
        if risk is not None:
            rec["risk"] = risk[r]
        records.append(rec)
    return records


def _risk(profile: Profile, codes: np.ndarray) -> list[float] | None:
    """Per row, the profile's attributable risk r(x) (`model.compiled.Plausibility`); None without a section."""
    if profile.plausibility is None:
        return None
    return profile.plausibility.risk({name: codes[:, j] for j, name in enumerate(profile.order)}).tolist()


def sample_records(profile: Profile, ids, seed: int = 0, emotions: list[str] | None = None,
                   attempt: int = 0) -> list[dict]:
    """Records for the given ids (record i is a pure function of profile, seed, i and attempt)."""
    emotions = emotions or resolve_emotions()
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    codes, log_prob = sample_codes(profile, ids, seed, attempt)
    return decode(profile, ids, codes, log_prob, seed, attempt, emotions)


def table(profile: Profile, ids, codes: np.ndarray, log_prob: np.ndarray, seed: int, attempt: int,
          emotions: list[str]):
    """The columnar form of `decode` (one flat column per attribute, dictionary-encoded straight from the codes,
    no Python object per record): what parquet output is built from."""
    import pyarrow as pa

    def labelled(codes_, categories):
        return pa.DictionaryArray.from_arrays(pa.array(codes_, pa.int32()), pa.array(categories, pa.string()))

    n = len(ids)
    cols = {
        "id": pa.array(np.asarray(ids, dtype=np.int64)),
        "seed": pa.array(np.full(n, seed, dtype=np.int64)),
        "attempt": pa.array(np.full(n, attempt, dtype=np.int32)),
        "profile": labelled(np.zeros(n, np.int32), [profile.name]),
        "domain": labelled(np.zeros(n, np.int32), [profile.domain.name]) if profile.domain else pa.nulls(n, pa.string()),
    }
    for j, (name, a) in enumerate(profile.attributes.items()):
        cols[name] = labelled(codes[:, j], list(a.categories))
    cols["emotion"] = labelled(assign(ids, emotions).astype(np.int32), emotions)
    cols["log_prob"] = pa.array(np.asarray(log_prob, dtype=np.float32))
    if (risk := _risk(profile, codes)) is not None:
        cols["risk"] = pa.array(risk, pa.float64())
    return pa.table(cols)
