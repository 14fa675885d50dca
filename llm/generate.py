"""`python -m llm.generate`: the command line of `llm.api.generate_dataset` (flags in llm/api/flags.py, read into a
`RunConfig`); `--plan` and `--preview K` print instead of running."""
from __future__ import annotations

import asyncio
import sys

from common.cli import Terminated, run
from common.errors import Stopped

from .api.flags import parse
from .api.plan import worded
from .api.preview import preview, table
from .api.run import agenerate_dataset, plan_dataset


def main(argv: list[str] | None = None) -> int:
    command = parse(argv)
    config = command.config
    if command.plan:
        sys.stdout.write(worded(plan_dataset(config)))
        return 0
    if command.preview is not None:
        shown = preview(config, command.preview)
        sys.stdout.write(table(shown.results))
        return 1 if shown.failed else 0
    try:
        result = asyncio.run(agenerate_dataset(config, signals=True))
    except asyncio.CancelledError:  # SIGTERM (the event loop's handler cancels the run)
        raise Terminated from None
    except Stopped as exc:  # a budget reached (1), batch files left to run (3): resumable
        print(f"{'error' if exc.code == 1 else 'stopped'}: {exc}", file=sys.stderr)
        return exc.code
    summary = result.summary
    if config.ray is not None:
        return 1 if summary["written"] < config.n else 0
    if result.failed:
        print(f"error: {result.failed} of {config.total} {config.mode}s failed (see {config.out}.summary.json); "
              "rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
