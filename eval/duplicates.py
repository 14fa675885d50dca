"""Duplicate rates of a labelled text set, for `eval.report` (Table IV and `report.json["duplicates"]`), by the rules
of `llm.generate --dedup` (common.duplicates): exact (normal forms equal) and near (MinHash Jaccard of character
5-grams at least the generation default, THRESHOLD).

A text's rate counts the texts that `--dedup` would have regenerated: read in file order, a text is a duplicate
when it duplicates an earlier text that is not itself one (so a group of k copies counts k - 1). Per emotion the
texts are compared within their emotion (`--dedup-scope emotion`), overall across all texts (`all`). Against a
gold corpus (`gold_copies`): the share of synthetic texts that copy a gold train text, exactly or nearly (leakage,
or a model reciting its training data), beside the same share for the gold test texts (real vs real: how often
real texts of the task repeat each other)."""
from __future__ import annotations

from collections.abc import Sequence

from common.duplicates import EXACT, NEAR, SHINGLE, THRESHOLD, DedupSpec, index_for

SPECS = {EXACT: DedupSpec(EXACT), NEAR: DedupSpec(NEAR, THRESHOLD)}


def duplicate_rates(texts: Sequence[str], emotions: Sequence[str], names: Sequence[str]) -> dict:
    """{"rule", "per_emotion": {name: {"n", "exact_dup_rate", "near_dup_rate"}}, "overall": {...}} of the texts
    with their emotions (names: the emotions in report order)."""
    per_emotion = {name: {"n": sum(e == name for e in emotions)} for name in names}
    overall = {"n": len(texts)}
    for mode, spec in SPECS.items():
        within, across = index_for(spec), index_for(spec)
        repeats = dict.fromkeys(names, 0)
        repeated = 0
        for i, (text, emotion) in enumerate(zip(texts, emotions)):
            repeats[emotion] += within.offer(i, text, emotion) is not None
            repeated += across.offer(i, text) is not None
        for name in names:
            n = per_emotion[name]["n"]
            per_emotion[name][f"{mode}_dup_rate"] = round(repeats[name] / n, 4) if n else None
        overall[f"{mode}_dup_rate"] = round(repeated / len(texts), 4) if texts else None
    return {"rule": rule(), "per_emotion": per_emotion, "overall": overall}


def gold_copies(texts: Sequence[str], train: Sequence[str], test: Sequence[str]) -> dict:
    """The shares of the synthetic `texts` and of the gold `test` texts that copy a gold `train` text, exactly and
    nearly: {"synthetic_exact_dup_of_train", "synthetic_near_dup_of_train", "real_exact_dup_of_train",
    "real_near_dup_of_train", "n_synthetic", "n_real"}."""
    found = {"n_synthetic": len(texts), "n_real": len(test)}
    for mode, spec in SPECS.items():
        index = index_for(spec)
        for i, text in enumerate(train):
            index.offer(i, text)
        for who, group in (("synthetic", texts), ("real", test)):
            copies = sum(index.find(text) is not None for text in group)
            found[f"{who}_{mode}_dup_of_train"] = round(copies / len(group), 4) if group else None
    return found


def report_entry(texts: Sequence[str], emotions: Sequence[str], names: Sequence[str],
                 gold: tuple[Sequence[str], Sequence[str]] | None = None) -> dict:
    """`report.json["duplicates"]`: the rates of `duplicate_rates`, and with the gold (train, test) texts the
    copies of `gold_copies` under "gold"."""
    entry = duplicate_rates(texts, emotions, names)
    return {**entry, "gold": gold_copies(texts, *gold)} if gold is not None else entry


def rule() -> str:
    return (f"exact: equal after NFKC, case folding and whitespace collapse; near: MinHash Jaccard of character "
            f"{SHINGLE}-grams >= {THRESHOLD} (llm.generate --dedup near)")


def rate_cells(report: dict, emotion: str | None = None) -> list[str]:
    """Table IV's exact and near duplicate rates of an emotion (None: overall), as percentages."""
    rates = report.get("duplicates", {})
    row = rates.get("overall", {}) if emotion is None else rates.get("per_emotion", {}).get(emotion, {})
    return [f"{row[k]:.1%}" if row.get(k) is not None else "not computed" for k in ("exact_dup_rate", "near_dup_rate")]


def copies_line(report: dict) -> list[str]:
    """Table VI's note on copies of the gold train texts (nothing without them)."""
    g = report.get("duplicates", {}).get("gold")
    if not g:
        return []
    return ["", f"Copies of gold train texts: {g['synthetic_exact_dup_of_train']:.1%} exact and "
            f"{g['synthetic_near_dup_of_train']:.1%} near of the {g['n_synthetic']} synthetic texts; real vs real, "
            f"{g['real_exact_dup_of_train']:.1%} exact and {g['real_near_dup_of_train']:.1%} near of the "
            f"{g['n_real']} gold test texts (near: Jaccard >= {THRESHOLD})."]
