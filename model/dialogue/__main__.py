"""`python -m model.dialogue fit | sample`: fit the emotion chain to a benchmark's dialogues, or sample dialogue
skeletons (personas, setting, speakers, emotions) as JSONL."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import model.dialogue
from common.cli import Parser, positive_int, run
from common.errors import UsageError
from common.files import write_json, write_text
from model.dialogue.analysis import analyse, render_analysis
from model.dialogue.chain import VARIANTS, chain_json, fit, load_chain
from model.dialogue.corpus import BENCHMARKS, SPLIT_FILE, benchmark_labels, read_split
from model.profile import load_profile

CHUNK = 1 << 14


def parse(argv: list[str] | None):
    p = Parser(prog="python -m model.dialogue", description=model.dialogue.__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    f = sub.add_parser("fit", help="fit the emotion chain to a benchmark's training dialogues")
    f.add_argument("--data", required=True, help="directory with train_sent_emo.csv (MELD's columns)")
    f.add_argument("--benchmark", default="meld", help=f"label set: {', '.join(BENCHMARKS)} (default meld)")
    f.add_argument("--split", default="train", help="which <split>_sent_emo.csv to fit (default train)")
    f.add_argument("--out", required=True, help="chain file (JSON) to write")
    f.add_argument("--report", help="directory for chain_report.md / chain_report.json")
    s = sub.add_parser("sample", help="sample dialogue skeletons (personas, setting, speakers, emotions) as JSONL")
    s.add_argument("--chain", required=True, help="chain file written by `fit`")
    s.add_argument("--n-dialogues", type=positive_int, required=True)
    s.add_argument("--labels", choices=VARIANTS, default="matched")
    s.add_argument("--profile", default="jp", help="profile name (jp, us) or path")
    s.add_argument("--domain", default="conversation", help="domain name or path (default conversation)")
    s.add_argument("--seed", type=int, default=0, help="root seed (0 <= seed < 2**32)")
    s.add_argument("--out", help="output JSONL (default: stdout)")
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
    dialogues = read_split(args.data, args.split, benchmark_labels(args.benchmark))
    chain, counts = fit(dialogues, args.benchmark)
    source = {"data": str(args.data), "file": SPLIT_FILE.format(split=args.split),
              "dialogues": len(dialogues), "utterances": sum(len(d["turns"]) for d in dialogues)}
    report_dir = _report_dir(args.report)
    write_json(args.out, chain_json(chain, counts, source))
    if report_dir is not None:
        a = analyse(counts, chain.labels)
        write_json(report_dir / "chain_report.json", {"source": source, **a})
        write_text(report_dir / "chain_report.md", render_analysis(a, f"{source['data']}/{source['file']}"))


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
