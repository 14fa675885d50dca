"""`python -m eval.view DATA [--out PAGE.html] [--open]`: any output as one self-contained web page.

DATA is any file `common.tables` reads: `llm.generate`'s results (JSONL, CSV or parquet), `model.sample`'s
personas, a dialogue CSV (`model.dialogue.corpus.meld_csv`'s, MELD's own), any labelled CSV/TSV. The page
(eval.page) is the texts' table of eval.report's report.html: filter by free text and by label or validation
verdict, page through 20,000 rows and more. It works offline and loads nothing from the network. Bad input: one
`error:` line, exit 2, nothing written.
"""
from __future__ import annotations

import sys
import webbrowser
from pathlib import Path

from common.cli import Parser, first_paragraph, run
from common.tables import add_reader_options, read_file, read_options
from eval.browse import browse
from eval.page import write_page


def parser() -> Parser:
    p = Parser(prog="python -m eval.view", description=first_paragraph(__doc__))
    p.add_argument("data", type=Path, help="the file to browse: JSONL, CSV/TSV or parquet")
    data, out = p.add_argument_group("reading DATA"), p.add_argument_group("output")
    out.add_argument("--out", type=Path, help="the page to write (default: DATA's name with .html, beside it)")
    out.add_argument("--open", action="store_true", help="open the page in the default web browser")
    add_reader_options(data, "DATA")
    data.add_argument("--text-col", help="the text column, by name or, with --no-header, by number (default: the one "
                   "named text/sentence/utterance, if any)")
    data.add_argument("--label-col", help="the label column, by name or, with --no-header, by number (default: the "
                   "one named label/emotion/labels, if any)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    rows = browse(read_file(args.data, read_options(args)), args.data, args.text_col, args.label_col)
    out = args.out or args.data.with_suffix(".html")
    write_page(out, args.data.name, rows)
    print(f"wrote {out} ({len(rows.rows)} rows)", file=sys.stderr)
    if args.open:
        webbrowser.open(out.resolve().as_uri())
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
