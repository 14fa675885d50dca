"""The library entry point: `generate_dataset(config) -> Run`, exactly what `python -m llm.generate` runs.

    from llm import RunConfig, generate_dataset

    run = generate_dataset(RunConfig(n=20, domain="sns", endpoints=(Endpoint("http://localhost:8000/v1"),),
                                     model="m", out="data.jsonl"))
    run.results  # the results, in id order
    run.summary  # the run's summary (OUT.summary.json)

`agenerate_dataset` is its async twin. With `out` set, the output is the resumable JSONL journal of the run
(rerun to resume), rewritten in id order at the end, with OUT.summary.json and OUT.config.toml (the resolved config:
`python -m llm.generate --config OUT.config.toml` runs it again) beside it; without `out` the run happens in a
temporary directory and only `Run` remains. The modes' wiring is in llm.api.modes."""
from __future__ import annotations

import asyncio
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from common.errors import UsageError
from common.files import parents_made

from . import config as configs
from .card import section, write_card
from .config import RunConfig
from .batch_plan import with_rounds
from .modes import dialogue_mode, journal_of, prepared, text_mode
from .plan import SAMPLE, plan
from ..transport.factory import embedded_early


@dataclass(frozen=True)
class Run:
    """A finished run: its config, its results in id order, and its summary (as in OUT.summary.json)."""

    config: RunConfig
    results: list[dict]
    summary: dict

    @property
    def failed(self) -> int:
        """Slots without a result (rerun the same config to retry them)."""
        return self.summary.get("failed", 0)


def generate_dataset(config: RunConfig) -> Run:
    """Run `config` to the end (see the module docstring); raises UsageError for what the command line would
    refuse (the config checked itself when it was made)."""
    return asyncio.run(agenerate_dataset(config))


async def agenerate_dataset(config: RunConfig, *, signals: bool = False) -> Run:
    """`generate_dataset` in a running event loop; `signals`: SIGTERM cancels the run (the command line's)."""
    if config.out is not None:
        return await _generate(config, Path(config.out), signals)
    with tempfile.TemporaryDirectory() as tmp:
        return await _generate(replace(config, out=str(Path(tmp) / "out.jsonl"), quiet=True), None, signals)


async def _generate(config: RunConfig, out: Path | None, signals: bool) -> Run:
    path = Path(config.out)
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    run = dialogue_mode if config.mode == "dialogue" else text_mode
    # the embedded server's start-up runs while the persona model is imported and first sampled
    async with embedded_early(config.embedded):
        from model.compilation import enable_compilation_cache

        enable_compilation_cache()
        with parents_made(path):  # its folder is made, and removed again if the run is refused before writing
            results, summary, (profile, settings) = await run(config, path, signals)
    if out is not None:
        configs.save(config, f"{out}.config.toml")
        jsonl = journal_of(config, out)  # none beside a --ray run's csv or parquet: then the output itself
        text = section(config, summary, results, profile, settings, (jsonl if jsonl.exists() else out).name)
        if write_card(text, out) is None:
            print(f"warning: {out.parent / 'README.md'} is not a dataset card of ours: left as it is, no card "
                  "written", file=sys.stderr)
    return Run(replace(config, out=None if out is None else config.out), results, summary)


def plan_dataset(config: RunConfig) -> dict:
    """The plan of a text run (llm.api.plan): requests, tokens, wall time, redraws and cost; sends no request."""
    from model.records import sample_records

    if config.mode != "text":
        raise UsageError("a plan is text mode's")
    profile, emotions, settings = prepared(config)
    records = sample_records(profile, list(range(min(config.n, SAMPLE))), config.seed, emotions.labels)
    previous = Path(f"{config.out}.summary.json") if config.out else None
    try:
        last = orjson.loads(previous.read_bytes()) if previous is not None and previous.is_file() else None
    except orjson.JSONDecodeError:
        last = None  # not a summary of ours: no default from it
    result = plan(records, config.n, settings, profile, config, last)
    return with_rounds(result, records, config.n, settings) if config.batching else result
