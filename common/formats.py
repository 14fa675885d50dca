"""The formats of a results file (`--format jsonl|csv|parquet`): results written in the order given, atomically.
CSV and parquet are flat (`common.schema.parquet_rows`): one column per persona attribute, nested values
(`validation`, `prompt`, `usage`, `rejected_draws`) as JSON strings. Batches keep the memory to one at a time."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

import orjson

from common.files import atomic_binary
from common.schema import arrow_type, parquet_rows

FORMATS = ("jsonl", "csv", "parquet")


def write_jsonl(batches: Iterable[list[dict]], out: str | Path) -> int:
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


def write_csv(batches: Iterable[list[dict]], out: str | Path) -> int:
    """Columns: the union over all rows, in first-seen order (so the rows are held once, flat)."""
    rows = [row for batch in batches for row in parquet_rows(batch)]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_binary(out) as f:
        f.write(buffer.getvalue().encode())
    return len(rows)


def write(batches: Iterable[list[dict]], out: str | Path, fmt: str = "jsonl") -> int:
    """Write `batches` of results to `out` in format `fmt` (one of FORMATS); returns the number of results."""
    return {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}[fmt](batches, out)
