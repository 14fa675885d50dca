"""`--preview K` (`llm.api.preview`): the first K slots of a run through the whole pipeline, shown as a table; nothing
is written beside the output and its request cache is left as it is (the run goes to a temporary directory, on a
copy of the cache, so what the real run already asked is not asked again)."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path

from common.errors import UsageError
from common.schema import STAGE_KEYS

from .run import Run, agenerate_dataset
from .config import RunConfig

WIDTH = 100


def preview(config: RunConfig, k: int) -> Run:
    """The first `k` slots (texts, or dialogues) of `config`'s run; raises ValueError when `k` < 1."""
    return asyncio.run(apreview(config, k))


async def apreview(config: RunConfig, k: int) -> Run:
    """`preview` in a running event loop."""
    if k < 1:
        raise ValueError(f"a preview needs at least 1 slot, got {k}")
    if config.batching:
        raise UsageError("--preview sends its slots online, at once: leave out --batch and --batch-dir")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache.sqlite"
        source = config.cache or (f"{config.out}.cache.sqlite" if config.out else None)
        if source and Path(source).is_file():
            _copy(Path(source), cache)
        size = {"n_dialogues": min(k, config.n_dialogues)} if config.mode == "dialogue" else {"n": min(k, config.n)}
        trial = replace(config, **size, out=str(Path(tmp) / "preview.jsonl"), cache=str(cache), quiet=True,
                        format=None, ray=None, shards=None)
        run = await agenerate_dataset(trial)
    return replace(run, config=config)


def _copy(source: Path, target: Path) -> None:
    """A copy of the SQLite file `source` and its WAL, if any (opening it, even read-only, would leave -shm and
    -wal files beside it)."""
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").is_file():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
            Path(f"{target}{suffix}").chmod(0o600)


def _attributes(record: dict, keys) -> str:
    return ", ".join(f"{k}={v}" for key in keys for k, v in (record.get(key) or {}).items())


def _labels(validation: dict) -> str:
    if not validation:
        return "-"
    if "skipped" in validation:
        return "skipped (trusted)"
    return " / ".join(v.get("label", "?") for v in validation.values())


def rows(results: list[dict]) -> list[dict[str, str]]:
    """What the table shows of each result: emotion, persona, scenario, text, validation labels."""
    shown = []
    for r in results:
        if "turns" in r:  # a dialogue
            text = "\n".join(f"{t.get('speaker', '?')} ({t.get('emotion', '?')}): {t.get('utterance', '')}"
                             for t in r["turns"])
            shown.append({"id": str(r["id"]), "emotion": " > ".join(t.get("emotion", "?") for t in r["turns"]),
                          "persona": str(r.get("relationship", "")), "scenario": "", "text": text,
                          "validation": "-"})
            continue
        shown.append({"id": str(r["id"]), "emotion": r["emotion"], "persona": _attributes(r, STAGE_KEYS[:2]),
                      "scenario": _attributes(r, STAGE_KEYS[2:]), "text": r["text"],
                      "validation": _labels(r.get("validation") or {})})
    return shown


def table(results: list[dict]) -> str:
    """A readable block per result: a header line (id, emotion, validation labels), then persona, scenario and
    text wrapped to WIDTH columns."""
    blocks = []
    for row in rows(results):
        lines = [f"#{row['id']}  {row['emotion']}  [{row['validation']}]"]
        for name in ("persona", "scenario", "text"):
            if row[name]:
                for i, part in enumerate(row[name].splitlines()):
                    lines += textwrap.wrap(part, WIDTH, initial_indent=f"  {name:<9}" if i == 0 else " " * 11,
                                           subsequent_indent=" " * 11) or [""]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
