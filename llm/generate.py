"""`python -m llm.generate`: the command line of `llm.api.generate_dataset` (flags in llm/options.py, parsed into a
`RunConfig`); `--plan` and `--preview K` print instead of running."""
from __future__ import annotations

import asyncio
import sys

from common.cli import Terminated, run

from .api import agenerate_dataset, plan_dataset
from .config import RunConfig
from .options import parse
from .plan import worded
from .preview import preview, table
from .running import settings_for

__all__ = ["main", "parse", "settings_for"]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    config = RunConfig.from_namespace(args)
    if args.plan:
        sys.stdout.write(worded(plan_dataset(config)))
        return 0
    if args.preview is not None:
        shown = preview(config, args.preview)
        sys.stdout.write(table(shown.results))
        return 1 if shown.failed else 0
    try:
        result = asyncio.run(agenerate_dataset(config, signals=True))
    except asyncio.CancelledError:  # SIGTERM (the event loop's handler cancels the run)
        raise Terminated from None
    summary, out = result.summary, config.out
    if config.ray is not None:
        return 1 if summary["written"] < config.n else 0
    if result.failed:
        unit = "dialogue" if config.mode == "dialogue" else "text"
        total = config.n_dialogues if config.mode == "dialogue" else config.n
        print(f"error: {result.failed} of {total} {unit}s failed (see {out}.summary.json); "
              "rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
