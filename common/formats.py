"""The formats of an output file (`--format jsonl|csv|parquet`, else from the file's extension), one definition for
every command that writes records (model.sample, model.dialogue, llm.generate, a --ray merge): records written in
the order given, atomically (stdout when there is no path). CSV and parquet are flat (`common.schema.parquet_rows`):
one column per persona attribute, nested values (`validation`, `prompt`, `usage`, `rejected_draws`) as JSON
strings. Records come in batches, and the memory holds one at a time where it can."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

import orjson

from common.errors import UsageError
from common.files import atomic_binary
from common.schema import arrow_type, parquet_rows

FORMATS = ("jsonl", "csv", "parquet")


def format_of(out: str | Path | None, given: str | None = None) -> str:
    """The format of the output `out`: its extension's (.jsonl, .csv, .parquet), else `given`, else jsonl; a
    `given` format that another known extension contradicts is refused."""
    suffix = Path(out).suffix.lstrip(".").lower() if out else ""
    if suffix in FORMATS:
        if given is not None and given != suffix:
            raise UsageError(f"--format {given} contradicts --out {out} (a .{suffix} file); give one or the other")
        return suffix
    return given or "jsonl"


def write_jsonl(batches: Iterable[list[dict]], out: str | Path | None) -> int:
    count = 0
    with atomic_binary(out) as f:
        for batch in batches:
            for rec in batch:
                f.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
                count += 1
    return count


def write_parquet(batches: Iterable[list[dict]], out: str | Path, row_group: int = 65536) -> int:
    """Columns in first-seen order of the first non-empty batch, each typed by its first non-null value."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    count, schema, writer = 0, None, None
    with atomic_binary(out) as f:
        for batch in batches:
            rows = parquet_rows(batch)
            if not rows:
                continue
            if schema is None:
                types: dict = {}
                for row in rows:
                    for k, v in row.items():
                        if types.get(k) is None:
                            types[k] = None if v is None else arrow_type(v)
                schema = pa.schema([(k, t or pa.string()) for k, t in types.items()])
                writer = pq.ParquetWriter(f, schema, compression="zstd")
            for start in range(0, len(rows), row_group):
                writer.write_table(pa.Table.from_pylist(rows[start:start + row_group], schema=schema))
            count += len(rows)
        if writer is not None:
            writer.close()
        elif schema is None:  # nothing finished: an empty file with just an id column
            pq.write_table(pa.table({"id": pa.array([], pa.int64())}), f)
    return count


def write_csv(batches: Iterable[list[dict]], out: str | Path | None, *, uniform: bool = False) -> int:
    """Columns: the union over all rows, in first-seen order (the rows are held once, flat); `uniform` (every row
    has the first row's columns, as sampled personas do): streamed, a batch at a time."""
    if uniform:
        return _csv_rows((row for batch in batches for row in parquet_rows(batch)), None, out)
    rows = [row for batch in batches for row in parquet_rows(batch)]
    return _csv_rows(rows, list(dict.fromkeys(k for row in rows for k in row)), out)


def _csv_rows(rows: Iterable[dict], columns: list[str] | None, out) -> int:
    count = 0
    with atomic_binary(out) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=True)
        writer = None if columns is None else csv.DictWriter(text, columns, lineterminator="\n")
        if writer is not None:
            writer.writeheader()
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(text, list(row), lineterminator="\n")
                writer.writeheader()
            writer.writerow(row)
            count += 1
        text.detach()
    return count


def write_tables(tables: Iterable, out: str | Path) -> int:
    """Arrow tables streamed into one parquet file, one row group each (dictionary-encoded where the table is), so
    memory stays bounded by a table: model.sample's columnar fast path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    count = 0
    with atomic_binary(out) as f:
        writer = None
        for t in tables:
            if writer is None:
                labelled = [c.name for c in t.schema if pa.types.is_dictionary(c.type)]
                writer = pq.ParquetWriter(f, t.schema, compression="zstd", compression_level=1,
                                          use_dictionary=labelled, write_statistics=False)
            writer.write_table(t)
            count += t.num_rows
        if writer is not None:
            writer.close()
    return count


def write(batches: Iterable[list[dict]], out: str | Path | None, fmt: str = "jsonl", *, uniform: bool = False) -> int:
    """Write `batches` of records to `out` in format `fmt` (one of FORMATS); returns the number of records.
    `uniform`: every record has the same fields (CSV is then streamed)."""
    if fmt == "csv":
        return write_csv(batches, out, uniform=uniform)
    if fmt == "parquet":
        if out is None:
            raise UsageError("--format parquet needs --out FILE")
        return write_parquet(batches, out)
    return write_jsonl(batches, out)
