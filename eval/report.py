"""`python -m eval.report DATA.jsonl [--gold PATH] [--label-map MAP] [--out DIR]`: the paper's section IV, one command.

Writes into DIR: `report.json`, `report.md` (tables shaped like the paper's IV-VII), the figures (`tsne.png`,
`confusion.png`, `confusion_tstr.png`) and `report.html`: one self-contained page with the tables, the figures and
the texts to browse (eval.page). Sections render in SECTIONS order when their key is in the report. With `--judge`
(and the judge's `--base-url`/`--model`, see `eval.judge`) the LLM judge scores every text first (IV.C): its
`judge.json`/`judge.png` go into DIR too, and `report["judge"]` holds each criterion's mean.

`--gold` is any labelled corpus (eval.corpus); the synthetic labels are mapped onto its label set (`--label-map`,
eval.labels) before every gold metric, and Tables VI and VII carry reference rows (eval.references). A metric
with too few texts is not computed (eval.minimums): `null` in report.json, its reason under `not_computed`. Every
input is read and checked before anything is written: a bad one is one `error:` line, exit 2, no report.
"""
from __future__ import annotations

import sys
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval.classify import holdout
from eval.corpus import MULTI_LABEL, Gold, GoldOptions, read_corpus
from eval.data import DATA_HELP, Labelled, Source, check_classes, read_labelled
from eval.duplicates import report_entry as duplicates
from eval.embed import DEFAULT_CACHE, Embedder
from eval.judge import FIGURE, add_judge_options, report_entry, run_judge
from eval.labels import apply_label_map, label_order, parse_label_map, preset_label_map
from eval.metrics import diversity
from eval.minimums import diversity_gaps, holdout_gap
from eval.parallel import workers
from eval.degenerate import row_warnings
from eval.plots import Scatter, confusion_png, scatter, tsne_coordinates, tsne_png
from eval.references import reference_cells, similarity_row, transfer_row
from eval.browse import browse
from eval.markdown_html import to_html
from eval.page import png_uri, write_page
from eval.sections import render_markdown
from model.compilation import enable_compilation_cache
from common.cli import Parser, first_paragraph, positive_int, run
from common.errors import UsageError
from common.files import write_json, write_text
from common.tables import add_reader_options, read_options

FIGURES = {"tsne": "tsne.png", "confusion": "confusion.png", "tstr_confusion": "confusion_tstr.png"}
GOLD_OPTIONS = ("sep", "text_col", "label_col", "gold_train", "gold_test", "label_names", "label_map",
                "gold_max_rows")


@dataclass(frozen=True)
class Inputs:
    source: Source  # the synthetic set as read (its table is what report.html browses)
    gold: Gold | None = None
    mapped: Labelled | None = None  # the synthetic set as the gold metrics see it (after --label-map)
    keep: list[int] | None = None  # its rows in `data`
    labels: dict | None = None  # eval.labels.apply_label_map's account of the labels

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def data(self) -> Labelled:
        return self.source.data


def load_inputs(data_path: Path, gold_path: Path | None = None, options: GoldOptions = GoldOptions(),
                label_map: str | None = None) -> Inputs:
    """Read and check the synthetic set, the gold corpus and the label map (every bad input fails here)."""
    source = read_labelled(data_path)
    data = source.data
    check_classes(data, str(data_path), min_per_class=1)
    if gold_path is None:
        return Inputs(source)
    gold = read_corpus(gold_path, options)
    mapping, map_source = (parse_label_map(label_map), "--label-map") if label_map else ({}, None)
    if not label_map and (preset := preset_label_map(data.emotions, gold.labels)):
        mapping, map_source = preset
    mapped, keep, account = apply_label_map(data, mapping, gold.labels, str(data_path))
    return Inputs(source, gold, mapped, keep, {**account, "map_source": map_source})


