"""`python -m eval.report DATA.jsonl [--gold DIR] [--out DIR]`: the paper's section IV in one command.

Writes into DIR: `report.json`, `report.md` (tables shaped like the paper's IV-VII) and the figures
(`tsne.png`, `confusion.png`). Sections render in SECTIONS order when their key is in the report. With `--judge`
(and the judge's `--base-url`/`--model`, see `eval.judge`) the LLM judge scores every text first (IV.C): its
`judge.json`/`judge.png` go into DIR too, and `report["judge"]` holds each criterion's mean.
"""
from __future__ import annotations

import sys
from pathlib import Path

from eval.classify import check_holdout, holdout, transfer
from eval.data import check_classes, check_within, read_gold, read_jsonl
from eval.embed import DEFAULT_CACHE, Embedder
from eval.judge import FIGURE, add_judge_options, report_entry, report_section, run_judge
from eval.metrics import diversity, gold_similarity
from eval.plots import confusion_png, tsne_png
from common.cli import Parser, run
from common.errors import UsageError
from common.files import write_json, write_text
from common.markdown import table

FIGURES = {"tsne": "tsne.png", "confusion": "confusion.png"}


def build_report(data_path: Path, out_dir: Path, gold_dir: Path | None = None, embedder: Embedder | None = None,
                 seed: int = 0) -> dict:
    """Validate the inputs, embed, compute every section, draw the figures into out_dir; return the report."""
    data = read_jsonl(data_path)
    check_classes(data, str(data_path))
    check_holdout(len(data), len(data.names))
    gold = read_gold(gold_dir) if gold_dir is not None else None
    if gold is not None:
        check_within(data, list(dict.fromkeys(gold["train"].names + gold["test"].names)), str(data_path))
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output path {out_dir} is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    embedder = embedder or Embedder()

    names = data.names
    codes = data.codes(names)
    x = embedder(data.texts)
    div = diversity(x, codes, names, seed=seed)
    report = {
        "input": {"path": str(data_path), "method": data_path.stem, "n": len(data),
                  "emotions": {name: int((codes == i).sum()) for i, name in enumerate(names)}},
        "diversity": div["per_emotion"],
        "diversity_overall": div["overall"],
        "classification": holdout(x, data.emotions, names, seed=seed),
        "figures": dict(FIGURES),
        "seed": seed,
    }
    tsne_png(out_dir / FIGURES["tsne"], x, codes, names, seed=seed)
    confusion_png(out_dir / FIGURES["confusion"], report["classification"]["confusion"]["matrix"], names)

    if gold is not None:
        train, test = gold["train"], gold["test"]
        x_train, x_test = embedder(train.texts), embedder(test.texts)
        report["gold"] = {**gold_similarity(x, x_train, seed=seed), "reference": f"{gold_dir} train split",
                          "n_synthetic": len(data), "n_gold": len(train)}
        report["tstr"] = transfer(x, data.emotions, x_test, test.emotions, seed=seed)
        report["gold_trained"] = transfer(x_train, train.emotions, x_test, test.emotions, seed=seed)
    return report


def _f(v: float) -> str:
    return f"{v:.4f}"


def _diversity(r: dict) -> list[str]:
    rows = [[e, _f(m["mcd"]), _f(m["ce"]), _f(m["cd"])] for e, m in r["diversity"].items()]
    rows.append(["all (mean over emotion pairs)", "", "", _f(r["diversity_overall"]["cd"])])
    return ["## Table IV. Semantic diversity", "",
            "MCD: mean pairwise cosine distance; CE: entropy (nats) of k=5 k-means cluster sizes within the "
            "emotion; CD: mean cosine distance from the emotion's centroid to the other centroids.", "",
            *table(["Emotion", "MCD", "CE", "CD"], rows)]


def _classification(r: dict) -> list[str]:
    c = r["classification"]
    rows = [[e, f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['f1']:.2f}", str(m["support"])]
            for e, m in c["per_class"].items()]
    rows.append(["Total (macro)", f"{c['precision']:.2f}", f"{c['recall']:.2f}", f"{c['f1']:.2f}", str(c["n_test"])])
    return ["## Table V. Classification of the synthetic texts", "",
            f"LightGBM on embeddings, stratified 80/20 split ({c['n_train']} train / {c['n_test']} test), "
            f"accuracy {c['accuracy']:.3f}.", "",
            *table(["Emotion", "Precision", "Recall", "F1", "Support"], rows), "",
            f"![t-SNE]({r['figures']['tsne']})", "", f"![confusion matrix]({r['figures']['confusion']})"]


def _gold(r: dict) -> list[str]:
    g = r["gold"]
    return ["## Table VI. Similarity to the gold data", "",
            f"Reference: {g['reference']} ({g['n_gold']} texts) against {g['n_synthetic']} synthetic texts.", "",
            *table(["Method", "FID ↓", "PRD-F8 ↑", "PRD-F1/8 ↑", "KL ↓", "HC ↑"],
                    [[r["input"]["method"], _f(g["fid"]), _f(g["prd_f8"]), _f(g["prd_f1_8"]), _f(g["kl"]),
                      _f(g["hc"])]])]


def _tstr(r: dict) -> list[str]:
    rows = [[name, *(f"{m[k]:.3f}" for k in ("accuracy", "precision", "recall", "f1")), str(m["n_train"])]
            for name, m in (("Gold data", r["gold_trained"]), (r["input"]["method"], r["tstr"]))]
    return ["## Table VII. Gold test split, LightGBM trained on each set", "",
            "Precision, recall and F1 are support-weighted.", "",
            *table(["Training data", "Accuracy", "Precision", "Recall", "F1", "Train size"], rows)]


SECTIONS = (("diversity", _diversity), ("classification", _classification), ("gold", _gold), ("tstr", _tstr),
            ("judge", report_section))


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
    p.add_argument("--gold", type=Path, help="gold directory with train.txt / test.txt (`text;label` lines)")
    p.add_argument("--out", type=Path, default=Path("out/eval"), help="output directory (default: out/eval)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"embedding cache (default: {DEFAULT_CACHE})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--judge", action="store_true", help="also score every text with the LLM judge (IV.C, eval.judge)")
    add_judge_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """The command: exit 0, or 2 with one `error:` line for bad input."""
    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    judged = run_judge(args.data, args.out, args) if args.judge else None  # a bad endpoint fails before embedding
    report = build_report(args.data, args.out, args.gold, Embedder(args.cache_dir), seed=args.seed)
    if judged is not None:
        report["judge"] = report_entry(judged)
        report["figures"]["judge"] = FIGURE
    write_report(report, args.out)
    print(f"wrote {args.out / 'report.md'}, {args.out / 'report.json'} and figures", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

