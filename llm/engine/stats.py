"""Run counters and the end-of-run summary, written and shown in one place (`publish`).

The summary's top-level counters are this invocation's (`RunStats.summary`: "texts" written now, "resumed" found
in the output); a resumed output's whole totals are under "output" (`OutputTotals`)."""
from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.files import json_bytes, write_json
from common.duplicates import ExactIndex
from common.schema import ACCEPTED, STAGES, stage_key
from llm.transport.protocols import ClientStats


@dataclass
class RunStats:
    started: float = field(default_factory=time.monotonic)
    verdicts: dict[int, Counter] = field(default_factory=lambda: {k: Counter() for k in STAGES})
    texts: Counter = field(default_factory=Counter)  # "accepted", "unparseable" or why it was rejected
    redraws: int = 0
    skipped: int = 0  # personas accepted without validation (trust policy)
    audited: int = 0  # personas the trust policy would have skipped, validated anyway
    dropped: int = 0  # skipped personas dropped unasked at the validator's baseline rate (in `skipped` too)
    done: int = 0
    resumed: int = 0  # already in the output before this run
    failures: dict[int, str] = field(default_factory=dict)  # slot id -> why it has no text
    dedup: str | None = None  # the --dedup rule ("near:0.7/emotion"), when on (llm.engine.unique)
    duplicates: Counter = field(default_factory=Counter)  # emotion -> texts redrawn as duplicates of accepted ones
    duplicate_failures: Counter = field(default_factory=Counter)  # emotion -> slots out of draws after a duplicate

    def summary(self, client: ClientStats) -> dict:
        validation = {}
        for stage, counts in self.verdicts.items():
            checked = sum(counts.values())
            if checked:
                accepted = sum(counts[label] for label in ACCEPTED)
                validation[stage_key(stage)] = {**counts, "acceptance_rate": round(accepted / checked, 4)}
        return {
            "texts": self.done,
            "resumed": self.resumed,
            "failed": len(self.failures),
            "failures": {str(k): v for k, v in sorted(self.failures.items())},
            "persona_redraws": self.redraws,
            "validation": validation,
            "validation_skipped": self.skipped,
            "validation_audited": self.audited,
            "trusted_dropped": self.dropped,
            "generation": dict(self.texts),
            **({"dedup": {"rule": self.dedup, "regenerated": dict(sorted(self.duplicates.items())),
                          "out_of_draws": dict(sorted(self.duplicate_failures.items()))}} if self.dedup else {}),
            **asdict(client),
            "wall_s": round(time.monotonic() - self.started, 3),
        }


@dataclass
class OutputTotals:
    """The whole output file, over every invocation that wrote to it (a resumed run adds to what it found):
    results, the slots still missing, the tokens and persona draws behind the results (their `usage` and
    `persona_draws` fields), and the texts whose normal form (common.normalise) an earlier text has, whatever its
    emotion (`exact_duplicates`). Goes into the summary as "output", beside this invocation's counters."""

    of: int  # slots of the run (--n, --n-dialogues)
    results: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    persona_draws: int = 0
    exact_duplicates: int = 0

    def __post_init__(self):
        self._texts = ExactIndex()  # the texts seen (not a field: not in the summary)

    def add(self, result: dict) -> None:
        usage = result.get("usage") or {}
        self.results += 1
        if isinstance(result.get("text"), str):
            self.exact_duplicates += self._texts.offer(self.results, result["text"]) is not None
        self.prompt_tokens += usage.get("prompt_tokens", 0)
        self.completion_tokens += usage.get("completion_tokens", 0)
        self.persona_draws += result.get("persona_draws", result.get("dialogue_draws", 1))

    def summary(self) -> dict:
        return {**asdict(self), "missing": self.of - self.results}


def publish(summary: dict, out: str | Path, quiet: bool) -> None:
    """A run's summary (text, dialogue or Ray run) to OUT.summary.json and, unless `quiet`, to stderr."""
    write_json(f"{out}.summary.json", summary)
    if not quiet:
        sys.stderr.write(json_bytes(summary).decode())
