"""The markdown of `eval.report`'s report.md: one section per report key, in SECTIONS order, each rendered when its
key is in the report (tables shaped like the paper's IV-VII)."""
from __future__ import annotations

from common.markdown import table
from eval.duplicates import copies_line, rate_cells
from eval.judge import report_section


def _f(v: float | None, digits: int = 4) -> str:
    return "not computed" if v is None else f"{v:.{digits}f}"


def _notes(r: dict, *paths: str) -> list[str]:
    """The not-computed reasons of the report's cells under `paths`, one line each (after a blank line)."""
    lines = [f"- `{p}` not computed: {reason}" for p, reason in r.get("not_computed", {}).items()
             if any(p == q or p.startswith(q + ".") for q in paths)]
    return ["", *lines] if lines else []


def _diversity(r: dict) -> list[str]:
    rows = [[e, _f(m["mcd"]), _f(m["ce"]), _f(m["cd"]), *rate_cells(r, e)] for e, m in r["diversity"].items()]
    o = r["diversity_overall"]
    rows.append(["all texts (CD: mean over emotion pairs)", _f(o.get("mcd")), _f(o.get("ce")), _f(o["cd"]),
                 *rate_cells(r)])
    return ["## Table IV. Semantic diversity", "",
            "MCD: mean pairwise cosine distance; CE: entropy (nats) of k=5 k-means cluster sizes within the "
            "emotion; CD: mean cosine distance from the emotion's centroid to the other centroids; Exact dup and "
            "Near dup: the texts that `llm.generate --dedup exact` and `--dedup near` would have regenerated "
            "(eval/duplicates.py), within the emotion and across all texts.", "",
            *table(["Emotion", "MCD", "CE", "CD", "Exact dup", "Near dup"], rows), *_notes(r, "diversity")]


def _classification(r: dict) -> list[str]:
    c, title = r["classification"], "## Table V. Classification of the synthetic texts"
    if c is None:
        return [title, "", f"not computed: {r['not_computed']['classification']}", "",
                f"![t-SNE]({r['figures']['tsne']})"]
    rows = [[e, f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['f1']:.2f}", str(m["support"])]
            for e, m in c["per_class"].items()]
    rows.append(["Total (macro)", f"{c['precision']:.2f}", f"{c['recall']:.2f}", f"{c['f1']:.2f}", str(c["n_test"])])
    return [title, "",
            f"LightGBM on embeddings, stratified 80/20 split ({c['n_train']} train / {c['n_test']} test), "
            f"accuracy {c['accuracy']:.3f}, macro-F1 {c['f1']:.3f}, support-weighted F1 {c['weighted_f1']:.3f}.", "",
            *table(["Emotion", "Precision", "Recall", "F1", "Support"], rows), "",
            f"![t-SNE]({r['figures']['tsne']})", "", f"![confusion matrix]({r['figures']['confusion']})"]


SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _layout(split: dict) -> str:
    """How a delimited file was read: its separator, and no header row when there was none."""
    sep = split.get("separator")
    if sep is None:
        return ""
    return f", {SEPARATORS.get(sep, repr(sep))}-separated" + ("" if split.get("header", True) else ", no header row")


def _sample(sample: dict) -> str:
    splits = ", ".join(f"{sample[s]['kept']} of {sample[s]['from']} texts of the {s} split" for s in ("train", "test"))
    return (f"Sample (--gold-max-rows {sample['max_rows']}): a seeded stratified sample (seed {sample['seed']}, "
            f"each label's share kept): {splits}.")


def _corpus(r: dict) -> list[str]:
    g, lab = r["gold_corpus"], r["labels"]
    train, test = g["train"], g["test"]
    dropped = {s["split"]: s["multi_label_dropped"] for s in (train, test) if s["multi_label_dropped"]}
    facts = [f"{g['path']} ({g['format']}{_layout(train)}): train split {train['split']!r} ({train['n']} texts), "
             f"test split {test['split']!r} ({test['n']} texts); columns {train['text_column']!r} (text) and "
             f"{train['label_column']!r} (label)" + (f"; label ids named by {train['label_names']}"
                                                     if train["label_names"] else "") + ".",
             *([f"Test split: {g['split']}."] if g["split"] else []),
             *([_sample(g["sample"])] if g.get("sample") else []),
             f"Multi-label rows ({g['multi_label']}): " + (", ".join(f"{n} dropped from {s!r}"
                                                               for s, n in dropped.items()) or "none dropped") + ".",
             f"Gold label set: {', '.join(g['labels'])}.",
             "Label map: " + (", ".join(f"{a}={b}" for a, b in lab["map"].items()) or "none")
             + (f" (from {lab['map_source']})" if lab["map"] else "") + ".",
             "Unmatched: synthetic labels dropped: " + (", ".join(f"{e} ({n})" for e, n in lab["dropped"].items())
                                                        or "none")
             + "; gold labels without synthetic texts: " + (", ".join(lab["gold_without_synthetic"]) or "none")
             + "; map entries for labels the synthetic set lacks: " + (", ".join(lab["map_unused"]) or "none") + "."]
    return ["## Gold corpus and labels", "", *(f"- {fact}" for fact in facts)]


