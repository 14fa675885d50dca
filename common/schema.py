"""The record contract: what a persona record and an engine result hold, and how they are read and flattened.

A **record** (`model.sample`, one persona of one output slot) is
    {"id", "seed", "attempt", "profile", "domain", "stage1": {attribute: category}, "stage2": {...},
     "stage3": {...}, "emotion", "log_prob"[, "risk"]}
A **result** (`llm.generate`, one text) is the record plus "method", "text"[, "score"][, "shown"], "validation"
({"stage1": verdict, ...}, or {"skipped": {...}} under the trust policy), "prompt", "model", "usage",
"persona_draws", "rejected_draws" (the personas rejected for this slot, each with its stage groups and
`validation`) and "text_attempts". A verdict is {"label": one of LABELS, "reason": str}. "shown" is there when the
prompts showed the emotion or a value in another wording than the record's (another language's labels):
{"language", "emotion", "stage1": {attribute: shown value}, ...}; the record's own keys keep the canonical ones.
Flat forms (CSV and parquet columns) spread the stage groups into one column per attribute; "shown", like the other
nested values, is one column of JSON.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypedDict

import orjson

STAGES = (1, 2, 3)  # the persona stages: base persona, socio-cultural background, scenario and style
LABELS = ("natural", "rare but plausible", "implausible")  # the validation labels
ACCEPTED = LABELS[:2]
IMPLAUSIBLE = LABELS[2]
SHOWN = "shown"  # a result's key for what its prompts showed, where that was worded otherwise (module doc)


def stage_key(stage: int) -> str:
    """The record key of a stage's attribute group: "stage1", "stage2", "stage3"."""
    return f"stage{stage}"


STAGE_KEYS = tuple(stage_key(s) for s in STAGES)


class Verdict(TypedDict):
    label: str
    reason: str


class Record(TypedDict, total=False):
    id: int
    seed: int
    attempt: int
    profile: str
    domain: str | None
    stage1: dict[str, str]
    stage2: dict[str, str]
    stage3: dict[str, str]
    emotion: str
    log_prob: float
    risk: float


class Result(Record, total=False):
    method: str
    text: str
    score: int
    shown: dict
    validation: dict
    prompt: list[dict]
    model: str
    usage: dict[str, int]
    persona_draws: int
    rejected_draws: list[dict]
    text_attempts: int


def stages(record: Mapping) -> list[int]:
    """The stages a record has attributes for, in order."""
    return [s for s in STAGES if record.get(stage_key(s))]


def stage_groups(record: Mapping) -> dict[str, dict]:
    """The record's non-empty stage groups, {"stage1": {...}, ...}."""
    return {stage_key(s): record[stage_key(s)] for s in stages(record)}


def attributes(record: Mapping) -> dict[str, str]:
    """Every attribute of the record's stages in one mapping."""
    flat: dict[str, str] = {}
    for s in STAGES:
        flat.update(record.get(stage_key(s)) or {})
    return flat


def stage_of(record: Mapping, attribute: str) -> int:
    """The stage whose group holds `attribute`; KeyError when none does."""
    for s in STAGES:
        if attribute in record.get(stage_key(s), {}):
            return s
    raise KeyError(attribute)


def flatten(record: Mapping) -> dict:
    """A record with its stage groups spread into top-level columns (CSV and parquet)."""
    flat = {k: v for k, v in record.items() if k not in STAGE_KEYS}
    flat.update(attributes(record))
    return flat


def column(value) -> object:
    """A parquet cell: nested values (validation, prompt, usage, rejected draws) become JSON strings."""
    return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else value


def arrow_type(value):
    """The arrow type of a flattened column whose first value is `value`."""
    import pyarrow as pa

    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()  # str, None, and nested values stored as JSON


def parquet_rows(records: Iterable[Mapping]) -> list[dict]:
    """Flat rows: stage groups spread into one column per attribute, nested values as JSON strings."""
    return [{k: column(v) for k, v in flatten(rec).items()} for rec in records]