def build_report(inputs: Inputs, out_dir: Path, embedder: Embedder | None = None, seed: int = 0,
                 classifier_cache: Path | None = None, progress: bool = False) -> dict:
    """Embed, compute every section that has enough texts, draw the figures into out_dir; return the report.
    The gold-trained classifier's result is kept in `classifier_cache` (eval.classify.transfer) for the next
    report against the same gold corpus. After the embeddings, the pieces run side by side (eval.parallel), with
    a progress bar of the pieces done on stderr when `progress`."""
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
    points = scatter(data.texts, data.emotions, names, inputs.gold.train.emotions if inputs.gold else None, seed)
    x_points = np.vstack([x[points.first], x_gold[points.gold]])  # the gold train split's rows come first
    cells = {"diversity": lambda g: diversity(x, codes, names, seed=seed),
             "classification": lambda g: None if reason else holdout(x, data.emotions, names, seed=seed),
             "tsne": lambda g: tsne_coordinates(x_points, seed=seed),
             "duplicates": lambda g: duplicates(data.texts, data.emotions, names, None if inputs.gold is None else (
                 inputs.gold.train.texts, inputs.gold.test.texts))}
    if inputs.gold is not None:
        cells.update(gold_cells(inputs, x, np.split(x_gold, [len(inputs.gold.train)]), seed, classifier_cache))
    results = _run(cells, gaps, lambda xy: tsne_png(out_dir / FIGURES["tsne"], xy, points,
                                                    _tsne_title(inputs, points)), progress)
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
    if inputs.gold is not None:
        report.update(gold_sections(inputs, results))
    _confusions(report, inputs, out_dir)
    report["not_computed"] = gaps
    report["warnings"] = row_warnings(report)
    return report


def _run(cells: dict, gaps: dict, draw_tsne, progress: bool) -> dict:
    """The pieces' results by name, side by side on the workers (eval.parallel), a bar of the pieces done on stderr
    with `progress`; `draw_tsne(xy)` draws the t-SNE figure on this thread while the other pieces run on. Their
    gaps go into `gaps` in the cells' order, whatever order they finished in."""
    with workers() as pool:
        done = _submit(pool, cells, first=("gold_trained", "tsne"))
        named = {future: name for name, (future, _) in done.items()}
        with tqdm(total=len(done), desc="report", unit="piece", disable=not progress, file=sys.stderr) as bar:
            for future in as_completed(named):
                bar.set_postfix_str(named[future])
                bar.update()
                if named[future] == "tsne":
                    draw_tsne(future.result())
        results = {name: future.result() for name, (future, _) in done.items()}
    for _, cell_gaps in done.values():
        gaps.update(cell_gaps)
    return results


def _confusions(report: dict, inputs: Inputs, out_dir: Path) -> None:
    """The confusion matrices of Table V's hold-out and of TSTR on the gold test split, where they were computed."""
    if report["classification"] is not None:
        report["figures"]["confusion"] = FIGURES["confusion"]
        c = report["classification"]["confusion"]
        confusion_png(out_dir / FIGURES["confusion"], c["matrix"], c["labels"],
                      f"{inputs.path.name}: LightGBM on a 20 % hold-out of its own texts")
    if report.get("tstr") is not None:
        report["figures"]["tstr_confusion"] = FIGURES["tstr_confusion"]
        tstr = report["tstr"]
        confusion_png(out_dir / FIGURES["tstr_confusion"], tstr["confusion"]["matrix"], tstr["confusion"]["labels"],
                      f"TSTR: LightGBM trained on {inputs.path.name},\ntested on {inputs.gold.info['path']} "
                      f"({tstr['n_test']} texts of the test split)")


def _tsne_title(inputs: Inputs, points: Scatter) -> str:
    title = f"t-SNE of {inputs.path.name}: {len(inputs.data)} texts, {len(points.first)} distinct"
    if inputs.gold is not None:
        title += f"\n(triangles: {len(points.gold)} texts of {inputs.gold.info['path']}, train split)"
    return title


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


def write_report(report: dict, out_dir: Path, source: Source) -> None:
    """report.json, report.md, and report.html: report.md's tables and figures with the texts to browse (eval.page)."""
    markdown = render_markdown(report)
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.md", markdown)
    body = markdown.split("\n", 1)[1]  # the page's own title stands for report.md's first heading
    write_page(out_dir / "report.html", f"Evaluation of {source.path}", browse(source.table, source.path,
                                                                            source.text_col, source.label_col),
               to_html(body, lambda name: png_uri(out_dir / name)))