def _similarity(name: str, m: dict | None, against: str) -> list[str]:
    if m is None:
        return [name, *["not computed"] * 5, ""]
    return [name, *(_f(m[k]) for k in ("fid", "prd_f8", "prd_f1_8", "kl", "hc")),
            f"{m['n_a']} vs {m['n_b']} ({against})"]


def _gold(r: dict) -> list[str]:
    g, refs = r["gold"], r["references"]
    rows = [_similarity(r["input"]["method"], g, "gold train"),
            _similarity(f"{r['input']['method']} vs gold test", refs["synthetic_vs_test"], "gold test"),
            _similarity("real vs real: gold train sample vs gold test", refs["real_vs_real"], "gold test")]
    warnings = dict.fromkeys(m["warning"] for m in (g, refs["synthetic_vs_test"], refs["real_vs_real"])
                             if m and "warning" in m)
    return ["## Table VI. Similarity to the gold data", "",
            f"Reference: {g['reference']} ({g['n_gold']} texts) against {g['n_synthetic']} synthetic texts. "
            "Reference rows: the synthetic set and a sample of as many gold train texts (real vs real), each "
            "against the gold test split.", "",
            *table(["Method", "FID ↓", "PRD-F8 ↑", "PRD-F1/8 ↑", "KL ↓", "HC ↑", "Texts compared"], rows),
            *(["", *(f"Warning: {w}." for w in warnings)] if warnings else []), *copies_line(r),
            *_notes(r, "gold", "references.synthetic_vs_test", "references.real_vs_real")]


def _tstr(r: dict) -> list[str]:
    refs = r["references"]
    majority = refs["majority"]
    named = ((f"Majority class ({majority['label']})", majority), ("Gold data", r["gold_trained"]),
             ("Gold data, size-matched", refs["gold_size_matched"]), (r["input"]["method"], r["tstr"]))
    rows = [[name, *(_f(m[k] if m else None, 3) for k in ("accuracy", "precision", "recall", "f1", "macro_f1")),
             str(m["n_train"]) if m else ""] for name, m in named]
    return ["## Table VII. Gold test split, LightGBM trained on each set", "",
            "Precision, recall and F1 are support-weighted; macro-F1 is the unweighted mean over the test split's "
            "labels. References: always predicting the test split's largest class, the gold train split in full, "
            "and as many gold train texts as the synthetic set has with its class counts (size-matched).", "",
            *table(["Training data", "Accuracy", "Precision", "Recall", "F1", "Macro-F1", "Train size"], rows),
            *_notes(r, "tstr", "gold_trained", "references.gold_size_matched"),
            *(["", f"![TSTR confusion matrix]({r['figures']['tstr_confusion']})"] if "tstr_confusion" in r["figures"]
              else [])]


def _warnings(r: dict) -> list[str]:
    if not r["warnings"]:
        return []
    return ["## Warnings", "", *(f"- {w}." for w in r["warnings"])]


SECTIONS = (("warnings", _warnings), ("diversity", _diversity), ("classification", _classification),
            ("gold_corpus", _corpus), ("gold", _gold), ("tstr", _tstr), ("judge", report_section))


def render_markdown(report: dict) -> str:
    parts = [f"# Evaluation of {report['input']['path']}", "",
             f"{report['input']['n']} texts; " + ", ".join(f"{e}: {n}" for e, n in report["input"]["emotions"].items())]
    for key, render in SECTIONS:
        if key in report and (lines := render(report)):
            parts += ["", *lines]
    return "\n".join(parts) + "\n"
