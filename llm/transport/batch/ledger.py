"""The durable state of a run's batches: table `batches` of the request cache file, one row per batch file.

A row is written before its batch exists (`add`, state "writing"), and moves on as the batch does: "uploaded" (its
input file id), "creating" (written just before the batch is created, so a run killed in between looks for a
batch of that file instead of creating a second one), "submitted" (its batch id) or, offline, "written"; then
"done" with the batch's final status, or "dropped" (a row whose batch never came to exist). `open` gives the rows
a rerun resumes: nothing is submitted or paid for twice."""
from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from ..cache import Cache

FINISHED = ("done", "dropped")


@dataclass
class Entry:
    name: str
    round: int
    state: str
    custom_ids: list[str]
    file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    created: float = 0.0

    @property
    def label(self) -> str:
        """The batch id, else the file name."""
        return self.batch_id or self.name


class Ledger:
    def __init__(self, cache: Cache):
        self.cache = cache
        self._ready = False

    @property
    def _db(self):
        db = self.cache.connection()
        if not self._ready:
            db.execute("CREATE TABLE IF NOT EXISTS batches (name TEXT PRIMARY KEY, round INTEGER, state TEXT, "
                       "custom_ids BLOB, file_id TEXT, batch_id TEXT, status TEXT, created REAL)")
            self._ready = True
        return db

    def add(self, name: str, round_: int, custom_ids: list[str]) -> Entry:
        entry = Entry(name, round_, "writing", custom_ids, created=time.time())
        self._db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, NULL, NULL, NULL, ?)",
                         (name, round_, entry.state, orjson.dumps(custom_ids), entry.created))
        return entry

    def update(self, entry: Entry, **changes) -> None:
        """Set `changes` (state, file_id, batch_id, status) on the entry and its row, durably."""
        for key, value in changes.items():
            setattr(entry, key, value)
        assignments = ", ".join(f"{key} = ?" for key in changes)
        self._db.execute(f"UPDATE batches SET {assignments} WHERE name = ?", (*changes.values(), entry.name))

    def entries(self) -> list[Entry]:
        rows = self._db.execute("SELECT name, round, state, custom_ids, file_id, batch_id, status, created "
                                "FROM batches ORDER BY round, name").fetchall()
        return [Entry(name, rnd, state, orjson.loads(ids), file_id, batch_id, status, created)
                for name, rnd, state, ids, file_id, batch_id, status, created in rows]

    def open(self) -> list[Entry]:
        """The rows whose batch may still be answered (a rerun polls them before it submits anything)."""
        return [e for e in self.entries() if e.state not in FINISHED]

    def next_round(self) -> int:
        row = self._db.execute("SELECT MAX(round) FROM batches").fetchone()
        return (row[0] or 0) + 1
