"""Label sets in a fixed order, and `--label-map`: the synthetic labels renamed onto the gold label set.

A map is `a=b,c=drop` on the command line, or a file: a JSON object `{"a": "b", "c": "drop"}` (`null` also drops;
an emotion file's `"map"` object is used when it has one) or `a=b` lines (blank lines and `#` comments skipped).
Synthetic texts are mapped before every gold metric; a text whose label maps to `drop` is left out of them. A
target that is not a gold label, or a synthetic label that ends up outside the gold set, is an error; the labels
left unmatched on either side (dropped synthetic labels, gold labels no synthetic text has, map entries for labels
the synthetic set lacks) are listed in the report.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from eval.data import Labelled, check_within
from model.emotions import PRESETS
from common.errors import UsageError
from common.jsonl import read_text

DROP = "drop"


def label_order(present: Iterable[str], declared: Sequence[str] | None = None) -> list[str]:
    """The labels of `present` in an order that does not depend on the order of the texts: `declared`'s (label
    names, a ClassLabel feature) when it holds them all, else that of the first emotion preset that does
    (model/emotion_sets/), else sorted."""
    present = set(present)
    for order in ([list(declared)] if declared else []) + [p.labels for p in PRESETS.values()]:
        if present <= set(order):
            return [label for label in order if label in present]
    return sorted(present)


def _pairs(spec: str) -> list[tuple[str, str | None]]:
    path = Path(spec)
    if path.suffix.lower() == ".json" or path.is_file():
        text = read_text(path)
        if path.suffix.lower() != ".json":
            lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
            return [_pair(line, str(path)) for line in lines if line]
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise UsageError(f"{path}: not valid JSON") from None
        obj = obj.get("map", obj) if isinstance(obj, dict) else obj
        if not isinstance(obj, dict) or not all(isinstance(v, str) or v is None for v in obj.values()):
            raise UsageError(f"{path}: expected a JSON object of label -> label (or \"drop\" / null)")
        return [(k.strip(), None if v is None or v.strip() == DROP else v.strip()) for k, v in obj.items()]
    return [_pair(part, "--label-map") for part in spec.split(",")]


def _pair(entry: str, where: str) -> tuple[str, str | None]:
    source, sep, target = (s.strip() for s in entry.partition("="))
    if not sep or not source or not target:
        raise UsageError(f"{where}: expected 'label=gold_label' or 'label=drop', got {entry.strip()!r}")
    return source, None if target == DROP else target


def parse_label_map(spec: str) -> dict[str, str | None]:
    """{synthetic label: gold label, or None to drop} from `--label-map`'s value (see the module doc)."""
    mapping: dict[str, str | None] = {}
    for source, target in _pairs(spec):
        if source in mapping:
            raise UsageError(f"--label-map: {source!r} is mapped twice")
        mapping[source] = target
    return mapping


def preset_label_map(synthetic: Iterable[str], gold: Sequence[str]) -> tuple[dict[str, str | None], str] | None:
    """The mapping the emotion files give from the synthetic set's labels to the gold set's, when both label sets
    lie within presets (model/emotion_sets/: the paper's `pleasure` -> CARER's `joy`, `neutral` -> none) and some
    synthetic label is not a gold label: ({label: gold label, or None to drop}, where it came from); else None.
    What `eval.report` uses when no --label-map is given."""
    synthetic, gold_set = set(synthetic), set(gold)
    if synthetic <= gold_set:
        return None
    for source, emotions in PRESETS.items():
        if not synthetic <= set(emotions.labels):
            continue
        for target, other in PRESETS.items():
            if target != source and gold_set <= set(other.labels):
                mapping = {e.label: e.maps[target] for e in emotions.emotions
                           if e.label in synthetic - gold_set and target in e.maps}
                if mapping:
                    return mapping, f"model/emotion_sets/{source}.json (maps to {target})"
    return None


def apply_label_map(data: Labelled, mapping: dict[str, str | None], gold_labels: list[str],
                    what: str) -> tuple[Labelled, list[int], dict]:
    """The synthetic set as the gold metrics see it (mapped, dropped rows left out), the indices of the kept rows,
    and the report's account of the labels."""
    wrong = {s: t for s, t in mapping.items() if t is not None and t not in gold_labels}
    if wrong:
        raise UsageError(f"--label-map maps to labels the gold set lacks ({', '.join(gold_labels)}): "
                         + ", ".join(f"{s}={t}" for s, t in wrong.items()))
    mapped = [mapping.get(e, e) for e in data.emotions]
    keep = [i for i, e in enumerate(mapped) if e is not None]
    if not keep:
        raise UsageError(f"--label-map drops every text of {what}")
    result = Labelled([data.texts[i] for i in keep], [mapped[i] for i in keep])
    check_within(result, gold_labels, f"{what} (after --label-map)" if mapping else what)
    counts = Counter(result.emotions)
    return result, keep, {
        "map": {s: t if t is not None else DROP for s, t in mapping.items()},
        "dropped": {e: n for e, n in Counter(data.emotions).items() if mapping.get(e, e) is None},
        "gold_without_synthetic": [label for label in gold_labels if label not in counts],
        "map_unused": [s for s in mapping if s not in set(data.emotions)],
        "synthetic": {label: counts[label] for label in gold_labels if label in counts},
    }
