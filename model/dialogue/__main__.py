"""`python -m model.dialogue fit | sample`: fit the emotion chain to a benchmark's dialogues, or sample dialogue
skeletons (personas, setting, speakers, emotions) as JSONL."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import model.dialogue
from common.cli import Parser, first_paragraph, positive_int, run
from common.errors import UsageError
from common.files import write_json, write_text
from common.tables import add_reader_options, read_options
from model.dialogue.analysis import analyse, render_analysis
from model.dialogue.chain import CHAINS_DIR, VARIANTS, chain_json, fit, load_chain
from model.dialogue.corpus import (BENCHMARKS, add_column_options, benchmark_labels, columns, read_dialogues,
                                   split_file)
from model.profile import available, load_profile

CHUNK = 1 << 14


def parser() -> Parser:
    p = Parser(prog="python -m model.dialogue", description=first_paragraph(model.dialogue.__doc__))
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser,
                         help="what to do (`python -m model.dialogue COMMAND --help`: its options)")
    f = sub.add_parser("fit", help="fit the emotion chain to a benchmark's training dialogues",
                       description="Fit the emotion chain to a benchmark's dialogues: any file the reader takes "
                       "(CSV/TSV/JSONL/parquet; separator sniffed) with one row per utterance, or a folder of "
                       "MELD's <split>_sent_emo.csv files.")
    corpus, out = f.add_argument_group("corpus"), f.add_argument_group("output")
    corpus.add_argument("--data", required=True, help="a dialogue file (one row per utterance), or a folder holding "
                   "<split>_sent_emo.csv (MELD's layout)")
    corpus.add_argument("--benchmark", default="meld", help=f"label set: {', '.join(BENCHMARKS)} (default meld)")
    corpus.add_argument("--split", default="train", help="with a --data folder: which <split>_sent_emo.csv to fit "
                   "(default train)")
    add_column_options(corpus)
    add_reader_options(corpus, "the --data file")
    out.add_argument("--out", required=True, help="chain file (JSON) to write")
    out.add_argument("--report", help="directory for chain_report.md / chain_report.json")
    s = sub.add_parser("sample", help="sample dialogue skeletons (personas, setting, speakers, emotions) as JSONL",
                       description="Sample dialogue skeletons (personas, setting, speakers, emotions) from a "
                       "fitted chain, one JSON object per line.")
    what = s.add_argument_group("what to sample")
    what.add_argument("--chain", required=True, help=f"a chain file written by `fit`, or a shipped chain's name "
                   f"({', '.join(available(CHAINS_DIR))})")
    what.add_argument("--n-dialogues", type=positive_int, required=True, help="number of dialogues to sample")
    what.add_argument("--labels", choices=VARIANTS, default="matched", help="matched: the chain's own label "
                   "distribution; balanced: every emotion equally likely at every turn (default matched)")
    what.add_argument("--profile", default="jp", help="profile name (jp, us) or path")
    what.add_argument("--domain", default="conversation", help="domain name or path (default conversation)")
    what.add_argument("--seed", type=int, default=0, help="root seed (0 <= seed < 2**32)")
    s.add_argument_group("output").add_argument("--out", help="output JSONL (default: stdout)")
    return p


def parse(argv: list[str] | None):
    p = parser()
    args = p.parse_args(argv)
    if args.command == "sample" and not 0 <= args.seed < 2**32:
        p.error(f"argument --seed: must be in [0, 2**32), got {args.seed}")
    return args


def _report_dir(path: str | None) -> Path | None:
    report_dir = Path(path) if path else None
    if report_dir is not None:
        if report_dir.exists() and not report_dir.is_dir():
            raise UsageError(f"report path {report_dir} is not a directory")
        report_dir.mkdir(parents=True, exist_ok=True)
    return report_dir


def fit_command(args) -> None:
    path = split_file(args.data, args.split)
    dialogues = read_dialogues(path, benchmark_labels(args.benchmark), tuple(columns(args).values()),
                               read_options(args))
    chain, counts = fit(dialogues, args.benchmark)
    source = {"data": str(args.data), "file": path.name, "columns": columns(args),
              "dialogues": len(dialogues), "utterances": sum(len(d["turns"]) for d in dialogues)}
    report_dir = _report_dir(args.report)
    write_json(args.out, chain_json(chain, counts, source))
    if report_dir is not None:
        a = analyse(counts, chain.labels)
        write_json(report_dir / "chain_report.json", {"source": source, **a})
        write_text(report_dir / "chain_report.md", render_analysis(a, str(path)))


def sample_command(args) -> None:
    # the sampler and the record writer load JAX: imported here, so that `fit` and usage errors stay quick
    from model.compilation import enable_compilation_cache
    from model.dialogue.sampler import sample_dialogues
    from common.formats import write

    chain = load_chain(args.chain)
    profile = load_profile(args.profile, args.domain)
    enable_compilation_cache()

    def batches():
        for start in range(0, args.n_dialogues, CHUNK):
            ids = np.arange(start, min(start + CHUNK, args.n_dialogues))
            yield sample_dialogues(profile, chain, ids, args.seed, args.labels)

    write(batches(), args.out)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    (fit_command if args.command == "fit" else sample_command)(args)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
