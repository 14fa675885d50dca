"""Durable request cache: one SQLite table in WAL mode, keyed by a hash of the full request."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import orjson


def request_key(request: dict) -> str:
    """sha256 of the canonical JSON of a request (sorted keys, no whitespace)."""
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Cache:
    """Completed responses by request key. `Cache(":memory:")` for a throwaway one.

    The file is opened on first use, so a run that fails its checks leaves nothing behind. WAL mode
    with synchronous=NORMAL survives a killed process (not a power cut).
    """

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response BLOB NOT NULL)")
        return self._conn

    def get(self, key: str) -> dict | None:
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def put(self, key: str, response: dict) -> None:
        self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, orjson.dumps(response)))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