def parser() -> Parser:
    p = Parser(prog="python -m eval.report", description=first_paragraph(__doc__))
    p.add_argument("data", type=Path, help=DATA_HELP)
    gold, out = p.add_argument_group("gold corpus"), p.add_argument_group("output")
    gold.add_argument("--gold", type=Path, help="gold corpus: a CSV/TSV/JSONL/parquet file, a folder of split files "
                   "(train.txt/test.txt `text;label` lines, train.csv, ...) or a `datasets` save_to_disk folder")
    add_reader_options(gold, "the gold corpus")
    gold.add_argument("--text-col", help="the gold text column, by name or, with --no-header, by number (default: "
                   "the one named text/sentence/utterance)")
    gold.add_argument("--label-col", help="the gold label column, by name or, with --no-header, by number (default: "
                   "the one named label/emotion/labels)")
    gold.add_argument("--gold-train", help="the gold train split (default: train, or the only split)")
    gold.add_argument("--gold-test", help="the gold test split (default: test; without one, a seeded stratified "
                   "20%% of the train split)")
    gold.add_argument("--label-names", help="names of the gold label ids 0, 1, ...: a,b,c (default: the dataset's "
                   "ClassLabel feature)")
    gold.add_argument("--multi-label", choices=MULTI_LABEL, default="drop",
                   help="gold rows with several labels (a list, or a cell like 3,7): drop them or keep the first "
                   "(default: drop)")
    gold.add_argument("--gold-max-rows", type=positive_int, help="use a seeded stratified sample of at most N rows "
                   "of each gold split (stated in the report; default: every row)")
    gold.add_argument("--label-map", help="synthetic label -> gold label before the gold metrics: pleasure=joy,"
                   "neutral=drop, or a file (JSON object or a=b lines)")
    out.add_argument("--out", type=Path, default=Path("out/eval"), help="output directory (default: out/eval)")
    out.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help=f"embedding cache, and the gold-trained classifier's results under classifiers/ "
                   f"(default: {DEFAULT_CACHE})")
    out.add_argument("--seed", type=int, default=0, help="seed of every split, sample, classifier and t-SNE "
                   "(default 0)")
    out.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    p.add_argument_group("LLM judge").add_argument("--judge", action="store_true", help="also score every text with the LLM judge (IV.C, eval.judge)")
    add_judge_options(p)
    return p


def _gold_options(args) -> GoldOptions:
    given = [f"--{name.replace('_', '-')}" for name in GOLD_OPTIONS if getattr(args, name) is not None]
    given += [] if args.header else ["--no-header"]
    if args.gold is None and given:
        raise UsageError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --gold")
    names = None
    if args.label_names is not None:
        names = [s.strip() for s in args.label_names.split(",")]
        if len(names) < 2 or not all(names) or len(set(names)) != len(names):
            raise UsageError(f"--label-names {args.label_names!r}: expected at least 2 distinct non-empty names")
    return GoldOptions(args.text_col, args.label_col, args.gold_train, args.gold_test, names, args.multi_label,
                       args.seed, read_options(args), args.gold_max_rows)


def main(argv: list[str] | None = None) -> int:
    """The command: exit 0, or 2 with one `error:` line for bad input."""
    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    enable_compilation_cache()  # the metrics' XLA programs compile once per shape, not once per report
    inputs = load_inputs(args.data, args.gold, _gold_options(args), args.label_map)
    judged = run_judge(args.data, args.out, args) if args.judge else None  # a bad endpoint fails before embedding
    report = build_report(inputs, args.out, Embedder(args.cache_dir, progress=not args.quiet), seed=args.seed,
                          classifier_cache=args.cache_dir / "classifiers", progress=not args.quiet)
    if judged is not None:
        report["judge"] = report_entry(judged)
        report["figures"]["judge"] = FIGURE
    write_report(report, args.out, inputs.source)
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.out / 'report.md'}, {args.out / 'report.json'}, {args.out / 'report.html'} and figures",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
