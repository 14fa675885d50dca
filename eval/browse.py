"""The rows that eval.view and report.html browse, from any table `common.tables` reads: the text, the label,
the validation verdicts and, in one cell, everything else a row says of its persona (the stage attributes, nested
as `llm.generate`'s JSONL has them or flat as its CSV and parquet do) or of itself (a dialogue CSV's speaker,
dialogue and episode columns). The engine's bookkeeping (ids, seeds, prompts, token usage, rejected draws) is left
out: it is long and says nothing a reader filters by. Every value becomes a string; nothing is interpreted."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from common.errors import UsageError
from common.schema import STAGE_KEYS, Result
from common.tables import Table, find_column
from eval.data import LABEL_COLUMNS, TEXT_COLUMNS

VALIDATION = "validation"
HIDDEN = set(Result.__annotations__) - set(STAGE_KEYS) - {"text", "emotion", VALIDATION}
LONG = 300  # characters of a nested value (a list, a dict that is no stage group) shown before it is cut


@dataclass(frozen=True)
class Browse:
    source: str  # the file, as the page names it
    columns: list[str]  # the header of each cell
    rows: list[list[str]]
    facets: list[int]  # the columns offered as a select (the label, the validation verdicts)
    small: list[int]  # the columns shown in small type (persona and other fields)


def verdicts(value) -> str:
    """A validation object ({"stage1": {"label": ...}, ...}, or its JSON in a flat file) as "stage1: natural · ...";
    the trust policy's {"skipped": {"risk": r, ...}} as "skipped: (risk: r, ...)"."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return " · ".join(f"{stage}: {_verdict(v)}" for stage, v in value.items())
    return "" if value is None else str(value)


def _verdict(value) -> str:
    """A stage's label; an object without one (the trust policy's `skipped`) as (key: value, ...)."""
    if isinstance(value, dict):
        return str(value["label"]) if "label" in value else f"({', '.join(f'{k}: {v}' for k, v in value.items())})"
    return str(value)


def _cell(name: str, value) -> list[str]:
    """A column's part of the persona cell: a stage group's attributes, or `name: value`."""
    if value is None or value == "":
        return []
    if isinstance(value, dict) and name in STAGE_KEYS:
        return [f"{k}: {v}" for k, v in value.items()]
    text = orjson.dumps(value).decode() if isinstance(value, (dict, list)) else str(value)
    return [f"{name}: {text if len(text) <= LONG else text[:LONG - 1] + '…'}"]


def _optional(table: Table, given: str | None, candidates: tuple[str, ...], option: str, where: str) -> str | None:
    """The column given, else the one named like a candidate, else None (a file without such a column)."""
    try:
        return find_column(table, given, candidates, option, where)
    except UsageError:
        if given is not None:
            raise
        return None


def browse(table: Table, path: str | Path, text_col: str | None = None, label_col: str | None = None) -> Browse:
    """The table's rows as strings (module doc). `text_col` / `label_col`: by name (or number without a header);
    by default the columns named like eval.data's, or none when a file has no such column (model.sample's
    personas have no text)."""
    text = _optional(table, text_col, TEXT_COLUMNS, "--text-col", str(path))
    label = _optional(table, label_col, LABEL_COLUMNS, "--label-col", str(path))
    validation = VALIDATION if VALIDATION in table.columns else None
    shown = [c for c in (text, label) if c is not None]
    rest = [c for c in table.columns if c not in (*shown, validation) and c not in HIDDEN]
    columns = [*shown, *(["validation"] if validation else []), "persona and other fields"]
    rows = []
    for i in range(table.rows):
        cells = ["" if table.columns[c][i] is None else str(table.columns[c][i]) for c in shown]
        if validation:
            cells.append(verdicts(table.columns[validation][i]))
        cells.append(" · ".join(part for c in rest for part in _cell(c, table.columns[c][i])))
        rows.append(cells)
    facets = ([shown.index(label)] if label else []) + ([len(shown)] if validation else [])
    return Browse(str(path), columns, rows, facets, [len(columns) - 1])
