"""`python -m eval.report DATA.jsonl [--gold PATH] [--label-map MAP] [--out DIR]`: the paper's section IV, one command.

Writes into DIR: `report.json`, `report.md` (tables shaped like the paper's IV-VII) and the figures
(`tsne.png`, `confusion.png`). Sections render in SECTIONS order when their key is in the report. With `--judge`
(and the judge's `--base-url`/`--model`, see `eval.judge`) the LLM judge scores every text first (IV.C): its
`judge.json`/`judge.png` go into DIR too, and `report["judge"]` holds each criterion's mean.

`--gold` is any labelled corpus (eval.corpus); the synthetic labels are mapped onto its label set (`--label-map`,
eval.labels) before every gold metric, and Tables VI and VII carry reference rows (eval.references). A metric
with too few texts is not computed (eval.minimums): `null` in report.json, its reason under `not_computed`. Every
input is read and checked before anything is written: a bad one is one `error:` line, exit 2, no report.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.classify import holdout
from eval.corpus import MULTI_LABEL, Gold, GoldOptions, read_corpus
from eval.data import Labelled, check_classes, read_jsonl
from eval.duplicates import copies_line, rate_cells, report_entry as duplicates
from eval.embed import DEFAULT_CACHE, Embedder
from eval.judge import FIGURE, add_judge_options, report_entry, report_section, run_judge
from eval.labels import apply_label_map, label_order, parse_label_map, preset_label_map
from eval.metrics import diversity
from eval.minimums import diversity_gaps, holdout_gap
from eval.parallel import workers
from eval.plots import confusion_png, tsne_coordinates, tsne_png
from eval.references import reference_cells, similarity_row, transfer_row
from model.compilation import enable_compilation_cache
from common.cli import Parser, run
from common.errors import UsageError
from common.files import write_json, write_text
from common.markdown import table

FIGURES = {"tsne": "tsne.png", "confusion": "confusion.png"}
GOLD_OPTIONS = ("text_col", "label_col", "gold_train", "gold_test", "label_names", "label_map")


@dataclass(frozen=True)
class Inputs:
    path: Path
    data: Labelled
    gold: Gold | None = None
    mapped: Labelled | None = None  # the synthetic set as the gold metrics see it (after --label-map)
    keep: list[int] | None = None  # its rows in `data`
    labels: dict | None = None  # eval.labels.apply_label_map's account of the labels


def load_inputs(data_path: Path, gold_path: Path | None = None, options: GoldOptions = GoldOptions(),
                label_map: str | None = None) -> Inputs:
    """Read and check the synthetic set, the gold corpus and the label map (every bad input fails here)."""
    data = read_jsonl(data_path)
    check_classes(data, str(data_path), min_per_class=1)
    if gold_path is None:
        return Inputs(data_path, data)
    gold = read_corpus(gold_path, options)
    mapping, source = (parse_label_map(label_map), "--label-map") if label_map else ({}, None)
    if not label_map and (preset := preset_label_map(data.emotions, gold.labels)):
        mapping, source = preset
    mapped, keep, account = apply_label_map(data, mapping, gold.labels, str(data_path))
    return Inputs(data_path, data, gold, mapped, keep, {**account, "map_source": source})


def build_report(inputs: Inputs, out_dir: Path, embedder: Embedder | None = None, seed: int = 0,
                 classifier_cache: Path | None = None) -> dict:
    """Embed, compute every section that has enough texts, draw the figures into out_dir; return the report.
    The gold-trained classifier's result is kept in `classifier_cache` (eval.classify.transfer) for the next
    report against the same gold corpus. After the embeddings, the pieces run side by side (eval.parallel)."""
    data = inputs.data
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output path {out_dir} is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    embedder = embedder or Embedder()

    names = label_order(data.emotions, inputs.gold.labels if inputs.gold else None)
    codes = data.codes(names)
    counts = {name: int((codes == i).sum()) for i, name in enumerate(names)}
    # every text embedded in one call, before anything else runs: one length-sorted encode, and no OpenMP pool of
    # LightGBM or t-SNE left behind to slow PyTorch down (the gold texts embedded after them ran 2-3x slower)
    gold_texts = inputs.gold.train.texts + inputs.gold.test.texts if inputs.gold is not None else []
    x, x_gold = np.split(embedder(data.texts + gold_texts), [len(data)])
    gaps = diversity_gaps(counts)
    if reason := holdout_gap(counts):
        gaps["classification"] = reason
    cells = {"diversity": lambda g: diversity(x, codes, names, seed=seed),
             "classification": lambda g: None if reason else holdout(x, data.emotions, names, seed=seed),
             "tsne": lambda g: tsne_coordinates(x, seed=seed),
             "duplicates": lambda g: duplicates(data.texts, data.emotions, names, None if inputs.gold is None else (
                 inputs.gold.train.texts, inputs.gold.test.texts))}
    if inputs.gold is not None:
        cells.update(gold_cells(inputs, x, np.split(x_gold, [len(inputs.gold.train)]), seed, classifier_cache))
    with workers() as pool:
        done = _submit(pool, cells, first=("gold_trained", "tsne"))
        tsne_png(out_dir / FIGURES["tsne"], done["tsne"][0].result(), codes, names)
        results = {name: future.result() for name, (future, _) in done.items()}
    for _, cell_gaps in done.values():  # in the cells' order, whatever order they finished in
        gaps.update(cell_gaps)
    div = results["diversity"]
    report = {
        "input": {"path": str(inputs.path), "method": inputs.path.stem, "n": len(data), "emotions": counts},
        "diversity": div["per_emotion"],
        "diversity_overall": div["overall"],
        "classification": results["classification"],
        "duplicates": results["duplicates"],
        "figures": {"tsne": FIGURES["tsne"]},
        "seed": seed,
    }
    if report["classification"] is not None:
        report["figures"]["confusion"] = FIGURES["confusion"]
        confusion_png(out_dir / FIGURES["confusion"], report["classification"]["confusion"]["matrix"], names)
    if inputs.gold is not None:
        report.update(gold_sections(inputs, results))
    report["not_computed"] = gaps
    return report


def _submit(pool, cells: dict, first: tuple[str, ...]) -> dict:
    """name -> (future, the cell's own gaps), in the cells' order; the cells named in `first` (the longest) are
    started first so that they do not end the phase alone."""
    done = {}
    for name in sorted(cells, key=lambda n: n not in first):
        cell_gaps: dict = {}
        done[name] = (pool.submit(cells[name], cell_gaps), cell_gaps)
    return {name: done[name] for name in cells}


def gold_cells(inputs: Inputs, x, x_gold: tuple, seed: int = 0, classifier_cache: Path | None = None) -> dict:
    """Tables VI and VII as pieces, name -> piece(gaps) (see build_report); x_gold: the embeddings of the gold
    (train, test) splits. Table VI's three rows are one piece: they share compiled programs."""
    gold, mapped = inputs.gold, inputs.mapped
    x_syn = x[inputs.keep]
    x_train, x_test = x_gold
    test_labels = [label for label in gold.labels if label in set(gold.test.emotions)]
    refs = reference_cells(x_syn, mapped, x_train, gold.train, x_test, gold.test, gold.labels, seed)

    def similarity(gaps: dict) -> dict:
        return {"gold": similarity_row(x_syn, x_train, "gold", gaps, seed),
                **{name: refs[name](gaps) for name in ("synthetic_vs_test", "real_vs_real")}}

    return {"similarity": similarity,
            "tstr": lambda g: transfer_row(x_syn, mapped, x_test, gold.test, test_labels, "tstr", g, seed),
            "gold_trained": lambda g: transfer_row(x_train, gold.train, x_test, gold.test, test_labels,
                                                   "gold_trained", g, seed, classifier_cache),
            "majority": refs["majority"], "gold_size_matched": refs["gold_size_matched"]}


def gold_sections(inputs: Inputs, results: dict) -> dict:
    """The report's gold keys from the pieces' results: the corpus read, the label account, Tables VI and VII
    with their reference rows."""
    gold, sim = inputs.gold, results["similarity"]
    return {
        "gold_corpus": gold.info,
        "labels": inputs.labels,
        "gold": {**sim["gold"], "reference": f"{gold.info['path']} split {gold.info['train']['split']!r}",
                 "n_synthetic": len(inputs.mapped), "n_gold": len(gold.train)},
        "tstr": results["tstr"],
        "gold_trained": results["gold_trained"],
        "references": {"majority": results["majority"], "gold_size_matched": results["gold_size_matched"],
                       "synthetic_vs_test": sim["synthetic_vs_test"], "real_vs_real": sim["real_vs_real"]},
    }


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


def _corpus(r: dict) -> list[str]:
    g, lab = r["gold_corpus"], r["labels"]
    train, test = g["train"], g["test"]
    dropped = {s["split"]: s["multi_label_dropped"] for s in (train, test) if s["multi_label_dropped"]}
    facts = [f"{g['path']} ({g['format']}): train split {train['split']!r} ({train['n']} texts), test split "
             f"{test['split']!r} ({test['n']} texts); columns {train['text_column']!r} (text) and "
             f"{train['label_column']!r} (label)" + (f"; label ids named by {train['label_names']}"
                                                     if train["label_names"] else "") + ".",
             *([f"Test split: {g['split']}."] if g["split"] else []),
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
            *_notes(r, "tstr", "gold_trained", "references.gold_size_matched")]


SECTIONS = (("diversity", _diversity), ("classification", _classification), ("gold_corpus", _corpus),
            ("gold", _gold), ("tstr", _tstr), ("judge", report_section))


def render_markdown(report: dict) -> str:
    parts = [f"# Evaluation of {report['input']['path']}", "",
             f"{report['input']['n']} texts; " + ", ".join(f"{e}: {n}" for e, n in report["input"]["emotions"].items())]
    for key, render in SECTIONS:
        if key in report:
            parts += ["", *render(report)]
    return "\n".join(parts) + "\n"


def write_report(report: dict, out_dir: Path) -> None:
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.md", render_markdown(report))


def _parser() -> Parser:
    p = Parser(prog="python -m eval.report", description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="JSONL with at least `text` and `emotion` per line")
    p.add_argument("--gold", type=Path, help="gold corpus: a CSV/TSV/JSONL/parquet file, a folder of split files "
                   "(train.txt/test.txt `text;label` lines, train.csv, ...) or a `datasets` save_to_disk folder")
    p.add_argument("--text-col", help="the gold text column (default: the one named text/sentence/utterance)")
    p.add_argument("--label-col", help="the gold label column (default: the one named label/emotion/labels)")
    p.add_argument("--gold-train", help="the gold train split (default: train, or the only split)")
    p.add_argument("--gold-test", help="the gold test split (default: test; without one, a seeded stratified "
                   "20%% of the train split)")
    p.add_argument("--label-names", help="names of the gold label ids 0, 1, ...: a,b,c (default: the dataset's "
                   "ClassLabel feature)")
    p.add_argument("--multi-label", choices=MULTI_LABEL, default="drop",
                   help="gold rows with several labels: drop them or keep the first (default: drop)")
    p.add_argument("--label-map", help="synthetic label -> gold label before the gold metrics: pleasure=joy,"
                   "neutral=drop, or a file (JSON object or a=b lines)")
    p.add_argument("--out", type=Path, default=Path("out/eval"), help="output directory (default: out/eval)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help=f"embedding cache, and the gold-trained classifier's results under classifiers/ "
                   f"(default: {DEFAULT_CACHE})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--judge", action="store_true", help="also score every text with the LLM judge (IV.C, eval.judge)")
    add_judge_options(p)
    return p


def _gold_options(args) -> GoldOptions:
    given = [f"--{name.replace('_', '-')}" for name in GOLD_OPTIONS if getattr(args, name) is not None]
    if args.gold is None and given:
        raise UsageError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --gold")
    names = None
    if args.label_names is not None:
        names = [s.strip() for s in args.label_names.split(",")]
        if len(names) < 2 or not all(names) or len(set(names)) != len(names):
            raise UsageError(f"--label-names {args.label_names!r}: expected at least 2 distinct non-empty names")
    return GoldOptions(args.text_col, args.label_col, args.gold_train, args.gold_test, names, args.multi_label,
                       args.seed)


def main(argv: list[str] | None = None) -> int:
    """The command: exit 0, or 2 with one `error:` line for bad input."""
    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    enable_compilation_cache()  # the metrics' XLA programs compile once per shape, not once per report
    inputs = load_inputs(args.data, args.gold, _gold_options(args), args.label_map)
    judged = run_judge(args.data, args.out, args) if args.judge else None  # a bad endpoint fails before embedding
    report = build_report(inputs, args.out, Embedder(args.cache_dir), seed=args.seed,
                          classifier_cache=args.cache_dir / "classifiers")
    if judged is not None:
        report["judge"] = report_entry(judged)
        report["figures"]["judge"] = FIGURE
    write_report(report, args.out)
    print(f"wrote {args.out / 'report.md'}, {args.out / 'report.json'} and figures", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
