"""Emotion label sets (presets in emotions.json) and their exactly balanced assignment to record ids."""
from pathlib import Path

import numpy as np
import orjson

from common.errors import UsageError

PRESETS: dict[str, dict] = orjson.loads((Path(__file__).parent / "emotions.json").read_bytes())
DEFAULT = "paper"


def resolve_emotions(spec: str = DEFAULT) -> list[str]:
    """A preset name (paper, carer, meld) or a comma-separated list of labels."""
    if spec in PRESETS:
        return list(PRESETS[spec]["labels"])
    labels = [s.strip() for s in spec.split(",")]
    if len(labels) < 2:
        raise UsageError(f"unknown emotion preset {spec!r} (presets: {', '.join(PRESETS)}; "
                         "or give a comma-separated list of at least 2 labels)")
    if any(not s for s in labels) or len(set(labels)) != len(labels):
        raise UsageError(f"emotion list {spec!r} has an empty or repeated label")
    if bad := [s for s in labels if not s.isprintable()]:
        raise UsageError(f"emotion label {bad[0]!r} holds a newline or another control character")
    return labels


def assign(ids, emotions: list[str]) -> np.ndarray:
    """Record i gets emotions[i mod |E|]: ids 0..n-1 give each label n // |E| records, and the first n mod |E|
    labels one more. The assignment of id i never depends on n, so shards and resumed runs agree."""
    return np.asarray(ids, dtype=np.int64) % len(emotions)
